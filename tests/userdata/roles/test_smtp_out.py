"""SMTP-out user-data: the rendered files, checked by the real daemons (Debian 12's versions).

The files come from the `layer_files` fixture: the cloud-config exactly as the server receives it, with
the sample values standing in for Terraform's. The daemons read them at their real paths: each check
runs in a private mount namespace whose /etc is an overlay of the rendered tree over the host's /etc,
and whose Postfix queue and data directories are scratch directories, so nothing in the rendered
files is edited and nothing on the host changes.

Versions: the centos7 profile targets Postfix 2.10, cyrus-sasl 2.1.26, ClamAV 0.103 and OpenDKIM 2.11;
the parsers here are Debian 12's Postfix 3.7, cyrus-sasl 2.1.28, ClamAV 1.4 and OpenDKIM 2.11. Every
setting used exists in both; Postfix 3.7 prints its "backwards-compatible default settings" notice for
the 2.10 render (no compatibility_level in 2.10), and a render with the profile's Postfix version set
to 3.7 is checked to print nothing at all.

LDAP checks run against a real Samba AD (tests/support/samba_ad.py) in a network namespace with only
`lo`; for them the layer is rendered with the test directory's URL, CA and bind password as inputs.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import ipaddress
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import yaml

from mailstrata.directory import DirectorySettings, LdapTls
from mailstrata.errors import ConfigError
from mailstrata.roles import Role
from mailstrata.terraform_eval import StandIns, evaluate
from mailstrata.userdata import limits
from mailstrata.userdata.context import LayerContext, Secret, Tls, TlsSource
from mailstrata.userdata.daemons import postfix
from mailstrata.userdata.daemons.postfix import RELAY_PORT, SUBMISSION_PORT
from mailstrata.userdata.profiles import OsProfile, _Attrs, load_profile
from mailstrata.userdata.render import render_layer
from mailstrata.userdata.terraform_text import escape
from tests.support.daemons import (
    ServerView,
    view_postconf,
    view_run_postconf,
    wait_for,
    write_tree,
)
from tests.support.requires import requires, requires_terraform
from tests.support.samba_ad import SambaAD, private_netns
from tests.support.synth import default_platform
from tests.userdata import _sample

ROLE = Role.SMTP_OUT
PROFILE = load_profile("centos7", ROLE)
SAMPLE = _sample.SAMPLE_VALUES

# ---- helpers ---------------------------------------------------------------------------------------


_REF = re.compile(r"(?<!\$)\$\{([^{}]*)\}")


def server_files(ctx: LayerContext, values: Mapping[str, str], os_profile: OsProfile = PROFILE) -> dict[str, str]:
    """The files a server would get for `ctx`, references resolved with `values` (as Terraform would)."""
    text = escape(render_layer(ctx, os=os_profile).body_text())

    def resolve(expr: str) -> str:
        if expr.startswith("base64encode(") and expr.endswith(")"):
            return base64.b64encode(values[expr[len("base64encode(") : -1]].encode()).decode()
        return values[expr]

    resolved = _REF.sub(lambda m: resolve(m.group(1)), text).replace("$${", "${").replace("%%{", "%{")
    out = {}
    for f in yaml.safe_load(resolved)["write_files"]:
        content = f["content"]
        out[f["path"]] = base64.b64decode(content).decode() if f.get("encoding") == "b64" else content
    return out


def table_rows(text: str) -> list[list[str]]:
    return [ln.split() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def warnings_in(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if re.search(r"\b(warning|fatal|error|panic)\b", ln, re.I)]


# ---- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(layer_files: Callable[[Role], dict[str, str]]) -> dict[str, str]:
    return layer_files(ROLE)


@pytest.fixture(scope="module")
def service_params(view: ServerView) -> dict[str, str]:
    return view_postconf(view, "-P")


# ---- Postfix: main.cf ------------------------------------------------------------------------------


@pytest.mark.daemons
def test_postconf_prints_no_warnings(postconf_n: subprocess.CompletedProcess[str]) -> None:
    assert (postconf_n.returncode, postconf_n.stderr) == (0, "")


@pytest.mark.daemons
def test_mynetworks_is_this_host_only(main_cf: dict[str, str]) -> None:
    # Each listener says whom it trusts (master.cf); webmail is trusted nowhere (issue 9: it submits with AUTH).
    assert main_cf["mynetworks"] == "127.0.0.0/8"


@pytest.mark.daemons
def test_only_the_internal_relay_trusts_an_address_and_only_the_mailstores(service_params: dict[str, str]) -> None:
    trusted = {k.split("/")[0]: v for k, v in service_params.items() if k.endswith("/inet/mynetworks")}
    assert trusted == {"submission": "", "2525": "10.10.3.0/24"}


@pytest.mark.daemons
def test_mynetworks_never_holds_the_load_balancers_or_webmail(service_params: dict[str, str]) -> None:
    # Defect 1: with the LB's subnet in mynetworks, the whole Internet would relay through the LB.
    net = _sample.context(ROLE).platform.networks
    untrusted = [ipaddress.ip_network(c) for c in (*net.vip_subnet, *net.of(Role.WEBMAIL))]
    trusted = [ipaddress.ip_network(c) for k, v in service_params.items() if k.endswith("/mynetworks")
               for c in v.split(",") if c]
    assert [(t, u) for t in trusted for u in untrusted if t.overlaps(u)] == []


@pytest.mark.daemons
def test_relay_is_for_mynetworks_and_authenticated_users_only(main_cf: dict[str, str]) -> None:
    assert main_cf["smtpd_relay_restrictions"] == (
        "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"
    )


@pytest.mark.daemons
def test_sasl_is_tls_only_without_anonymous_logins(main_cf: dict[str, str]) -> None:
    got = {
        k: main_cf[k]
        for k in (
            "smtpd_tls_auth_only",
            "smtpd_sasl_security_options",
            "smtpd_sasl_authenticated_header",
            "cyrus_sasl_config_path",
        )
    }
    assert got == {
        "smtpd_tls_auth_only": "yes",
        "smtpd_sasl_security_options": "noanonymous",
        "smtpd_sasl_authenticated_header": "yes",
        "cyrus_sasl_config_path": "/etc/sasl2",
    }


@pytest.mark.daemons
def test_sasl_is_not_enabled_globally(view: ServerView) -> None:
    proc = view_run_postconf(view, "-h", "smtpd_sasl_auth_enable")
    assert proc.stdout.strip() == "no"


@pytest.mark.daemons
def test_sender_logins_come_from_the_directory_map(main_cf: dict[str, str]) -> None:
    assert main_cf["smtpd_sender_login_maps"] == "ldap:/etc/postfix/ldap-sender-login.cf"


@pytest.mark.daemons
def test_milters_scan_then_check_the_from_then_sign_and_defer_when_down(main_cf: dict[str, str]) -> None:
    got = {k: main_cf[k] for k in ("smtpd_milters", "non_smtpd_milters", "milter_default_action")}
    assert got == {
        "smtpd_milters": "inet:127.0.0.1:7357, inet:127.0.0.1:7358, inet:127.0.0.1:8891",
        "non_smtpd_milters": "inet:127.0.0.1:8891",
        "milter_default_action": "tempfail",
    }


@pytest.mark.daemons
def test_served_domains_use_the_transport_map(main_cf: dict[str, str]) -> None:
    assert main_cf["transport_maps"] == "hash:/etc/postfix/transport"


@pytest.mark.daemons
def test_limits_are_the_platforms(main_cf: dict[str, str]) -> None:
    keys = ("smtpd_recipient_limit", "message_size_limit", "smtpd_error_sleep_time", "smtpd_soft_error_limit",
            "smtpd_hard_error_limit", "smtpd_client_connection_count_limit",
            "smtpd_client_connection_rate_limit", "default_process_limit", "bounce_queue_lifetime",
            "maximal_queue_lifetime")  # fmt: skip
    assert {k: main_cf[k] for k in keys} == {
        "smtpd_recipient_limit": "200",
        "message_size_limit": "26214400",
        "smtpd_error_sleep_time": "1s",
        "smtpd_soft_error_limit": "10",
        "smtpd_hard_error_limit": "20",
        "smtpd_client_connection_count_limit": "10",
        "smtpd_client_connection_rate_limit": "60",
        "default_process_limit": "200",
        "bounce_queue_lifetime": "1d",
        "maximal_queue_lifetime": "1d",
    }


@pytest.mark.daemons
def test_server_tls_floor_is_tls_1_2_with_strong_ciphers(main_cf: dict[str, str]) -> None:
    keys = ("smtpd_tls_protocols", "smtpd_tls_mandatory_protocols", "smtpd_tls_mandatory_ciphers",
            "smtpd_tls_exclude_ciphers", "smtpd_tls_dh1024_param_file")  # fmt: skip
    assert {k: main_cf[k] for k in keys} == {
        "smtpd_tls_protocols": "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1",
        "smtpd_tls_mandatory_protocols": "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1",
        "smtpd_tls_mandatory_ciphers": "high",
        "smtpd_tls_exclude_ciphers": "aNULL, eNULL, MD5, RC4, 3DES",
        "smtpd_tls_dh1024_param_file": "/etc/postfix/ffdhe2048.pem",
    }


def test_dh_parameters_are_rfc7919_ffdhe2048(files: dict[str, str]) -> None:
    requires("openssl")
    proc = subprocess.run(["openssl", "pkeyparam", "-text", "-noout"], input=files["/etc/postfix/ffdhe2048.pem"],
                          capture_output=True, text=True)  # fmt: skip
    assert "GROUP: ffdhe2048" in proc.stdout, proc.stderr


# ---- Postfix: master.cf ----------------------------------------------------------------------------


@pytest.mark.daemons
def test_master_cf_has_submission_and_internal_relay_listeners_and_no_port_25(view: ServerView) -> None:
    proc = view_run_postconf(view, "-M", "smtp/inet", "submission/inet", "2525/inet")
    services = [ln.split()[:8] for ln in proc.stdout.splitlines()]
    assert services == [
        ["submission", "inet", "n", "-", "n", "-", "-", "smtpd"],
        ["2525", "inet", "n", "-", "n", "-", "-", "smtpd"],
    ]


@pytest.mark.daemons
def test_submission_requires_starttls_and_offers_auth_only_over_it(service_params: dict[str, str]) -> None:
    got = {k.split("/", 2)[2]: v for k, v in service_params.items() if k.startswith("submission/inet/")}
    assert got == {
        "syslog_name": "postfix/submission",
        "smtpd_tls_security_level": "encrypt",
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_tls_auth_only": "yes",
        "smtpd_client_restrictions": "permit_sasl_authenticated,reject",
        "smtpd_sender_restrictions": "reject_authenticated_sender_login_mismatch",
        "milter_macro_daemon_name": "ORIGINATING",
        "smtpd_upstream_proxy_protocol": "haproxy",
        "mynetworks": "",
    }


@pytest.mark.daemons
def test_internal_relay_takes_no_proxy_offers_no_auth_and_serves_only_the_mailstores(
    service_params: dict[str, str],
) -> None:
    got = {k.split("/", 2)[2]: v for k, v in service_params.items() if k.startswith("2525/inet/")}
    assert got == {
        "syslog_name": "postfix/relay",
        "smtpd_sasl_auth_enable": "no",
        "mynetworks": "10.10.3.0/24",
        "smtpd_client_restrictions": "permit_mynetworks,reject",
        "smtpd_relay_restrictions": "permit_mynetworks,reject",
        "smtpd_client_event_limit_exceptions": "10.10.3.0/24",
    }


def test_ports_without_a_proxy_pool_do_not_expect_proxy() -> None:
    ctx = dataclasses.replace(_sample.context(ROLE), proxy_ports=frozenset())
    files = server_files(ctx, {**SAMPLE, **_dkim_sample_values(ctx)})
    assert "smtpd_upstream_proxy_protocol" not in files["/etc/postfix/master.cf"]


# ---- Postfix: whole-instance checks and maps --------------------------------------------------------


@pytest.mark.daemons
def test_postfix_check_prints_no_warnings(view: ServerView) -> None:
    requires("postfix", "script")
    proc = view.run(["postfix", "check"], tty=True)
    assert (proc.returncode, warnings_in(proc.stdout + proc.stderr)) == (0, [])


@pytest.mark.daemons
def test_postfix_3_7_render_prints_nothing_at_all(tmp_path: Path) -> None:
    requires("postfix", "script", "unshare", root=True)
    newer = dataclasses.replace(PROFILE, versions=_Attrs("test", {**PROFILE.versions, "postfix": "3.7"}))
    ctx = _sample.context(ROLE)
    view = ServerView(write_tree(server_files(ctx, {**SAMPLE, **_dkim_sample_values(ctx)}, newer), tmp_path / "r"),
                      tmp_path / "s")  # fmt: skip
    proc = view.run(["postfix", "check"], tty=True)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


@pytest.mark.daemons
def test_transport_map_sends_every_served_domain_to_the_delivery_vip(view: ServerView) -> None:
    requires("postmap")
    built = view.run(["postmap", "hash:/etc/postfix/transport"])
    assert built.returncode == 0, built.stderr
    got = {
        d: view.run(["postmap", "-q", d, "hash:/etc/postfix/transport"]).stdout.strip()
        for d in _sample.DIRECTORY.domains
    }
    vip = SAMPLE["vip.mailstore"]
    assert got == {"domain01.dom": f"smtp:[{vip}]:25", "domain02.dom": f"smtp:[{vip}]:25"}


@pytest.mark.daemons
def test_transport_map_has_no_other_destinations(view: ServerView) -> None:
    requires("postmap")
    view.run(["postmap", "hash:/etc/postfix/transport"])
    proc = view.run(["postmap", "-s", "hash:/etc/postfix/transport"])
    assert sorted(ln.split()[0] for ln in proc.stdout.splitlines()) == ["domain01.dom", "domain02.dom"]


def test_sender_login_map_is_readable_only_by_root_and_postfix() -> None:
    f = render_layer(_sample.context(ROLE)).file("/etc/postfix/ldap-sender-login.cf")
    assert (f.owner, f.mode) == ("root:postfix", "0640")


# ---- Cyrus SASL / saslauthd (rendered text) ---------------------------------------------------------


def test_postfix_sasl_uses_saslauthd_with_plain_and_login(files: dict[str, str]) -> None:
    assert table_rows(files["/etc/sasl2/smtpd.conf"]) == [
        ["pwcheck_method:", "saslauthd"],
        ["saslauthd_path:", "/run/saslauthd/mux"],
        ["mech_list:", "PLAIN", "LOGIN"],
    ]


def test_saslauthd_uses_ldap_with_the_rendered_config(files: dict[str, str]) -> None:
    assert table_rows(files["/etc/sysconfig/saslauthd"]) == [
        ["SOCKETDIR=/run/saslauthd"],
        ["MECH=ldap"],
        ['FLAGS="-O', '/etc/saslauthd.conf"'],
    ]


def test_a_profile_with_debians_saslauthd_defaults_gets_debians_variable_names() -> None:
    paths = {**PROFILE.paths, "saslauthd_sysconfig": "/etc/default/saslauthd"}
    debian = dataclasses.replace(PROFILE, paths=_Attrs("test.paths", paths))
    ctx = _sample.context(ROLE)
    files = server_files(ctx, {**SAMPLE, **_dkim_sample_values(ctx)}, debian)
    assert table_rows(files["/etc/default/saslauthd"]) == [
        ['MECHANISMS="ldap"'],
        ['MECH_OPTIONS="/etc/saslauthd.conf"'],
        ["THREADS=5"],
        ['OPTIONS="-m', '/run/saslauthd"'],
    ]


def test_saslauthd_conf_is_root_only() -> None:
    f = render_layer(_sample.context(ROLE)).file("/etc/saslauthd.conf")
    assert (f.owner, f.mode) == ("root:root", "0600")


def test_saslauthd_binds_as_the_user_over_verified_ldaps(files: dict[str, str]) -> None:
    conf = dict(ln.split(": ", 1) for ln in files["/etc/saslauthd.conf"].splitlines() if ln and ln[0] != "#")
    assert conf == {
        "ldap_servers": "ldaps://dc1.domain01.dom:636",
        "ldap_version": "3",
        "ldap_tls_check_peer": "yes",
        "ldap_tls_cacert_file": "/etc/pki/tls/certs/ca-bundle.crt",
        "ldap_bind_dn": "cn=correoapp,ou=mailapps,dc=domain01,dc=dom",
        "ldap_password": SAMPLE["var.ad_bind_password"],
        "ldap_search_base": "dc=domain01,dc=dom",
        "ldap_scope": "sub",
        "ldap_referrals": "no",
        "ldap_filter": "(&(objectClass=person)(|(mail=%u)(&(sAMAccountName=%u)(!(sAMAccountName=*@*))))"
                       "(|(mail=*@domain01.dom)(mail=*@domain02.dom)))",
        "ldap_auth_method": "bind",
        "ldap_timeout": "10",
        "ldap_time_limit": "10",
    }


def test_starttls_directory_turns_on_start_tls_in_saslauthd_and_the_map() -> None:
    directory = dataclasses.replace(_sample.DIRECTORY, urls=("ldap://dc1.domain01.dom",), tls=LdapTls.STARTTLS)
    ctx = _sample.context(ROLE).with_platform(directory=directory)
    files = server_files(ctx, {**SAMPLE, **_dkim_sample_values(ctx)})
    got = (
        "ldap_start_tls: yes" in files["/etc/saslauthd.conf"],
        "start_tls = yes" in files["/etc/postfix/ldap-sender-login.cf"],
    )
    assert got == (True, True)


def test_a_configured_directory_ca_is_written_and_used() -> None:
    pem = "-----BEGIN CERTIFICATE-----\nTESTCA\n-----END CERTIFICATE-----"
    directory = dataclasses.replace(_sample.DIRECTORY, ca_cert_pem=pem)
    ctx = _sample.context(ROLE).with_platform(directory=directory)
    files = server_files(ctx, {**SAMPLE, **_dkim_sample_values(ctx)})
    ca = "/etc/pki/mailstrata/ad-ca.pem"
    got = (
        files[ca].endswith(pem + "\n"),
        f"ldap_tls_cacert_file: {ca}" in files["/etc/saslauthd.conf"],
        f"tls_ca_cert_file = {ca}" in files["/etc/postfix/ldap-sender-login.cf"],
    )
    assert got == (True, True, True)


def test_a_provided_certificate_is_written_from_references_root_only_for_the_key() -> None:
    tls = Tls(
        source=TlsSource.PROVIDED,
        certificate=Secret(ref="${var.tls_certificate}"),
        private_key=Secret(ref="${var.tls_private_key}"),
    )
    layer = render_layer(_sample.context(ROLE).with_platform(tls=tls))
    got = {
        f.path: (f.content, f.owner, f.mode, f.b64) for f in layer.files if f.path.startswith("/etc/pki/mailstrata/")
    }
    assert got == {
        "/etc/pki/mailstrata/server.crt": ("${base64encode(var.tls_certificate)}", "root:root", "0644", True),
        "/etc/pki/mailstrata/server.key": ("${base64encode(var.tls_private_key)}", "root:root", "0600", True),
    }


# ---- OpenDKIM -----------------------------------------------------------------------------------------


def _dkim_sample_values(ctx: LayerContext, key: str = _sample.SAMPLE_DKIM_KEY) -> dict[str, str]:
    assert ctx.platform.dkim is not None
    return {ctx.platform.dkim.private_key.ref[2:-1]: key}


@pytest.mark.daemons
def test_opendkim_config_check_passes(view: ServerView) -> None:
    requires("opendkim")
    proc = view.run(["opendkim", "-n", "-x", "/etc/opendkim.conf"])
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def test_opendkim_signs_only(files: dict[str, str]) -> None:
    conf = table_rows(files["/etc/opendkim.conf"])
    assert [r for r in conf if r[0] in ("Mode", "Canonicalization", "Socket")] == [
        ["Mode", "s"],
        ["Socket", "inet:8891@127.0.0.1"],
        ["Canonicalization", "relaxed/relaxed"],
    ]


def test_opendkim_signs_by_address_for_this_host_and_the_mailstores_only(files: dict[str, str]) -> None:
    # Webmail's mail is signed because it is submitted (ORIGINATING), never because of its address.
    assert table_rows(files["/etc/opendkim/TrustedHosts"]) == [["127.0.0.0/8"], ["10.10.3.0/24"], ["::1"]]


def test_one_key_signs_each_served_domain_as_itself(files: dict[str, str]) -> None:
    # "%" in the KeyTable's domain field is OpenDKIM's "the sender's domain": d= is each domain's own.
    got = (table_rows(files["/etc/opendkim/KeyTable"]), table_rows(files["/etc/opendkim/SigningTable"]))
    assert got == (
        [["platform", "%:mail2026:/etc/opendkim/keys/mail2026.private"]],
        [["domain01.dom", "platform"], ["domain02.dom", "platform"]],
    )


def test_signing_table_grows_by_one_line_per_domain_and_the_key_stays_one() -> None:
    domains = tuple(f"d{i:03d}.example" for i in range(300))
    layer = render_layer(limits.with_domains(_sample.context(ROLE), domains))
    keys = [f.path for f in layer.files if f.path.startswith("/etc/opendkim/keys/")]
    signing = table_rows(layer.file("/etc/opendkim/SigningTable").content)
    assert (keys, [row[0] for row in signing]) == (["/etc/opendkim/keys/mail2026.private"], list(domains))


def test_key_files_are_the_ones_the_keytable_names(files: dict[str, str]) -> None:
    named = sorted(row[1].split(":")[2] for row in table_rows(files["/etc/opendkim/KeyTable"]))
    written = sorted(p for p in files if p.startswith("/etc/opendkim/keys/"))
    assert named == written


def test_dkim_keys_are_only_readable_by_opendkim() -> None:
    layer = render_layer(_sample.context(ROLE))
    got = {(f.owner, f.mode, f.b64) for f in layer.files if f.path.startswith("/etc/opendkim/keys/")}
    assert got == {("opendkim:opendkim", "0600", True)}


def test_dkim_private_keys_travel_as_base64_references_only() -> None:
    text = _sample.cloud_config_text(ROLE)
    entries = [f for f in yaml.safe_load(text)["write_files"] if f["path"].startswith("/etc/opendkim/keys/")]
    got = (
        _sample.SAMPLE_DKIM_KEY in text,
        [f["encoding"] for f in entries],
        [base64.b64decode(f["content"]).decode() for f in entries],
    )
    assert got == (False, ["b64"], [_sample.SAMPLE_DKIM_KEY])


def test_synthesized_body_holds_secret_references_not_values() -> None:
    body = render_layer(_sample.context(ROLE)).body_text()
    got = (
        [v for v in (SAMPLE["var.ad_bind_password"], _sample.SAMPLE_DKIM_KEY) if v in body],
        body.count("${var.ad_bind_password}"),
        body.count("${base64encode(tls_private_key.dkim.private_key_pem)}"),
    )
    assert got == ([], 2, 1)


def test_smtp_out_without_the_platform_dkim_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        render_layer(_sample.context(ROLE).with_platform(dkim=None))
    assert str(err.value.problems[0]) == (
        "dkim: smtp_out signs every served domain's mail with the platform's DKIM key, got none; "
        "give the context a DkimKey"
    )


# ---- ClamAV -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clamconf(files: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """clamconf reads clamd.conf and clamav-milter.conf from one directory: the rendered two, renamed."""
    requires("clamconf")
    d = tmp_path_factory.mktemp("clamconf")
    (d / "clamd.conf").write_text(files["/etc/clamd.d/scan.conf"])
    (d / "clamav-milter.conf").write_text(files["/etc/mail/clamav-milter.conf"])
    return subprocess.run(["clamconf", "-n", "-c", str(d)], capture_output=True, text=True)


def _clamconf_section(out: str, name: str) -> dict[str, str]:
    section = out.split(f"Config file: {name}\n", 1)[1].split("\n\n", 1)[0]
    return dict(ln.split(" = ", 1) for ln in section.splitlines() if " = " in ln)


@pytest.mark.daemons
def test_clamconf_parses_both_configs_without_errors(clamconf: subprocess.CompletedProcess[str]) -> None:
    assert (clamconf.returncode, warnings_in(clamconf.stderr)) == (0, [])


@pytest.mark.daemons
def test_clamd_listens_on_a_group_socket_only(clamconf: subprocess.CompletedProcess[str]) -> None:
    got = _clamconf_section(clamconf.stdout, "clamd.conf")
    assert {k: got.get(k) for k in ("LocalSocket", "LocalSocketGroup", "LocalSocketMode", "TCPSocket",
                                    "User", "StreamMaxLength")} == {
        "LocalSocket": '"/run/clamd.scan/clamd.sock"',
        "LocalSocketGroup": '"virusgroup"',
        "LocalSocketMode": '"660"',
        "TCPSocket": None,
        "User": '"clamscan"',
        "StreamMaxLength": '"26214400"',
    }  # fmt: skip


@pytest.mark.daemons
def test_clamav_milter_rejects_infected_mail_and_reaches_clamd(clamconf: subprocess.CompletedProcess[str]) -> None:
    got = _clamconf_section(clamconf.stdout, "clamav-milter.conf")
    keys = ("MilterSocket", "ClamdSocket", "OnInfected", "RejectMsg", "OnFail", "AddHeader")
    assert {k: got.get(k) for k in keys} == {
        "MilterSocket": '"inet:7357@127.0.0.1"',
        "ClamdSocket": '"unix:/run/clamd.scan/clamd.sock"',
        "OnInfected": '"Reject"',
        "RejectMsg": '"Message refused: it contains a virus (%v)"',
        "OnFail": '"Accept"',
        "AddHeader": '"No"',
    }


def test_postfix_milter_addresses_match_the_milters_sockets(files: dict[str, str]) -> None:
    milter = table_rows(files["/etc/mail/clamav-milter.conf"])
    dkim = table_rows(files["/etc/opendkim.conf"])
    sockets = [next(r[1] for r in milter if r[0] == "MilterSocket"), next(r[1] for r in dkim if r[0] == "Socket")]
    assert [postfix.postfix_milter(s) for s in sockets] == ["inet:127.0.0.1:7357", "inet:127.0.0.1:8891"]


# ---- the role script ----------------------------------------------------------------------------------


@pytest.mark.daemons
def test_role_script_passes_shellcheck(files: dict[str, str], tmp_path: Path) -> None:
    requires("shellcheck")
    script = tmp_path / "mailstrata-setup-role"
    script.write_text(files["/usr/local/sbin/mailstrata-setup-role"])
    proc = subprocess.run(["shellcheck", "-s", "bash", str(script)], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout) == (0, "")


def test_role_script_indexes_the_transport_map(files: dict[str, str]) -> None:
    assert "/usr/sbin/postmap hash:/etc/postfix/transport\n" in files["/usr/local/sbin/mailstrata-setup-role"]


# ---- LDAP side: saslauthd and the sender login map against a real Samba AD -------------------------


@pytest.fixture(scope="module")
def samba(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaAD]:
    requires("samba", "samba-tool", "ip", "openssl", root=True)
    with (
        private_netns(f"mstest-out-{os.getpid()}") as netns,
        SambaAD(tmp_path_factory.mktemp("smtp-out-ad"), netns=netns) as ad,
    ):
        yield ad


def _samba_directory(ad: SambaAD, tls: LdapTls) -> DirectorySettings:
    """The test directory as the platform config would describe it (the bind password stays a reference)."""
    return DirectorySettings(
        urls=(ad.ldaps_url if tls is LdapTls.LDAPS else ad.ldap_url,),
        tls=tls,
        base_dn=ad.base_dn,
        bind_dn=ad.bind_dn,
        bind_password=Secret(ref="${var.ad_bind_password}"),
        domains=ad.domains,
        ca_cert_pem=ad.ca_cert_pem,
    )


def _samba_files(ad: SambaAD, tls: LdapTls) -> dict[str, str]:
    """The layer rendered for the test directory: its URL, CA and bind password are the inputs."""
    ctx = _sample.context(ROLE).with_platform(directory=_samba_directory(ad, tls))
    return server_files(ctx, {**SAMPLE, **_dkim_sample_values(ctx), "var.ad_bind_password": ad.bind_password})


class Saslauthd:
    """saslauthd -a ldap -O /etc/saslauthd.conf (the rendered file) in Samba's namespace."""

    def __init__(self, view: ServerView, netns: str, mux_dir: Path) -> None:
        mux_dir.mkdir(parents=True, exist_ok=True)
        self.mux = mux_dir / "mux"
        self.log = mux_dir.parent / "saslauthd.log"
        cmd = ["saslauthd", "-a", "ldap", "-O", "/etc/saslauthd.conf", "-m", str(mux_dir), "-d", "-n", "0"]
        with self.log.open("w") as out:
            # saslauthd signals its whole process group when it stops: give it its own.
            self.proc = subprocess.Popen(view.argv(cmd, netns=netns), stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 10
        while not self.mux.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"saslauthd did not start:\n{self.log.read_text()}")
            time.sleep(0.05)

    def check(self, login: str, password: str) -> str:
        proc = subprocess.run(["testsaslauthd", "-u", login, "-p", password, "-s", "smtp", "-f", str(self.mux)],
                              capture_output=True, text=True, timeout=30)  # fmt: skip
        return proc.stdout.strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def running_saslauthd(ad: SambaAD, tls: LdapTls, base: Path) -> Iterator[Saslauthd]:
    requires("saslauthd", "testsaslauthd", "unshare")
    assert ad.netns is not None
    view = ServerView(write_tree(_samba_files(ad, tls), base / "root"), base / "scratch")
    sasl = Saslauthd(view, ad.netns, base / "mux")
    try:
        yield sasl
    finally:
        sasl.stop()


