"""The directory connection every consumer writes (servers, CA, bind password), judged by the real daemons.

One real Samba AD domain with two DCs (127.0.0.1 and 127.0.0.2, both certified by the domain's internal
CA; see `mailstrata.twin.samba`), in a network namespace with only ``lo``. The bind account's password is
`PASSWORD`: every character class that some file format treats as syntax (``#``, quotes, a backslash,
``$``, ``%``, spaces, non-ASCII). The files are the layers' own, rendered with both DC URLs and the CA,
and every Terraform reference in them (the password, escaped per format) is computed by real Terraform
with the AdBinding's own variable block, so its validation judges `PASSWORD` too.

- Dovecot (mailstore): ``doveadm auth test`` (passdb: bind as the service account, find the user, bind as
  the user);
- Postfix (mailstore's LDAP tables): ``postmap -q``;
- saslauthd (smtp-out): ``testsaslauthd``;
- the CA: a table that verifies with the public bundle instead of the domain CA finds nothing;
- failover: with the first DC stopped, all three still answer (the last tests of the module).
"""

from __future__ import annotations

import base64
import os
import plistlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from mailstrata.constructs.ad_binding import AdBinding, AdBindingProps
from mailstrata.directory import DirectorySettings, LdapTls
from mailstrata.roles import Role
from mailstrata.terraform_eval import StandIns, evaluate
from mailstrata.types import Secret
from mailstrata.userdata.profiles import OsProfile, load_profile
from mailstrata.userdata.render import LayerUserData, render_layer
from mailstrata.userdata.terraform_text import references, substitute
from tests.support.contexts import new_stack, synth
from tests.support.netns import NetNs
from tests.support.requires import requires, requires_terraform
from tests.support.samba_ad import TRICKY_PASSWORD
from tests.userdata import _sample

PASSWORD = TRICKY_PASSWORD  # '#' first, both quotes, a backslash, $, %, ${}, %{}, spaces, non-ASCII
BIND_REF = "${var.ad_bind_password}"
DC2_IP = "127.0.0.2"
USER = "usuario01"


def _profile(role: Role, root: Path, **paths: str) -> OsProfile:
    """The CentOS 7 profile of `role` with Debian 12's daemon versions (what runs here), paths under `root`."""
    base = load_profile("centos7", role).relocated(str(root))
    attrs = type(base.versions)
    return replace(base, versions=attrs("test.versions", {**base.versions, "dovecot": "2.3.19", "postfix": "3.7.11"}),
                   paths=attrs("test.paths", {**base.paths, **paths}))


def _variables() -> dict[str, Any]:
    """The `variable` block AdBinding synthesizes (with its validation), for Terraform to judge the password."""
    stack = new_stack()
    AdBinding(stack, "directory", props=AdBindingProps(urls=("ldaps://dc1.domain01.dom",), base_dn="dc=domain01,dc=dom",
                                                       bind_dn="cn=correoapp,dc=domain01,dc=dom",
                                                       domains=("domain01.dom",)))
    return dict(synth(stack)["variable"])


def delivered(uds: list[LayerUserData], password: str, workdir: Path) -> dict[str, bytes]:
    """Every file of `uds` as the server receives it: each reference computed by Terraform with the bind
    password `password` (other variables and attributes: the sample stand-ins), base64 files decoded."""
    requires_terraform("to compute the escaped password the files hold")
    files = [f for ud in uds for f in ud.files]
    exprs = sorted({e for f in files for e in references(f.content)})
    sample = _sample.standins(None, ["${" + e + "}" for e in exprs])
    standins = StandIns(attributes=sample.attributes, variables={**sample.variables, "ad_bind_password": password})
    values = evaluate({e: "${" + e + "}" for e in exprs}, standins, doc={"variable": _variables()}, workdir=workdir)
    out = {}
    for f in files:
        text = substitute(f.content, values)
        out[f.path] = base64.b64decode(text) if f.b64 else text.encode()
    return out


@dataclass
class Directory:
    """The running consumers and the two DCs."""

    ns: NetNs
    dc1: Any  # SambaAD
    dc2: Any
    root: Path
    user_password: str

    def postmap(self, key: str, table: str) -> subprocess.CompletedProcess[str]:
        postfix = self.root / "mailstore/etc/postfix"
        return self.ns.run(["postmap", "-c", str(postfix), "-q", key, f"ldap:{postfix / table}"],
                           capture_output=True, text=True, check=False, timeout=60)  # fmt: skip

    def doveadm_auth(self, login: str, password: str) -> subprocess.CompletedProcess[str]:
        conf = self.root / "mailstore/etc/dovecot/dovecot.conf"
        return self.ns.run(["doveadm", "-c", str(conf), "auth", "test", login, password],
                           capture_output=True, text=True, check=False, timeout=60)  # fmt: skip

    def testsaslauthd(self, login: str, password: str) -> str:
        mux = self.root / "saslauthd/mux"
        proc = subprocess.run(["testsaslauthd", "-u", login, "-p", password, "-s", "smtp", "-f", str(mux)],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        return proc.stdout.strip()


def _directory(dc1: Any, dc2: Any, *, ca: bool = True) -> DirectorySettings:
    return DirectorySettings(
        urls=(dc1.ldaps_url, dc2.ldaps_url),
        tls=LdapTls.LDAPS,
        base_dn=dc1.base_dn,
        bind_dn=dc1.bind_dn,
        bind_password=Secret(ref=BIND_REF),
        domains=dc1.domains,
        ca_cert_pem=dc1.ca_cert_pem if ca else None,
    )


def _write(files: dict[str, bytes]) -> None:
    for path, data in files.items():
        dest = Path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)


