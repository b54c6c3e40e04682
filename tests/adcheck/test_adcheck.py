"""`mailstrata check-ad` against a real Samba AD DC (fixture `samba_ad`), and its usage errors.

Every check runs inside the DC's network namespace (`SambaAD.run_in_netns`), which has only ``lo``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ldap3.core.exceptions import LDAPCertificateError, LDAPException, LDAPSocketOpenError

from mailstrata.adcheck import CheckReport, run_check
from mailstrata.cli_check_ad import PASSWORD_ENV, main
from mailstrata.directory import DirectorySettings, LdapTls
from mailstrata.types import Secret
from tests.support.samba_ad import USERS_DN, SambaAD, private_netns

BIND_DN = "cn=correoapp,ou=mailapps,dc=domain01,dc=dom"
ROOT_DN = "dc=domain01,dc=dom"
PLAIN_WARNING = "warning: plain LDAP: the bind password crosses the network in clear (use starttls or ldaps)"


@pytest.fixture
def password_file(samba_ad: SambaAD, tmp_path: Path) -> Path:
    path = tmp_path / "bind-password"
    path.write_text(samba_ad.bind_password + "\n")
    path.chmod(0o600)
    return path


def flags(
    ad: SambaAD,
    password_file: Path,
    *,
    url: str | None = None,
    tls: str | None = "plain",
    base_dn: str = USERS_DN,
    domains: tuple[str, ...] = ("domain01.dom", "domain02.dom"),
) -> list[str]:
    argv = ["--url", url or ad.ldap_url, "--base-dn", base_dn, "--bind-dn", ad.bind_dn]
    argv += ["--password-file", str(password_file)]
    for domain in domains:
        argv += ["--domain", domain]
    return argv + (["--tls", tls] if tls else [])


def check_ad(ad: SambaAD, argv: list[str]) -> int:
    return ad.run_in_netns(main, argv)


def settings(ad: SambaAD, **changes: Any) -> DirectorySettings:
    base = DirectorySettings(
        urls=(ad.ldap_url,),
        tls=LdapTls.PLAIN,
        base_dn=USERS_DN,
        bind_dn=ad.bind_dn,
        bind_password=Secret(ref=ad.bind_password),
        domains=ad.domains,
    )
    return dataclasses.replace(base, **changes)


# -- the test directory itself --------------------------------------------------------------------------
def test_samba_listens_only_on_loopback(samba_ad: SambaAD) -> None:
    # GIVEN the started DC WHEN we list its listening sockets THEN each is in 127.0.0.0/8
    addresses = samba_ad.listening_addresses()
    assert sorted(int(a.rsplit(":", 1)[1]) for a in addresses) == [389, 636, 3268, 3269]
    for address in addresses:
        assert ipaddress.ip_address(address.rsplit(":", 1)[0]) in ipaddress.ip_network("127.0.0.0/8"), address


def test_samba_namespace_has_only_lo(samba_ad: SambaAD) -> None:
    out = subprocess.run(
        ["ip", "-n", str(samba_ad.netns), "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    assert [line.split(":")[1].strip() for line in out.splitlines()] == ["lo"]


@pytest.mark.parametrize("ip", ["10.0.0.1", "192.168.1.10", "::1"])
def test_samba_ad_refuses_addresses_outside_loopback(tmp_path: Path, ip: str) -> None:
    with pytest.raises(ValueError) as err:
        SambaAD(tmp_path, ip=ip)
    assert str(err.value) == (
        f"ip: must be an IPv4 address in 127.0.0.0/8 (tests never leave the machine), got {ip}"
    )


# -- success --------------------------------------------------------------------------------------------
def test_clean_directory_passes_with_exact_report(
    samba_ad: SambaAD, password_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN users and lists under cn=Users WHEN check-ad runs over plain LDAP THEN exit 0 and this report
    assert check_ad(samba_ad, flags(samba_ad, password_file)) == 0
    assert capsys.readouterr().out == "\n".join(
        [
            PLAIN_WARNING,
            "connect to ldap://127.0.0.1:389 (plain): ok",
            f"bind as {BIND_DN}: ok",
            f"base DN {USERS_DN}: ok",
            "users with a mail address in domain01.dom: 3",
            "users with a mail address in domain02.dom: 1",
            "distribution lists: ventas@domain01.dom (2 members)",
            "result: ok",
            "",
        ]
    )


def test_distribution_list_is_listed_with_member_count(samba_ad: SambaAD) -> None:
    report = samba_ad.run_in_netns(run_check, settings(samba_ad))
    assert "distribution lists: ventas@domain01.dom (2 members)" in report.facts


def test_domain_root_search_ignores_referrals_and_counts_every_user(samba_ad: SambaAD) -> None:
    # Samba answers a search from the domain root with a referral to CN=Configuration: it must not count
    report = samba_ad.run_in_netns(run_check, settings(samba_ad, base_dn=ROOT_DN))
    # usuario01-04, jsmith, jdoe and 550 bulk users; usuario05, jsmith02 and 550 bulk users (more than one
    # LDAP page of 1,000 in all: check-ad pages, as Windows AD needs)
    assert "users with a mail address in domain01.dom: 556" in report.facts
    assert "users with a mail address in domain02.dom: 552" in report.facts


def test_password_from_environment(
    samba_ad: SambaAD,
    password_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, samba_ad.bind_password)
    argv = flags(samba_ad, password_file)
    i = argv.index("--password-file")
    del argv[i : i + 2]
    assert check_ad(samba_ad, argv) == 0
    assert f"bind as {BIND_DN}: ok" in capsys.readouterr().out


# -- TLS ------------------------------------------------------------------------------------------------
def test_starttls_with_ca_certificate(
    samba_ad: SambaAD, password_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = flags(samba_ad, password_file, tls="starttls") + ["--ca-cert", str(samba_ad.ca_cert_path)]
    assert check_ad(samba_ad, argv) == 0
    out = capsys.readouterr().out
    assert "connect to ldap://127.0.0.1:389 (starttls): ok" in out
    assert "warning" not in out


def test_ldaps_is_the_default_for_ldaps_urls(
    samba_ad: SambaAD, password_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = flags(samba_ad, password_file, url=samba_ad.ldaps_url, tls=None)
    assert check_ad(samba_ad, [*argv, "--ca-cert", str(samba_ad.ca_cert_path)]) == 0
    assert "connect to ldaps://127.0.0.1:636 (ldaps): ok" in capsys.readouterr().out


def test_ldaps_without_the_ca_is_not_trusted(
    samba_ad: SambaAD, password_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_ad(samba_ad, flags(samba_ad, password_file, url=samba_ad.ldaps_url, tls="ldaps")) == 1
    assert capsys.readouterr().out == (
        "problem: TLS with ldaps://127.0.0.1:636 failed: "
        "the server certificate is not signed by a trusted CA (give the directory's CA certificate)\n"
        "result: 1 problem\n"
    )


def _config_file(ad: SambaAD, folder: Path, *, ca_cert_file: str | None) -> Path:
    """A platform config whose directory is the test DC (LDAPS), with or without `directory.ca_cert_file`."""
    ca = f"  ca_cert_file: {ca_cert_file}\n" if ca_cert_file is not None else ""
    path = folder / "platform.yaml"
    path.write_text(
        "name: mail\n"
        "domains: [domain01.dom, domain02.dom]\n"
        "dns: {zone: mail.domain01.dom}\n"
        "network:\n"
        "  network_id: 0b6f6a64-1c1e-4a53-9d0e-1c2a3b4c5d01\n"
        "  subnet_id: 0b6f6a64-1c1e-4a53-9d0e-1c2a3b4c5d02\n"
        "  subnet_cidr: 10.40.0.0/24\n"
        "  vip_subnet_id: 0b6f6a64-1c1e-4a53-9d0e-1c2a3b4c5d02\n"
        "  vip_subnet_cidr: 10.40.0.0/24\n"
        "  admin_cidrs: [10.99.0.0/24]\n"
        "directory:\n"
        f"  urls: [{ad.ldaps_url}]\n"
        "  tls: ldaps\n"
        f"{ca}"
        f"  base_dn: {USERS_DN}\n"
        f"  bind_dn: {ad.bind_dn}\n"
        "storage: {size_gb: 500}\n"
        "layers: {smtp_in: {count: 1}, smtp_out: {count: 1}, mailstore: {count: 1}}\n"
    )
    return path


def test_config_file_ca_verifies_the_directory(
    samba_ad: SambaAD, password_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a config naming the directory's own CA (relative to the config file), and no --ca-cert
    (tmp_path / "ad-ca.pem").write_text(samba_ad.ca_cert_pem)
    config = _config_file(samba_ad, tmp_path, ca_cert_file="ad-ca.pem")
    # WHEN check-ad runs with only the config THEN it verifies the DC with that CA
    assert check_ad(samba_ad, ["--config", str(config), "--password-file", str(password_file)]) == 0
    out = capsys.readouterr().out
    assert f"connect to {samba_ad.ldaps_url} (ldaps): ok" in out
    assert "warning" not in out


def test_config_without_a_ca_does_not_trust_the_internal_ca(
    samba_ad: SambaAD, password_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the DC's certificate comes from the domain's internal CA, which the public bundle does not hold
    config = _config_file(samba_ad, tmp_path, ca_cert_file=None)
    assert check_ad(samba_ad, ["--config", str(config), "--password-file", str(password_file)]) == 1
    assert capsys.readouterr().out.splitlines()[-2:] == [
        f"problem: TLS with {samba_ad.ldaps_url} failed: "
        "the server certificate is not signed by a trusted CA (give the directory's CA certificate)",
        "result: 1 problem",
    ]


def test_ldaps_insecure_skip_verify_connects_and_warns(
    samba_ad: SambaAD, password_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = flags(samba_ad, password_file, url=samba_ad.ldaps_url, tls="ldaps") + ["--insecure-skip-verify"]
    assert check_ad(samba_ad, argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("warning: TLS certificates are not verified (--insecure-skip-verify)\n")
    assert "connect to ldaps://127.0.0.1:636 (ldaps): ok" in out


# -- problems -------------------------------------------------------------------------------------------
def test_quota_that_is_not_a_byte_count_is_named(
    samba_ad: SambaAD, password_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN usuario04 (ou=migrados) with info=2GB WHEN searching from the domain root THEN it is named
    assert check_ad(samba_ad, flags(samba_ad, password_file, base_dn=ROOT_DN)) == 1
    out = capsys.readouterr().out
    assert (
        "problem: usuario04: quota attribute 'info' is '2GB', not a byte count (e.g. 2147483648)\n"
        "result: 1 problem\n"
    ) in out


def test_wrong_password(samba_ad: SambaAD, password_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    password_file.write_text("not-the-password\n")
    assert check_ad(samba_ad, flags(samba_ad, password_file)) == 1
    assert capsys.readouterr().out.splitlines()[-2:] == [
        f"problem: cannot bind as {BIND_DN}: invalid credentials (check the bind DN and password)",
        "result: 1 problem",
    ]


def test_unreachable_url(samba_ad: SambaAD, password_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # nothing listens on 10389 in the DC's namespace
    assert check_ad(samba_ad, flags(samba_ad, password_file, url="ldap://127.0.0.1:10389")) == 1
    assert capsys.readouterr().out.splitlines()[-2:] == [
        "problem: cannot reach ldap://127.0.0.1:10389: connection refused",
        "result: 1 problem",
    ]


def test_one_unreachable_server_of_two_is_a_problem(samba_ad: SambaAD) -> None:
    report = samba_ad.run_in_netns(
        run_check, settings(samba_ad, urls=(samba_ad.ldap_url, "ldap://127.0.0.1:10389"))
    )
    assert report.problems == ("cannot reach ldap://127.0.0.1:10389: connection refused",)
    assert "users with a mail address in domain01.dom: 3" in report.facts


def test_missing_base_dn(samba_ad: SambaAD, password_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = flags(samba_ad, password_file, base_dn="ou=nope,dc=domain01,dc=dom")
    assert check_ad(samba_ad, argv) == 1
    assert capsys.readouterr().out.splitlines()[-2:] == [
        "problem: base DN ou=nope,dc=domain01,dc=dom does not exist",
        "result: 1 problem",
    ]


def test_domain_without_users(
    samba_ad: SambaAD, password_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = flags(samba_ad, password_file, domains=("domain01.dom", "domain03.dom"))
    assert check_ad(samba_ad, argv) == 1
    out = capsys.readouterr().out
    assert "users with a mail address in domain01.dom: 3\n" in out
    assert out.splitlines()[-2:] == [
        f"problem: no users with a mail address in domain03.dom under {USERS_DN}",
        "result: 1 problem",
    ]


def test_scheme_that_contradicts_tls_mode(samba_ad: SambaAD) -> None:
    report = samba_ad.run_in_netns(run_check, settings(samba_ad, tls=LdapTls.LDAPS))
    assert report.problems == ("ldap://127.0.0.1:389: the scheme does not match tls 'ldaps' (use ldaps://)",)


def test_runs_as_a_module_in_the_namespace(samba_ad: SambaAD, password_file: Path) -> None:
    # the way the twin runs it: a separate process inside the DC's namespace
    cmd = samba_ad.ns_command(
        [sys.executable, "-m", "mailstrata.cli_check_ad", *flags(samba_ad, password_file)]
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.endswith("result: ok\n")


# -- usage errors (no directory needed) -----------------------------------------------------------------
def _usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


REQUIRED = [
    "--url",
    "ldap://127.0.0.1:10389",
    "--base-dn",
    ROOT_DN,
    "--bind-dn",
    BIND_DN,
    "--domain",
    "d.dom",
]


def test_usage_no_password(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    assert _usage(REQUIRED, capsys) == (
        2,
        f"check-ad: no bind password: give --password-file FILE or set {PASSWORD_ENV}\n",
    )


def test_usage_missing_flags(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "x")
    assert _usage(["--url", "ldap://127.0.0.1:10389"], capsys) == (
        2,
        "check-ad: missing --base-dn, --bind-dn, --domain (or give --config FILE)\n",
    )


def test_usage_ca_and_insecure_contradict(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "x")
    argv = [*REQUIRED, "--ca-cert", str(tmp_path / "ca.pem"), "--insecure-skip-verify"]
    assert _usage(argv, capsys) == (
        2,
        "check-ad: --ca-cert and --insecure-skip-verify contradict each other: give one\n",
    )


def test_usage_ca_that_is_not_pem(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "x")
    ca = tmp_path / "ca.pem"
    ca.write_text("hello\n")
    assert _usage([*REQUIRED, "--ca-cert", str(ca)], capsys) == (
        2,
        f"check-ad: --ca-cert {ca}: not a PEM certificate (expected -----BEGIN CERTIFICATE-----)\n",
    )


def test_usage_unknown_tls_mode(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _usage([*REQUIRED, "--tls", "ssl"], capsys)
    assert code == 2
    assert "argument --tls: invalid choice: 'ssl'" in err


def test_usage_empty_password_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    empty = tmp_path / "pw"
    empty.write_text("\n")
    assert _usage([*REQUIRED, "--password-file", str(empty)], capsys) == (
        2,
        f"check-ad: --password-file {empty}: the file is empty\n",
    )


# -- the report -----------------------------------------------------------------------------------------
def test_report_format_counts_problems() -> None:
    report = CheckReport(facts=("a: ok",), problems=("x is wrong", "y is wrong"))
    assert not report.ok
    assert report.format() == "a: ok\nproblem: x is wrong\nproblem: y is wrong\nresult: 2 problems\n"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            LDAPCertificateError("certificate {'subject': ...} doesn't match any name in ['127.0.0.2'] "),
            "TLS with ldaps://127.0.0.2:636 failed: the server certificate does not name 127.0.0.2 "
            "(connect by a name it lists)",
        ),
        (
            LDAPSocketOpenError("socket connection error while opening: timed out"),
            "cannot reach ldaps://127.0.0.2:636: no answer within 2.5 s",
        ),
    ],
)
def test_connection_errors_in_plain_words(error: LDAPException, expected: str) -> None:
    # messages a live test cannot provoke without leaving 127.0.0.1 or waiting for a timeout
    from mailstrata.adcheck import _open_error

    assert _open_error("ldaps://127.0.0.2:636", "127.0.0.2", error, 2.5) == expected


# settings that would connect to nothing: the checks below must answer before any connection
_UNREACHABLE = DirectorySettings(urls=("ldap://127.0.0.1:10389",), tls=LdapTls.STARTTLS, base_dn=ROOT_DN,
                                 bind_dn=BIND_DN, bind_password=Secret(ref="x"), domains=("domain01.dom",))

@pytest.mark.parametrize(
    ("password", "problem"),
    [
        (" Leading-space1", "the bind password starts or ends with a space or tab, which Postfix and saslauthd drop "
                            "(set one without; the deploy refuses it too)"),
        ("Trailing-tab1\t", "the bind password starts or ends with a space or tab, which Postfix and saslauthd drop "
                             "(set one without; the deploy refuses it too)"),
        ("two\nlines", "the bind password spans several lines; no config file can hold it (set one on one line; "
                       "the deploy refuses it too)"),
    ],
)
def test_a_password_the_servers_files_cannot_hold_is_a_problem_before_connecting(password: str, problem: str) -> None:
    # GIVEN a password AD might well accept WHEN checked (nothing listens on 10389) THEN the shape is the problem
    report = run_check(dataclasses.replace(_UNREACHABLE, bind_password=Secret(ref=password)))
    assert report.problems == (problem,)


def test_a_password_with_syntax_characters_is_fine_for_the_files() -> None:
    from mailstrata.adcheck import _password_shape

    assert _password_shape("#Pa55 'w\"o\\rd' $HOME %u ñé") == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2GB", 2147483648), ("500M", 524288000), ("1.5 GiB", 1610612736), ("lots", 2147483648)],
)
def test_quota_suggestion_reads_human_sizes(value: str, expected: int) -> None:
    from mailstrata.adcheck import _suggest_bytes

    assert _suggest_bytes(value) == expected


def test_samba_on_a_loopback_alias_in_its_own_namespace(tmp_path: Path, samba_ad: SambaAD) -> None:
    # the twin's layout: a namespace with only lo, the DC on an alias such as 127.0.0.11
    # (`samba_ad` is requested only for its skip-or-fail rule when Samba is not installed)
    with private_netns(f"mstest-ad2-{os.getpid()}") as netns:
        subprocess.run(["ip", "-n", netns, "addr", "add", "127.0.0.11/8", "dev", "lo"], check=True)
        with SambaAD(tmp_path / "ad", ip="127.0.0.11", netns=netns) as ad:
            assert ad.listening_addresses() == [f"127.0.0.11:{p}" for p in (3268, 3269, 389, 636)]
            report = ad.run_in_netns(
                run_check,
                settings(ad, urls=(ad.ldaps_url,), tls=LdapTls.LDAPS, ca_cert_pem=ad.ca_cert_pem),
            )
    assert report.ok, report.format()


def test_settings_that_cannot_work_are_problems_without_connecting() -> None:
    report = run_check(
        DirectorySettings(
            urls=("ldap://127.0.0.1:abc",),
            tls=LdapTls.STARTTLS,
            base_dn=ROOT_DN,
            bind_dn=BIND_DN,
            bind_password=Secret(ref="x"),
            domains=(),
        )
    )
    assert report.problems == ("no mail domain given",)
    report = run_check(
        DirectorySettings(
            urls=("ldap://127.0.0.1:abc",),
            tls=LdapTls.STARTTLS,
            base_dn=ROOT_DN,
            bind_dn=BIND_DN,
            bind_password=Secret(ref="x"),
            domains=("domain01.dom",),
        )
    )
    assert report.problems == ("ldap://127.0.0.1:abc: not an LDAP URL (e.g. ldap://dc1.example.com)",)