@pytest.fixture(scope="module")
def saslauthd_ldaps(samba: SambaAD, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Saslauthd]:
    with running_saslauthd(samba, LdapTls.LDAPS, tmp_path_factory.mktemp("sasl-ldaps")) as sasl:
        yield sasl


@pytest.fixture(scope="module")
def samba_view(samba: SambaAD, tmp_path_factory: pytest.TempPathFactory) -> ServerView:
    base = tmp_path_factory.mktemp("out-ldap")
    return ServerView(write_tree(_samba_files(samba, LdapTls.LDAPS), base / "root"), base / "scratch")


@pytest.mark.daemons
def test_testsaslauthd_accepts_a_valid_login(samba: SambaAD, saslauthd_ldaps: Saslauthd) -> None:
    user = samba.users["usuario01"]
    assert saslauthd_ldaps.check(user.login, user.password) == '0: OK "Success."'


@pytest.mark.daemons
def test_testsaslauthd_refuses_a_wrong_password(saslauthd_ldaps: Saslauthd) -> None:
    assert saslauthd_ldaps.check("usuario01", "not-the-password") == '0: NO "authentication failed"'


@pytest.mark.daemons
def test_testsaslauthd_accepts_the_login_written_as_an_address(samba: SambaAD, saslauthd_ldaps: Saslauthd) -> None:
    user = samba.users["usuario05"]
    assert saslauthd_ldaps.check("usuario05@domain02.dom", user.password) == '0: OK "Success."'