def _wait(what: str, ready: Any, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not start:\n{log.read_text(errors='replace') if log.exists() else ''}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def directory() -> Iterator[Directory]:
    requires("samba", "samba-tool", "dovecot", "doveadm", "postmap", "sievec", "saslauthd", "testsaslauthd",
             "openssl", "ip", root=True)  # fmt: skip
    from tests.support.samba_ad import BIND_LOGIN, SambaAD

    # Dovecot's auth process (user dovecot) reads the CA and the LDAP file's folder: not pytest's 0700 folders.
    base = Path(tempfile.mkdtemp(prefix="mailstrata-dirconn-"))
    base.chmod(0o755)
    root = base / "root"
    ns = NetNs.create("ms-dirc", addresses=[DC2_IP])
    procs: list[subprocess.Popen[bytes]] = []
    dc1 = SambaAD(base / "dc1", netns=ns.name)
    dc2 = dc1.second_dc(base / "dc2", DC2_IP)
    try:
        dc1.start()
        dc2.start()
        for dc in (dc1, dc2):  # copies, not replicas: the same change on each
            dc.set_password(BIND_LOGIN, PASSWORD)
        d = _directory(dc1, dc2)
        ms_profile = _profile(Role.MAILSTORE, root / "mailstore", dovecot_log=str(base / "dovecot.log"))
        ms_sample = _sample.context(Role.MAILSTORE)
        ms_ctx = ms_sample.with_platform(
            # the test plays the amphora, whose port is on the member subnet: loopback here
            directory=d, networks=replace(ms_sample.platform.networks, servers={
                **ms_sample.platform.networks.servers, Role.MAILSTORE: ("127.0.0.0/8",)})
        )
        out_ctx = _sample.context(Role.SMTP_OUT).with_platform(directory=d)
        files = delivered([render_layer(ms_ctx, os=ms_profile),
                           render_layer(out_ctx, os=_profile(Role.SMTP_OUT, root / "saslauthd"))], PASSWORD, base)
        _write(files)

        # Dovecot, as the mailstore role script leaves it (see tests/userdata/roles/test_mailstore.py)
        ms = root / "mailstore"
        tls = ms / "etc/pki/mailstrata"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-days", "2", "-subj", "/CN=mailstore", "-keyout", str(tls / "server.key"),
                        "-out", str(tls / "server.crt")], check=True, capture_output=True)  # fmt: skip
        for sub in ("var/vmail", "var/lib/dovecot", "var/spool/postfix/private"):
            (ms / sub).mkdir(parents=True, exist_ok=True)
        os.chown(ms / "var/vmail", 5000, 5000)
        (ms / "etc/dovecot/dovecot-ldap.conf.ext").chmod(0o600)
        conf = ms / "etc/dovecot/dovecot.conf"
        subprocess.run(["sievec", "-c", str(conf), str(ms / "etc/dovecot/sieve/spam-to-junk.sieve")], check=True,
                       capture_output=True)  # fmt: skip
        procs.append(ns.popen(["dovecot", "-F", "-c", str(conf)]))
        sock = ms / "var/spool/postfix/private/dovecot-lmtp"
        _wait("dovecot", sock.exists, base / "dovecot.log")

        # saslauthd with the smtp-out layer's saslauthd.conf
        sasl_conf = next(p for p in files if p.endswith("/etc/saslauthd.conf"))
        mux_dir = root / "saslauthd/mux-dir"
        mux_dir.mkdir(parents=True)
        with (base / "saslauthd.log").open("w") as log:
            # saslauthd signals its whole process group when it stops: give it its own.
            procs.append(ns.popen(["saslauthd", "-a", "ldap", "-O", sasl_conf, "-m", str(mux_dir), "-d", "-n", "0"],
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True))  # fmt: skip
        (root / "saslauthd/mux").symlink_to(mux_dir / "mux")
        _wait("saslauthd", (mux_dir / "mux").exists, base / "saslauthd.log")
        yield Directory(ns, dc1, dc2, root, dc1.users[USER].password)
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        dc2.stop()
        dc1.stop()
        ns.delete()
        shutil.rmtree(base, ignore_errors=True)