@pytest.mark.daemons
def test_testsaslauthd_refuses_an_account_without_a_mailbox(samba: SambaAD, saslauthd_ldaps: Saslauthd) -> None:
    # The bind account authenticates fine against AD, but has no mail in a served domain: it may not relay.
    assert saslauthd_ldaps.check("correoapp", samba.bind_password) == '0: NO "authentication failed"'


@pytest.mark.daemons
def test_testsaslauthd_works_over_starttls(samba: SambaAD, tmp_path: Path) -> None:
    user = samba.users["usuario02"]
    with running_saslauthd(samba, LdapTls.STARTTLS, tmp_path) as sasl:
        assert sasl.check(user.login, user.password) == '0: OK "Success."'


@pytest.mark.daemons
def test_sender_login_map_gives_the_login_and_the_address(samba: SambaAD, samba_view: ServerView) -> None:
    requires("postmap")
    netns = samba.netns
    assert netns is not None
    got = {
        a: samba_view.run(["postmap", "-q", a, "ldap:/etc/postfix/ldap-sender-login.cf"], netns=netns).stdout.strip()
        for a in ("usuario01@domain01.dom", "usuario05@domain02.dom")
    }
    assert got == {
        "usuario01@domain01.dom": "usuario01,usuario01@domain01.dom",
        "usuario05@domain02.dom": "usuario05,usuario05@domain02.dom",
    }


@pytest.mark.daemons
def test_sender_login_map_owns_no_address_outside_the_people(samba: SambaAD, samba_view: ServerView) -> None:
    # A distribution list and a foreign address have no owner: submission refuses them as senders.
    requires("postmap")
    netns = samba.netns
    assert netns is not None
    got = [
        samba_view.run(["postmap", "-q", a, "ldap:/etc/postfix/ldap-sender-login.cf"], netns=netns).returncode
        for a in ("ventas@domain01.dom", "someone@example.com")
    ]
    assert got == [1, 1]


# ---- live: Postfix, clamd, clamav-milter and OpenDKIM together ----------------------------------------
#
# The rendered configs run for real in a network namespace with only `lo`. Debian's packages differ from
# CentOS 7's in user names and in where sockets may live, so the layer is rendered with a profile that says
# so, as the debian12 profile will: clamd and clamav-milter run as `clamav`, pid files and the clamd socket
# sit in a scratch directory, Postfix is 3.7. The delivery VIP is 127.0.0.12, where smtp-sink keeps what
# arrives. The only test-side override is Postfix's log file (there is no syslog here).

EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
DELIVERY_VIP = "127.0.0.12"
# The mailstores' and webmail's servers, inside the namespace: the internal relay sees their real addresses.
MAILSTORE_SERVER = "127.0.0.30"
WEBMAIL_SERVER = "127.0.0.40"
OTHER_HOST = "127.0.0.99"  # any other host that could reach the port, were the security group wrong
INTERNET_CLIENT = "203.0.113.5"  # ditto (TEST-NET-3)