# ---- the files ----------------------------------------------------------------------------------------


def test_terraform_writes_the_password_quoted_where_the_format_needs_it(directory: Directory) -> None:
    ms = directory.root / "mailstore/etc"
    dnpass = [ln for ln in (ms / "dovecot/dovecot-ldap.conf.ext").read_text().splitlines() if ln.startswith("dnpass")]
    bind_pw = [ln for ln in (ms / "postfix/ldap-people.cf").read_text().splitlines() if ln.startswith("bind_pw")]
    sasl = (directory.root / "saslauthd/etc/saslauthd.conf").read_text().splitlines()
    assert dnpass == ['dnpass = "#Pa55 \'w\\"o\\\\rd\' $HOME %u %{x} ${y} ñé"']
    assert bind_pw == [f"bind_pw = {PASSWORD}"]
    assert [ln for ln in sasl if ln.startswith("ldap_password")] == [f"ldap_password: {PASSWORD}"]


def test_every_consumer_lists_both_dcs_in_order(directory: Directory) -> None:
    urls = f"{directory.dc1.ldaps_url} {directory.dc2.ldaps_url}"
    ms = directory.root / "mailstore/etc"
    assert f"uris = {urls}" in (ms / "dovecot/dovecot-ldap.conf.ext").read_text().splitlines()
    assert f"server_host = {urls}" in (ms / "postfix/ldap-people.cf").read_text().splitlines()
    assert f"ldap_servers: {urls}" in (directory.root / "saslauthd/etc/saslauthd.conf").read_text().splitlines()


# ---- the consumers bind with the password and authenticate a user -----------------------------------


@pytest.mark.daemons
def test_dovecot_binds_and_authenticates_a_user(directory: Directory) -> None:
    proc = directory.doveadm_auth(USER, directory.user_password)
    assert (proc.returncode, proc.stdout.splitlines()[:1]) == (0, [f"passdb: {USER} auth succeeded"]), proc.stderr


@pytest.mark.daemons
def test_dovecot_still_refuses_a_wrong_user_password(directory: Directory) -> None:
    assert directory.doveadm_auth(USER, "not-" + directory.user_password).returncode == 77


@pytest.mark.daemons
def test_postfix_ldap_table_binds_and_answers(directory: Directory) -> None:
    proc = directory.postmap("ventas@domain01.dom", "ldap-groups.cf")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert sorted(proc.stdout.strip().split(",")) == ["usuario01@domain01.dom", "usuario02@domain01.dom"]


@pytest.mark.daemons
def test_saslauthd_binds_and_authenticates_a_user(directory: Directory) -> None:
    assert directory.testsaslauthd(USER, directory.user_password) == '0: OK "Success."'


@pytest.mark.daemons
def test_saslauthd_still_refuses_a_wrong_user_password(directory: Directory) -> None:
    assert directory.testsaslauthd(USER, "not-" + directory.user_password) == '0: NO "authentication failed"'


# ---- the CA: the domain's own, not the public bundle -------------------------------------------------