def debian_daemons_profile(run: Path) -> OsProfile:
    users = {**PROFILE.users, "clamd": "clamav", "clamd_socket_group": "clamav", "clamav_milter": "clamav"}
    paths = {
        **PROFILE.paths,
        "clamd_socket": f"{run}/clamd.sock",
        "clamd_pid": f"{run}/clamd.pid",
        "clamav_milter_pid": f"{run}/clamav-milter.pid",
        "opendkim_pid": f"{run}/opendkim.pid",
        "clamav_db_dir": f"{run}/clamdb",
        "freshclam": "/bin/true",  # nothing leaves the namespace anyway; keep the host's signature dir alone
        "ca_bundle": "/etc/ssl/certs/ca-certificates.crt",
        # Debian's Postfix reads Cyrus SASL settings from <config_directory>/sasl (twin-notes.md).
        "sasl_config_dir": "/etc/postfix/sasl",
        "saslauthd_run_dir": f"{run}/saslauthd",
    }
    # The server's own address: 127.0.0.12 (the delivery VIP) is another host here.
    values = {**PROFILE.values, "inet_interfaces": "127.0.0.1"}
    commands = {**PROFILE.commands, "daemon_reload": "true"}  # no systemd here: the test starts every daemon
    return dataclasses.replace(
        PROFILE,
        users=_Attrs("debian-daemons.users", users),
        commands=_Attrs("debian-daemons.commands", commands),
        paths=_Attrs("debian-daemons.paths", paths),
        values=_Attrs("debian-daemons.values", values),
        versions=_Attrs("debian-daemons.versions", {**PROFILE.versions, "postfix": "3.7"}),
    )


class LiveOut:
    """Postfix, saslauthd, both milters and a sink at the delivery VIP, in the test directory's namespace."""

    def __init__(self, base: Path, ad: SambaAD) -> None:
        assert ad.netns is not None
        self.base = base
        self.ad = ad
        self.netns = ad.netns
        self.run_dir = base / "run"
        self.sink = base / "sink"
        (self.run_dir / "clamdb").mkdir(parents=True)
        (self.run_dir / "saslauthd").mkdir()
        self.sink.mkdir()
        self.run_dir.chmod(0o777)  # clamd (clamav) writes its socket and pid here
        (self.run_dir / "clamdb" / "eicar.ndb").write_text(f"Mailstrata-Test-EICAR:0:*:{EICAR.encode().hex()}\n")
        self.key = subprocess.run(["openssl", "genrsa", "2048"], capture_output=True, text=True, check=True).stdout
        ctx = _sample.context(ROLE)
        net = ctx.platform.networks
        servers = {**net.servers, Role.MAILSTORE: (f"{MAILSTORE_SERVER}/32",), Role.WEBMAIL: (f"{WEBMAIL_SERVER}/32",)}
        ctx = ctx.with_platform(vips=dataclasses.replace(ctx.platform.vips, mailstore=DELIVERY_VIP),
            directory=_samba_directory(ad, LdapTls.LDAPS), networks=dataclasses.replace(net, servers=servers),
        )
        values = {
            **SAMPLE,
            **_dkim_sample_values(ctx, self.key),
            "var.ad_bind_password": ad.bind_password,
        }
        root = write_tree(server_files(ctx, values, debian_daemons_profile(self.run_dir)), base / "root")
        # What mailstrata-setup does before the role script: owners and modes of the secret files, and a
        # self-signed certificate when none is configured.
        for key in (root / "etc/opendkim/keys").iterdir():
            shutil.chown(key, "opendkim", "opendkim")
            key.chmod(0o600)
        sender_map = root / "etc/postfix/ldap-sender-login.cf"  # the From milter reads it through Postfix's group
        shutil.chown(sender_map, "root", "postfix")
        sender_map.chmod(0o640)
        tls = root / "etc/pki/mailstrata"
        tls.mkdir(parents=True, exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-days", "2", "-subj", "/CN=smtp-out-01.test", "-keyout", str(tls / "server.key"),
                        "-out", str(tls / "server.crt")], check=True, capture_output=True)  # fmt: skip
        self.role_script = root / "usr/local/sbin/mailstrata-setup-role"
        # Test-side only: Postfix logs to a file, as there is no syslog here.
        self.maillog = base / "maillog"
        with (root / "etc/postfix/main.cf").open("a") as f:
            f.write(f"maillog_file = {self.maillog}\nmaillog_file_prefixes = {base}\n")
        self.view = ServerView(root, base / "scratch")
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        v, ns = self.view, self.netns
        for address in (DELIVERY_VIP, MAILSTORE_SERVER, WEBMAIL_SERVER, OTHER_HOST):
            subprocess.run(["ip", "-n", ns, "addr", "add", f"{address}/8", "dev", "lo"], check=True)
        setup = v.run(["bash", str(self.role_script)], netns=ns)  # the rendered role script itself
        assert setup.returncode == 0, setup.stdout + setup.stderr
        clamd = self._spawn("clamd", ["clamd", "-F", "-c", "/etc/clamd.d/scan.conf"])
        wait_for(lambda: (self.run_dir / "clamd.sock").exists() or clamd.poll() is not None, "clamd", 90,
                 log=lambda: self._log("clamd"))  # fmt: skip
        assert clamd.poll() is None, self._log("clamd")
        self._spawn(
            "clamav-milter", ["clamav-milter", "--config-file=/etc/mail/clamav-milter.conf", "--foreground=yes"]
        )
        self._spawn("opendkim", ["opendkim", "-f", "-x", "/etc/opendkim.conf"])
        self._spawn("from-check", unit_command(self.view.root))
        mux = self.run_dir / "saslauthd" / "mux"
        saslauthd = ["saslauthd", "-a", "ldap", "-O", "/etc/saslauthd.conf", "-m", str(mux.parent), "-d", "-n", "0"]
        self._spawn("saslauthd", saslauthd)
        self._spawn("sink", ["smtp-sink", "-u", "postfix", "-d", f"{self.sink}/%M.", f"{DELIVERY_VIP}:25", "10"])
        shutil.chown(self.sink, "postfix")
        for cmd in (["postfix", "check"], ["postfix", "start"]):
            proc = v.run(cmd, netns=ns, tty=True)
            assert proc.returncode == 0, proc.stdout + proc.stderr + self._maillog()
        wanted = {"127.0.0.1:7357", "127.0.0.1:7358", "127.0.0.1:8891", "127.0.0.1:2525", "127.0.0.1:587",
                  f"{DELIVERY_VIP}:25"}
        wait_for(lambda: self._listening(wanted) and mux.exists(), "listeners", 90, log=self._diagnosis)

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        with (self.base / f"{name}.log").open("wb") as out:
            proc = subprocess.Popen(self.view.argv(cmd, netns=self.netns), stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip
        self.procs.append(proc)
        return proc

    def _listening(self, wanted: set[str]) -> bool:
        out = subprocess.run(["ip", "netns", "exec", self.netns, "ss", "-Hltn"], capture_output=True, text=True).stdout
        return wanted <= {line.split()[3] for line in out.splitlines()}

    def _log(self, name: str) -> str:
        return (self.base / f"{name}.log").read_text(errors="replace")

    def _diagnosis(self) -> str:
        """What a start that timed out shows: Postfix's log, the TCP listeners, and the other daemons' logs."""
        ss = subprocess.run(["ip", "netns", "exec", self.netns, "ss", "-Hltn"], capture_output=True, text=True).stdout
        others = "".join(f"--- {n}\n{self._log(n)}" for n in ("clamav-milter", "from-check", "opendkim", "saslauthd"))
        return f"{self._maillog()}--- listening\n{ss}{others}"

    def _maillog(self) -> str:
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else "(no maillog)"

    def swaks(self, port: int, client: str, sender: str, rcpt: str, body: str, *extra: str) -> str:
        """One SMTP transaction as the LB would pass it (a PROXY header naming `client`); swaks's transcript."""
        cmd = ["swaks", "--server", f"127.0.0.1:{port}", "--proxy-version", "1", "--proxy-family", "TCP4",
               "--proxy-source", client, "--proxy-source-port", "40000", "--proxy-dest", "127.0.0.1",
               "--proxy-dest-port", str(port), "--helo", "client.test", "--from", sender, "--to", rcpt,
               "--header", f"From: <{sender}>", "--header", "Subject: mailstrata test", "--body", body,
               *extra]  # fmt: skip
        proc = subprocess.run(["ip", "netns", "exec", self.netns, *cmd], capture_output=True, text=True, timeout=60)
        return proc.stdout + proc.stderr

    def relay(self, source: str, sender: str, rcpt: str, body: str, *extra: str) -> str:
        """The internal relay port, no AUTH, no PROXY header, from `source` itself: how the mailstores' bounces
        arrive (directly on the server, not through the LB)."""
        cmd = ["swaks", "--server", f"127.0.0.1:{RELAY_PORT}", "--local-interface", source, "--helo", "client.test",
               "--from", sender, "--to", rcpt, "--header", f"From: <{sender}>", "--header", "Subject: mailstrata test",
               "--body", body, *extra]  # fmt: skip
        proc = subprocess.run(["ip", "netns", "exec", self.netns, *cmd], capture_output=True, text=True, timeout=60)
        return proc.stdout + proc.stderr

    def submit(self, client: str, login: str, sender: str, rcpt: str, body: str) -> str:
        """Port 587 with STARTTLS and AUTH PLAIN as `login` (its password from the test directory)."""
        password = self.ad.users[login].password
        return self.swaks(SUBMISSION_PORT, client, sender, rcpt, body, "--tls", "--auth", "PLAIN",
                          "--auth-user", login, "--auth-password", password)  # fmt: skip

    def delivered(self, body: str, timeout: float = 30) -> str:
        """The message the sink received whose body is `body` (waits for it)."""

        def find() -> str | None:
            for p in self.sink.iterdir():
                text = p.read_text(errors="replace")
                if f"\n\n{body}\n" in text:
                    return text
            return None

        wait_for(lambda: find() is not None, f"the delivery of {body!r} to the sink", timeout, log=self._maillog)
        found = find()
        assert found is not None
        return found

    def stop(self) -> None:
        self.view.run(["postfix", "stop"], netns=self.netns)
        master_pid = self.view.scratch / "spool" / "pid" / "master.pid"
        if master_pid.exists():  # `postfix stop` failed: end this test's master (and its children) by its id
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(master_pid.read_text().split()[0]), 9)
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def live(samba: SambaAD) -> Iterator[LiveOut]:
    requires("postfix", "clamd", "clamav-milter", "opendkim", "saslauthd", "smtp-sink", "swaks", "openssl", "ss")
    # Not under pytest's 0700 temp root: clamd, OpenDKIM and Postfix drop to their own users.
    base = Path(tempfile.mkdtemp(prefix="mailstrata-live-out-"))
    base.chmod(0o755)
    out: LiveOut | None = None
    try:
        out = LiveOut(base, samba)
        out.start()
        yield out
    finally:
        if out is not None:
            out.stop()
        shutil.rmtree(base, ignore_errors=True)


def dkim_tags(message: str) -> dict[str, str]:
    sig = re.search(r"^DKIM-Signature:(.*(?:\n[ \t].*)*)", message, re.M)
    assert sig is not None, message
    return dict(t.split("=", 1) for t in re.sub(r"\s+", "", sig.group(1)).split(";") if "=" in t)


@pytest.mark.daemons
def test_live_mail_from_a_mailstore_is_relayed_to_the_delivery_vip_and_signed(live: LiveOut) -> None:
    sent = live.relay(MAILSTORE_SERVER, "usuario01@domain01.dom", "usuario02@domain01.dom", "hello")
    assert "<-  250 2.0.0 Ok: queued" in sent, sent
    tags = dkim_tags(live.delivered("hello"))
    assert (tags["d"], tags["s"], tags["c"]) == ("domain01.dom", "mail2026", "relaxed/relaxed")


@pytest.mark.daemons
def test_live_signature_verifies_with_the_domains_public_key(live: LiveOut, tmp_path: Path) -> None:
    # OpenDKIM's own verifier, with the public half of the key Terraform would have made, as DNS would hold it.
    der = subprocess.run(["openssl", "pkey", "-pubout", "-outform", "DER"], input=live.key.encode(),
                         capture_output=True, check=True).stdout  # fmt: skip
    keys = tmp_path / "public-keys"
    keys.write_text(f"mail2026._domainkey.domain01.dom v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}\n")
    conf = tmp_path / "verify.conf"
    conf.write_text(f"Mode v\nSyslog no\nTestPublicKeys {keys}\n")
    live.relay(MAILSTORE_SERVER, "usuario01@domain01.dom", "usuario02@domain01.dom", "verify me")
    message = tmp_path / "message.eml"
    message.write_text(live.delivered("verify me"))
    proc = subprocess.run(["opendkim", "-x", str(conf), "-t", str(message)], capture_output=True, text=True)
    assert proc.stdout.strip() == (
        f"opendkim: {message}: verification (s=mail2026, d=domain01.dom, 2048-bit key) succeeded"
    )


def published_dkim_dns(public_pem: str) -> Callable[..., bytes]:
    """A resolver over the default platform's `dns_records` output, evaluated by Terraform with the key's
    public half: dkimpy's `dnsfunc`, following CNAMEs as a resolver does. Its `asked` lists the names."""
    doc = default_platform()
    value = doc["output"]["dns_records"]["value"]
    sample = _sample.standins(doc, [value])  # the stack's locals too: the SPF names the looked-up egress address
    standins = StandIns(attributes={**sample.attributes, "tls_private_key.dkim.public_key_pem": public_pem},
                        variables=sample.variables)
    requires_terraform("for the dns_records output")
    records = evaluate({"r": value}, standins, doc=doc)["r"]
    cnames = {r["name"]: r["value"] for r in records if r["type"] == "CNAME"}
    txts = {r["name"]: re.findall(r'"([^"]*)"', r["value"]) for r in records if r["type"] == "TXT"}
    asked: list[str] = []

    def txt(name: bytes, timeout: int = 5) -> bytes:
        fqdn = name.decode().rstrip(".") + "."
        asked.append(fqdn)
        for _ in range(8):  # a resolver follows a CNAME chain; none is longer here
            fqdn = cnames.get(fqdn, fqdn)
        strings = txts[fqdn]
        assert max(len(s) for s in strings) <= 255, strings  # one TXT string holds at most 255 characters
        return "".join(strings).encode()

    txt.asked = asked  # type: ignore[attr-defined]
    return txt


@pytest.mark.daemons
def test_live_one_key_signs_two_domains_and_each_verifies_through_its_cname(live: LiveOut) -> None:
    import dkim

    # GIVEN the records the platform publishes, with the public half of the one key every server holds
    public = subprocess.run(["openssl", "pkey", "-pubout"], input=live.key, capture_output=True, text=True,
                            check=True).stdout  # fmt: skip
    dns = published_dkim_dns(public)
    # WHEN OpenDKIM (the rendered config) signs mail from two different served domains
    results = []
    for sender, body in (("usuario01@domain01.dom", "first domain"), ("usuario02@domain02.dom", "second domain")):
        sent = live.relay(MAILSTORE_SERVER, sender, "usuario03@domain01.dom", body)
        assert "<-  250 2.0.0 Ok: queued" in sent, sent
        message = live.delivered(body)
        tags = dkim_tags(message)
        raw = message.replace("\r\n", "\n").replace("\n", "\r\n").encode()
        results.append((tags["d"], tags["s"], dkim.verify(raw, dnsfunc=dns)))
    # THEN each signature names its own domain, and verifies against the one TXT reached by that domain's CNAME
    assert results == [("domain01.dom", "mail2026", True), ("domain02.dom", "mail2026", True)]
    assert dns.asked == ["mail2026._domainkey.domain01.dom.", "mail2026._domainkey.domain02.dom."]  # type: ignore[attr-defined]


@pytest.mark.daemons
def test_live_infected_mail_is_rejected_with_the_virus_name(live: LiveOut) -> None:
    sent = live.relay(MAILSTORE_SERVER, "usuario01@domain01.dom", "usuario02@domain01.dom", EICAR)
    assert "<** 550 5.7.1 Message refused: it contains a virus (Mailstrata-Test-EICAR.UNOFFICIAL)" in sent, sent


def forged_clients() -> dict[str, str]:
    """What a PROXY header may claim: loopback, each platform subnet (as the sample config has them) and the
    VIP subnet. Only text in a header, inside the namespace."""
    net = _sample.context(ROLE).platform.networks
    first = {f"{r.value} subnet": str(next(ipaddress.ip_network(c[0]).hosts())) for r, c in net.servers.items() if c}
    return {"loopback": "127.0.0.1", **first, "VIP subnet": str(next(ipaddress.ip_network(net.vip_subnet[0]).hosts())),
            "the mailstore server": MAILSTORE_SERVER}