@pytest.mark.daemons
def test_a_table_verifying_with_the_public_bundle_cannot_reach_the_directory(
    directory: Directory, tmp_path: Path
) -> None:
    # GIVEN the same table rendered without the directory's CA (the servers' system bundle)
    profile = _profile(Role.MAILSTORE, tmp_path / "root")
    ctx = _sample.context(Role.MAILSTORE).with_platform(directory=_directory(directory.dc1, directory.dc2, ca=False))
    files = delivered([render_layer(ctx, os=profile)], PASSWORD, tmp_path)
    table = next(p for p in files if p.endswith("/etc/postfix/ldap-groups.cf"))
    text = files[table].decode()
    assert f"tls_ca_cert_file = {profile.paths.ca_bundle}" in text.splitlines()
    # the bundle itself, where the rendered path points (relocated under the test's root)
    Path(table).parent.mkdir(parents=True, exist_ok=True)
    Path(table).write_text(text)
    bundle = Path(str(profile.paths.ca_bundle))
    bundle.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile("/etc/ssl/certs/ca-certificates.crt", bundle)
    # WHEN Postfix looks up a group THEN TLS fails on both DCs: no answer
    main_cf_dir = directory.root / "mailstore/etc/postfix"
    proc = directory.ns.run(["postmap", "-c", str(main_cf_dir), "-q", "ventas@domain01.dom", f"ldap:{table}"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    # (libldap reports a certificate it cannot verify as a server it cannot contact; both DCs are up, and the
    # same table with the domain CA answers: test_postfix_ldap_table_binds_and_answers)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert (
        f"Unable to bind to server {directory.dc1.ldaps_url} {directory.dc2.ldaps_url} "
        f"with dn {directory.dc1.bind_dn}: -1 (Can't contact LDAP server)"
    ) in proc.stderr


# ---- failover: the first DC stops (last: the DC stays stopped) --------------------------------------


@pytest.fixture(scope="module")
def first_dc_stopped(directory: Directory) -> Directory:
    # the long-running consumers first talk to the first DC, then it goes away
    assert directory.doveadm_auth(USER, directory.user_password).returncode == 0
    assert directory.testsaslauthd(USER, directory.user_password) == '0: OK "Success."'
    directory.dc1.stop()
    return directory


@pytest.mark.daemons
def test_postfix_fails_over_to_the_second_dc(first_dc_stopped: Directory) -> None:
    proc = first_dc_stopped.postmap("ventas@domain01.dom", "ldap-groups.cf")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert sorted(proc.stdout.strip().split(",")) == ["usuario01@domain01.dom", "usuario02@domain01.dom"]


@pytest.mark.daemons
def test_dovecot_fails_over_to_the_second_dc(first_dc_stopped: Directory) -> None:
    proc = first_dc_stopped.doveadm_auth(USER, first_dc_stopped.user_password)
    assert (proc.returncode, proc.stdout.splitlines()[:1]) == (0, [f"passdb: {USER} auth succeeded"]), proc.stderr


@pytest.mark.daemons
def test_saslauthd_fails_over_to_the_second_dc(first_dc_stopped: Directory) -> None:
    assert first_dc_stopped.testsaslauthd(USER, first_dc_stopped.user_password) == '0: OK "Success."'


# ---- the synthesized stack: the same escaping survives cdktf, the JSON and Terraform -----------------


def test_the_synthesized_stack_delivers_each_format_its_quoting(tmp_path: Path) -> None:
    # GIVEN the default platform as cdktf synthesizes it, and PASSWORD as TF_VAR_ad_bind_password
    from mailstrata.terraform_eval import nova_user_data
    from mailstrata.userdata.terraform_text import decode_user_data
    from tests.support.synth import default_platform, instances_of

    requires_terraform()
    doc = default_platform()
    roles = (Role.MAILSTORE, Role.SMTP_OUT, Role.SMTP_IN, Role.WEBMAIL)
    servers = {role: instances_of(doc, role.value)[0] for role in roles}
    exprs = {role.value: s["user_data"] for role, s in servers.items()}
    sample = _sample.standins(doc, exprs.values())
    standins = StandIns(attributes=sample.attributes, variables={**sample.variables, "ad_bind_password": PASSWORD})
    # WHEN Terraform evaluates the servers' user data
    values = evaluate(exprs, standins, doc=doc, workdir=tmp_path)
    text = {role: decode_user_data(nova_user_data(v)) for role, v in values.items()}
    # THEN each file holds the password in its own syntax (cloud-init's YAML quoting aside: read as YAML)
    import yaml

    def lines(role: Role, suffix: str) -> list[str]:
        files = yaml.safe_load(text[role.value])["write_files"]
        content = next(f["content"] for f in files if f["path"].endswith(suffix))
        if next(f for f in files if f["path"].endswith(suffix)).get("encoding") == "b64":
            content = base64.b64decode(content).decode()
        return content.splitlines()

    assert [ln for ln in lines(Role.MAILSTORE, "/dovecot-ldap.conf.ext") if ln.startswith("dnpass")] == [
        'dnpass = "#Pa55 \'w\\"o\\\\rd\' $HOME %u %{x} ${y} ñé"'
    ]
    assert f"bind_pw = {PASSWORD}" in lines(Role.SMTP_IN, "/ldap-people.cf")
    assert f"ldap_password: {PASSWORD}" in lines(Role.SMTP_OUT, "/saslauthd.conf")
    # sogo.conf as GNUstep reads it (plser: SOGo's own property-list parser, re-serialised as XML)
    requires("plser")
    sogo = tmp_path / "sogo.conf"
    sogo.write_text("\n".join(lines(Role.WEBMAIL, "/sogo.conf")) + "\n")
    xml = subprocess.run(["plser", "-Format", "NSPropertyListXMLFormat_v1_0", str(sogo)], capture_output=True,
                         check=True).stdout  # fmt: skip
    assert plistlib.loads(xml)["SOGoUserSources"][0]["bindPassword"] == PASSWORD


# ---- the config: each DC once ---------------------------------------------------------------------------


def test_a_dc_listed_twice_is_refused_by_the_config() -> None:
    from tests.config._support import default_data, problems_of

    config = default_data()
    first = config["directory"]["urls"][0]
    config["directory"]["urls"] = [first, "ldaps://dc2.domain01.dom:636", first]
    assert problems_of(config) == [
        f"directory.urls[2]: repeats urls[0], got {first!r}; list each directory server once"
    ]