@pytest.mark.daemons
@pytest.mark.parametrize("claim", sorted(forged_clients()))
def test_live_forged_proxy_headers_relay_nothing_on_submission(live: LiveOut, claim: str) -> None:
    # Issue 9: Postfix checks only a PROXY header's syntax. Whatever address it names, no AUTH means no relay.
    sent = live.swaks(SUBMISSION_PORT, forged_clients()[claim], "spammer@example.net", "victim@example.org", "x",
                      "--tls")  # fmt: skip
    assert "Ok: queued" not in sent and re.search(r"<~\* 554 5\.7\.1 .*Client host rejected: Access denied", sent), sent


@pytest.mark.daemons
def test_live_port_25_is_closed(live: LiveOut) -> None:
    sent = live.swaks(25, INTERNET_CLIENT, "spammer@example.net", "victim@example.org", "x")
    assert "Connection refused" in sent, sent


@pytest.mark.daemons
@pytest.mark.parametrize("source", [WEBMAIL_SERVER, "127.0.0.1", OTHER_HOST])
def test_live_internal_relay_refuses_everyone_but_the_mailstores(live: LiveOut, source: str) -> None:
    sent = live.relay(source, "usuario01@domain01.dom", "victim@example.org", "x")
    refused = rf"<\*\* 554 5\.7\.1 <\S+\[{re.escape(source)}\]>: Client host rejected: Access denied"
    assert re.search(refused, sent), sent


@pytest.mark.daemons
def test_live_internal_relay_reads_no_proxy_header(live: LiveOut) -> None:
    # A PROXY header naming a mailstore, sent from webmail, is not a command: the session goes nowhere.
    sent = live.swaks(RELAY_PORT, MAILSTORE_SERVER, "usuario01@domain01.dom", "victim@example.org", "x",
                      "--local-interface", WEBMAIL_SERVER)  # fmt: skip
    assert f"<unknown[{WEBMAIL_SERVER}]>: Client host rejected: Access denied" in sent, sent


@pytest.mark.daemons
def test_live_internal_relay_offers_no_auth(live: LiveOut) -> None:
    sent = live.relay(MAILSTORE_SERVER, "usuario01@domain01.dom", "usuario02@domain01.dom", "x",
                      "--tls", "--quit-after", "AUTH", "--auth", "PLAIN", "--auth-user", "usuario01",
                      "--auth-password", "whatever")  # fmt: skip
    assert "Host did not advertise authentication" in sent, sent


@pytest.mark.daemons
def test_live_submission_offers_auth_only_after_starttls(live: LiveOut) -> None:
    plain = live.swaks(SUBMISSION_PORT, INTERNET_CLIENT, "a@b.c", "d@e.f", "x", "--quit-after", "EHLO")
    tls = live.swaks(SUBMISSION_PORT, INTERNET_CLIENT, "a@b.c", "d@e.f", "x", "--tls", "--quit-after", "HELO")
    after_tls = tls.split("<-  220 2.0.0 Ready to start TLS", 1)[1]
    got = ("AUTH" in plain, "STARTTLS" in plain, "<~  250-AUTH PLAIN LOGIN" in after_tls)
    assert got == (False, True, True), plain + tls


@pytest.mark.daemons
def test_live_submission_refuses_mail_before_starttls(live: LiveOut) -> None:
    sent = live.swaks(SUBMISSION_PORT, INTERNET_CLIENT, "usuario01@domain01.dom", "usuario02@domain01.dom", "x")
    assert "<** 530 5.7.0 Must issue a STARTTLS command first" in sent, sent


@pytest.mark.daemons
def test_live_submission_refuses_clients_that_did_not_log_in(live: LiveOut) -> None:
    sent = live.swaks(SUBMISSION_PORT, INTERNET_CLIENT, "usuario01@domain01.dom", "usuario02@domain01.dom", "x",
                      "--tls")  # fmt: skip
    assert "<~* 554 5.7.1 <unknown[203.0.113.5]>: Client host rejected: Access denied" in sent, sent


@pytest.mark.daemons
def test_live_submission_refuses_a_wrong_password(live: LiveOut) -> None:
    sent = live.swaks(SUBMISSION_PORT, INTERNET_CLIENT, "usuario01@domain01.dom", "usuario02@domain01.dom", "x",
                      "--tls", "--auth", "PLAIN", "--auth-user", "usuario01", "--auth-password", "wrong")  # fmt: skip
    assert "<~* 535 5.7.8 Error: authentication failed" in sent, sent


@pytest.mark.daemons
def test_live_submission_from_anywhere_is_relayed_and_signed_after_login(live: LiveOut) -> None:
    sent = live.submit(INTERNET_CLIENT, "usuario01", "usuario01@domain01.dom", "usuario02@domain01.dom", "roaming")
    assert "<~  250 2.0.0 Ok: queued" in sent, sent
    tags = dkim_tags(live.delivered("roaming"))
    assert (tags["d"], tags["s"]) == ("domain01.dom", "mail2026")


@pytest.mark.daemons
def test_live_submission_refuses_someone_elses_sender_address(live: LiveOut) -> None:
    sent = live.submit(INTERNET_CLIENT, "usuario01", "usuario02@domain01.dom", "usuario03@domain01.dom", "x")
    assert "<~* 553 5.7.1 <usuario02@domain01.dom>: Sender address rejected: not owned by user usuario01" in sent, sent


# ---- live: the header From check (issue 9, mailstrata-from-check) -------------------------------------
#
# The rendered milter runs from its rendered unit: the unit's command line, as the unit's user with the
# unit's groups (as systemd would start it), between clamav-milter and OpenDKIM in smtpd_milters. Each
# submission keeps its own envelope sender (Postfix already checks that one) and varies only the header From.

FROM_CHECK_UNIT = "/etc/systemd/system/mailstrata-from-check.service"


def unit_command(root: Path) -> list[str]:
    """The rendered unit's ExecStart, as its User, Group and SupplementaryGroups (setpriv execs, as systemd
    does). The view overlays only /etc: the script the unit names under /usr/local is read from `root`."""
    import shlex

    unit = (root / FROM_CHECK_UNIT.lstrip("/")).read_text()
    keys = dict(ln.split("=", 1) for ln in unit.splitlines() if "=" in ln and not ln.startswith("#"))
    argv = [f"{root}{a}" if a.startswith("/usr/local/") else a for a in shlex.split(keys["ExecStart"])]
    return ["setpriv", f"--reuid={keys['User']}", f"--regid={keys['Group']}",
            f"--groups={keys['SupplementaryGroups']}", "--", *argv]  # fmt: skip


def submit_from(live: LiveOut, login: str, sender: str, header_from: str, body: str, *extra: str,
                auth_user: str | None = None) -> str:
    """Submission as `login` with envelope `sender` and the header `From: header_from` (swaks's last
    --header of a name wins)."""
    return live.swaks(SUBMISSION_PORT, INTERNET_CLIENT, sender, "usuario03@domain01.dom", body, "--tls",
                      "--auth", "PLAIN", "--auth-user", auth_user or login, "--auth-password",
                      live.ad.users[login].password, "--header", f"From: {header_from}", *extra)  # fmt: skip


def never_delivered(live: LiveOut, body: str) -> bool:
    """True when no message with `body` reached the sink, once a later message has (the queue is in order
    enough: both would leave the same queue towards the same sink)."""
    control = f"control after {body}"
    assert "<~  250 2.0.0 Ok: queued" in submit_from(live, "usuario01", "usuario01@domain01.dom",
                                                     "<usuario01@domain01.dom>", control)
    live.delivered(control)
    return not any(f"\n\n{body}\n" in p.read_text(errors="replace") for p in live.sink.iterdir())


@pytest.mark.daemons
def test_live_submitted_from_the_users_own_address_is_delivered_and_signed(live: LiveOut) -> None:
    sent = submit_from(live, "usuario01", "usuario01@domain01.dom", '"Usuario Uno" <usuario01@domain01.dom>',
                       "own from")  # fmt: skip
    assert "<~  250 2.0.0 Ok: queued" in sent, sent
    message = live.delivered("own from")
    assert (re.search(r"^From: (.*)$", message, re.M).group(1), dkim_tags(message)["d"]) == (  # type: ignore[union-attr]
        '"Usuario Uno" <usuario01@domain01.dom>', "domain01.dom")


@pytest.mark.daemons
def test_live_submitted_from_a_colleagues_address_is_refused_and_never_delivered(live: LiveOut) -> None:
    # GIVEN usuario01 logged in, with his own envelope sender (which Postfix accepts)
    # WHEN the header From is usuario02's
    sent = submit_from(live, "usuario01", "usuario01@domain01.dom", "<usuario02@domain01.dom>", "spoofed from")
    # THEN the message is refused at the end of DATA, and nothing reaches the delivery VIP
    assert ("<~* 550 5.7.1 From address <usuario02@domain01.dom> is not yours (logged in as usuario01); use your "
            "own address, and Reply-To for a shared one") in sent, sent
    assert never_delivered(live, "spoofed from")


@pytest.mark.daemons
def test_live_a_login_written_as_an_address_may_send_from_that_address(live: LiveOut) -> None:
    sent = submit_from(live, "usuario05", "usuario05@domain02.dom", "<usuario05@domain02.dom>", "address login",
                       auth_user="usuario05@domain02.dom")  # fmt: skip
    assert "<~  250 2.0.0 Ok: queued" in sent, sent


@pytest.mark.daemons
def test_live_an_alias_of_the_user_is_the_users_own_address(live: LiveOut) -> None:
    # jdoe's mail is john.doe@domain01.dom; jd@domain01.dom is an alias (proxyAddresses smtp:)
    if "jdoe" not in live.ad.users:
        pytest.skip("the test directory has no user with aliases")
    sent = submit_from(live, "jdoe", "john.doe@domain01.dom", "<jd@domain01.dom>", "alias from")
    assert "<~  250 2.0.0 Ok: queued" in sent, sent
    live.delivered("alias from")


@pytest.mark.daemons
def test_live_someone_elses_alias_is_refused(live: LiveOut) -> None:
    if "jdoe" not in live.ad.users:
        pytest.skip("the test directory has no user with aliases")
    sent = submit_from(live, "usuario01", "usuario01@domain01.dom", "<jd@domain01.dom>", "foreign alias")
    assert "<~* 550 5.7.1 From address <jd@domain01.dom> is not yours (logged in as usuario01)" in sent, sent


@pytest.mark.daemons
def test_live_shared_address_of_a_group_is_refused_even_for_its_members(live: LiveOut) -> None:
    # The rule (docs/defects.md, "Who may send as whom"): a distribution list owns no address, so nobody,
    # not even a member (usuario01 is one of ventas), sends as it.
    assert "usuario01" in live.ad.groups["ventas"].members
    sent = submit_from(live, "usuario01", "usuario01@domain01.dom", "<ventas@domain01.dom>", "as the group")
    assert "<~* 550 5.7.1 From address <ventas@domain01.dom> is not yours (logged in as usuario01)" in sent, sent


@pytest.mark.daemons
def test_live_a_member_answers_for_the_group_with_reply_to(live: LiveOut) -> None:
    sent = submit_from(live, "usuario01", "usuario01@domain01.dom", "<usuario01@domain01.dom>", "for the group",
                       "--add-header", "Reply-To: <ventas@domain01.dom>")  # fmt: skip
    assert "<~  250 2.0.0 Ok: queued" in sent, sent
    assert "\nReply-To: <ventas@domain01.dom>\n" in live.delivered("for the group")


@pytest.mark.daemons
def test_live_every_address_of_a_from_list_must_be_the_users(live: LiveOut) -> None:
    sent = submit_from(live, "usuario01", "usuario01@domain01.dom", "usuario01@domain01.dom, usuario02@domain01.dom",
                       "two authors")  # fmt: skip
    assert "<~* 550 5.7.1 From address <usuario02@domain01.dom> is not yours" in sent, sent


@pytest.mark.daemons
def test_live_a_second_from_header_is_refused(live: LiveOut) -> None:
    sent = submit_from(live, "usuario01", "usuario01@domain01.dom", "<usuario01@domain01.dom>", "two froms",
                       "--add-header", "From: <usuario02@domain01.dom>")  # fmt: skip
    assert "<~* 550 5.7.1 A message needs exactly one From header, found 2" in sent, sent


@pytest.mark.daemons
def test_live_a_from_the_parser_cannot_read_is_refused_not_guessed(live: LiveOut) -> None:
    # Lenient parsers read this as usuario01's address; a mail client may show usuario02's (CVE-2023-27043).
    sent = submit_from(live, "usuario01", "usuario01@domain01.dom", "usuario01@domain01.dom)<usuario02@domain01.dom>",
                       "unreadable from")  # fmt: skip
    assert "<~* 550 5.7.1 The From header cannot be read as a list of addresses" in sent, sent


@pytest.mark.daemons
def test_live_internal_relay_without_auth_is_not_checked(live: LiveOut) -> None:
    # The mailstores' bounces and sieve forwards carry other people's From; they arrive without AUTH.
    sent = live.relay(MAILSTORE_SERVER, "usuario01@domain01.dom", "usuario03@domain01.dom", "relayed from",
                      "--header", "From: <usuario02@domain01.dom>")  # fmt: skip
    assert "<-  250 2.0.0 Ok: queued" in sent, sent
    live.delivered("relayed from")


@pytest.mark.daemons
def test_live_submission_is_deferred_while_the_from_check_is_down(live: LiveOut) -> None:
    check = next(p for p in live.procs if "mailstrata-from-check" in " ".join(map(str, p.args)) and p.poll() is None)
    check.terminate()
    check.wait(timeout=10)
    try:
        sent = submit_from(live, "usuario01", "usuario01@domain01.dom", "<usuario01@domain01.dom>", "while down")
        # smtpd cannot reach a milter when the session starts: milter_default_action = tempfail defers every
        # command of the session, so the client keeps the message and retries later
        assert "<** 454 4.3.0 Try again later" in sent and "Ok: queued" not in sent, sent
    finally:
        live._spawn("from-check", unit_command(live.view.root))
        wait_for(lambda: live._listening({"127.0.0.1:7358"}), "the From check again", 30, log=live._diagnosis)


@contextlib.contextmanager
def from_check_replaced(live: LiveOut, argv: list[str]) -> Iterator[None]:
    """The rendered From check stopped and `argv` listening in its place; the rendered one back afterwards."""

    def stop_running() -> None:
        for p in live.procs:
            if "mailstrata-from-check" in " ".join(map(str, p.args)) and p.poll() is None:
                p.terminate()
                p.wait(timeout=10)

    def listening() -> None:
        wait_for(lambda: live._listening({"127.0.0.1:7358"}), "the From check", 30, log=live._diagnosis)

    stop_running()
    try:
        live._spawn("from-check-replaced", argv)
        listening()
        yield
    finally:
        stop_running()
        live._spawn("from-check", unit_command(live.view.root))
        listening()


@pytest.mark.daemons
def test_live_submission_is_deferred_not_refused_while_the_directory_fails(live: LiveOut) -> None:
    # GIVEN the From check asking a directory that does not answer (the rendered map, its server a closed port)
    broken = live.base / "sender-login-down.cf"
    text = (live.view.root / "etc/postfix/ldap-sender-login.cf").read_text()
    broken.write_text(re.sub(r"^server_host = .*$", "server_host = ldap://127.0.0.1:9", text, flags=re.M))
    shutil.chown(broken, "root", "postfix")
    broken.chmod(0o640)
    argv = unit_command(live.view.root)
    argv[argv.index("--map") + 1] = f"ldap:{broken}"
    with from_check_replaced(live, argv):
        # WHEN a user submits with his own From (which the map cannot confirm now)
        sent = submit_from(live, "usuario01", "usuario01@domain01.dom", "<usuario01@domain01.dom>", "directory down")
    # THEN the message is deferred (the client retries), not refused as a spoof
    assert "<~* 451 4.3.0 Cannot check the From address now; try again later" in sent, sent


@pytest.mark.daemons
@pytest.mark.skip_allowed("CentOS 7's Python 3.6 is in no Debian package; machines without pyenv's 3.6 skip it")
def test_live_the_from_check_works_on_centos7s_python_3_6(live: LiveOut) -> None:
    from tests.userdata.daemons.test_from_check import _python36

    # As root: pyenv's interpreter lives under root's 0700 home, out of the milter user's reach.
    argv = unit_command(live.view.root)
    argv = argv[argv.index("--") + 1 :]
    argv[argv.index("/usr/bin/python3")] = _python36()
    with from_check_replaced(live, argv):
        own = submit_from(live, "usuario01", "usuario01@domain01.dom", "<usuario01@domain01.dom>", "own on 3.6")
        other = submit_from(live, "usuario01", "usuario01@domain01.dom", "<usuario02@domain01.dom>", "spoof on 3.6")
    assert ("<~  250 2.0.0 Ok: queued" in own, "<~* 550 5.7.1 From address <usuario02@domain01.dom>" in other) == (
        True, True), own + other
