"""The mailstore layer: Dovecot and Postfix configs checked by the real daemons, and against a real AD.

Versions checked: Debian 12's Dovecot 2.3.19 and Postfix 3.7. The centos7 profile renders for Dovecot
2.2 and Postfix 2.10; the settings that differ (the TLS floor, the DH parameters) are chosen from
`os.versions`, and a test proves that the 2.2 file equals the 2.3 file but for those lines. Daemon tests run
inside a private network namespace with only `lo` and 127.x addresses.

Test-side changes, never in the templates: Postfix copies point their LDAP map paths into the copy's
directory (postconf opens the maps) and, for `postfix check`, use a temporary queue and data directory.
Configs run against Samba AD are rendered from the same templates with a context naming the test
directory and literal VIPs, and a profile moved under a temporary root (Dovecot logs to a file there);
the PROXY sources there are 127.0.0.0/8, because the test client plays the load balancer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import imaplib
import json
import os
import re
import shlex
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from mailstrata.directory import DirectorySettings, LdapTls
from mailstrata.errors import ConfigError
from mailstrata.roles import Role
from mailstrata.types import Secret
from mailstrata.userdata.context import (
    FtsBackend,
    LayerContext,
    Networks,
    NfsMount,
    OverQuota,
    Peer,
    QuotaPolicy,
    Vips,
)
from mailstrata.userdata.profiles import OsProfile, load_profile
from mailstrata.userdata.render import render_layer
from mailstrata.userdata.terraform_text import references, substitute
from tests.support.daemons import doveconf, doveconf_value, flatten_doveconf, postconf, postconf_text, write_file
from tests.support.netns import NetNs
from tests.support.requires import requires, unavailable
from tests.userdata import _sample

DOVECOT_CONF = "/etc/dovecot/dovecot.conf"
LDAP_CONF = "/etc/dovecot/dovecot-ldap.conf.ext"
SIEVE = "/etc/dovecot/sieve/spam-to-junk.sieve"
MAIN_CF = "/etc/postfix/main.cf"
MASTER_CF = "/etc/postfix/master.cf"
PEOPLE_CF = "/etc/postfix/ldap-people.cf"
GROUPS_CF = "/etc/postfix/ldap-groups.cf"
ROLE_SCRIPT = "/usr/local/sbin/mailstrata-setup-role"
# The primary address, or the account name when it has no "@" (unambiguous), of a person with a mailbox.
LOGIN_FILTER = ("(&(objectClass=person)(|(mail=%u)(&(sAMAccountName=%u)(!(sAMAccountName=*@*))))"
                "(|(mail=*@domain01.dom)(mail=*@domain02.dom)))")


# ---- rendering helpers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(layer_files: Callable[[Role], dict[str, str]]) -> dict[str, str]:
    """The mailstore's files as the server receives them.

    Workaround: `_sample.py`'s stand-in references (`${vip.smtp_out}`, `${nfs.export}`) are not
    Terraform references, so `escape()` doubles them and the sample never substitutes them; they are
    substituted here until the fixture reads the synthesized cdk.tf.json.
    """
    out = {}
    for path, text in layer_files(Role.MAILSTORE).items():
        for ref in ("vip.smtp_in", "vip.smtp_out", "vip.mailstore", "vip.webmail", "nfs.export"):
            text = text.replace("${" + ref + "}", _sample.SAMPLE_VALUES[ref])
        out[path] = text
    return out


def profile(*, dovecot: str = "2.3.19", postfix: str = "3.7.11", root: Path | None = None, **paths: str) -> OsProfile:
    """The centos7 mailstore profile with Debian's daemon versions (and paths moved under `root`)."""
    base = load_profile("centos7", Role.MAILSTORE)
    if root is not None:
        base = base.relocated(str(root))
    attrs = type(base.versions)
    return replace(
        base,
        versions=attrs("test.versions", {**base.versions, "dovecot": dovecot, "postfix": postfix}),
        paths=attrs("test.paths", {**base.paths, **paths}),
    )


SAMPLE_VIPS = Vips(smtp_in="10.20.0.10", smtp_out="10.20.0.11", mailstore="10.20.0.12", webmail="10.20.0.13")


def context(**changes: object) -> LayerContext:
    """The sample mailstore context, with the VIPs as literal addresses for direct rendering; `changes` to
    the layer's own fields (proxy_ports, nfs) or to the platform's."""
    own = {k: v for k, v in changes.items() if k in ("proxy_ports", "nfs")}
    facts = {k: v for k, v in changes.items() if k not in own}
    ctx = _sample.context(Role.MAILSTORE).with_platform(**{"vips": SAMPLE_VIPS, **facts})
    return dataclasses.replace(ctx, **own)  # type: ignore[arg-type]


def render(ctx: LayerContext, os_profile: OsProfile) -> dict[str, str]:
    return {f.path: f.content for f in render_layer(ctx, os=os_profile).files}


@pytest.fixture
def dovecot23(tmp_path: Path) -> dict[str, str]:
    """doveconf's view of the sample mailstore rendered for Dovecot 2.3 (Debian's version)."""
    text = render(context(), profile())[DOVECOT_CONF]
    return doveconf(write_file(tmp_path / "dovecot.conf", text))


# ---- what is rendered -------------------------------------------------------------------------------


def test_the_layer_writes_these_files(files: dict[str, str]) -> None:
    assert sorted(files) == [
        LDAP_CONF,
        DOVECOT_CONF,
        "/etc/dovecot/mailstrata-placement.conf",  # one user, one mailstore (daemons/placement.py)
        SIEVE,
        "/etc/modprobe.d/lockd.conf",  # the NFS client's lockd and statd ports (daemons/nfs.py client_files)
        "/etc/postfix/ffdhe2048.pem",
        GROUPS_CF,
        PEOPLE_CF,
        MAIN_CF,
        MASTER_CF,
        "/etc/sysconfig/nfs",
        "/etc/systemd/system/dovecot.service.d/mailstrata-spool.conf",  # the queue (and LMTP socket) on the volume
        "/etc/systemd/system/dovecot.service.d/mailstrata.conf",
        "/etc/systemd/system/mailstrata-metadata-guard.service",
        "/etc/systemd/system/mailstrata-placement.service",
        "/etc/systemd/system/postfix.service.d/mailstrata-spool.conf",
        "/etc/yum.repos.d/CentOS-Base.repo",
        "/etc/yum.repos.d/epel.repo",
        "/usr/local/sbin/mailstrata-metadata-guard",
        "/usr/local/sbin/mailstrata-placement",
        "/usr/local/sbin/mailstrata-setup",
        ROLE_SCRIPT,
        "/usr/local/sbin/mailstrata-setup-spool",
    ]


def test_files_reach_the_server_unchanged(files: dict[str, str]) -> None:
    # Dovecot's %-variables (%%u, %1Mn, %$) and the scripts' ${...} survive Terraform's escaping.
    direct = render(_sample.stack_context(Role.MAILSTORE), load_profile("centos7", Role.MAILSTORE))
    resolved = {}
    for path, text in direct.items():
        for ref, value in _sample.SAMPLE_VALUES.items():
            text = text.replace("${" + ref + "}", value)
        # what Terraform computes from them (the bind password escaped for dnpass: ldap.quoted_secret)
        resolved[path] = substitute(text, {e: _sample.resolve(e) for e in references(text)})
    assert resolved == files


def test_cloud_config_mounts_the_share(layer_cloud_config: Callable[[Role], dict]) -> None:
    mounts = layer_cloud_config(Role.MAILSTORE)["mounts"]
    export = _sample.SAMPLE_VALUES["nfs.export"]
    # (the same stand-in workaround as the `files` fixture)
    assert [[export if x == "${nfs.export}" else x for x in m] for m in mounts] == [
        ["10.10.5.20:/NFSVOL", "/MAILBOXES", "nfs",
         "rw,hard,intr,vers=3,tcp,nordirplus,rsize=32768,wsize=32768,_netdev", "0", "0"]
    ]  # fmt: skip


def test_secret_files_are_private(layer_cloud_config: Callable[[Role], dict], files: dict[str, str]) -> None:
    modes = {f["path"]: f["permissions"] for f in layer_cloud_config(Role.MAILSTORE)["write_files"]}
    setup = files["/usr/local/sbin/mailstrata-setup"]
    assert (modes[LDAP_CONF], modes[PEOPLE_CF], modes[GROUPS_CF]) == ("0600", "0600", "0600")
    assert f"chmod 0600 {LDAP_CONF}\n" in setup
    assert f"chown root:postfix {PEOPLE_CF}\nchmod 0640 {PEOPLE_CF}\n" in setup
    assert f"chown root:postfix {GROUPS_CF}\nchmod 0640 {GROUPS_CF}\n" in setup


def test_directory_ca_is_written_when_given() -> None:
    directory = replace(_sample.DIRECTORY, ca_cert_pem="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    out = render(context(directory=directory), load_profile("centos7", Role.MAILSTORE))
    assert out["/etc/pki/mailstrata/ad-ca.pem"].splitlines()[2:] == [
        "-----BEGIN CERTIFICATE-----",
        "AAAA",
        "-----END CERTIFICATE-----",
    ]
    assert "tls_ca_cert_file = /etc/pki/mailstrata/ad-ca.pem\n" in out[LDAP_CONF]


# ---- Dovecot ----------------------------------------------------------------------------------------


@pytest.mark.daemons
def test_dovecot_nfs_settings(dovecot23: dict[str, str]) -> None:
    got = {k: dovecot23[k] for k in ("mmap_disable", "mail_fsync", "mail_nfs_storage", "mail_nfs_index")}
    assert got == {"mmap_disable": "yes", "mail_fsync": "always", "mail_nfs_storage": "yes", "mail_nfs_index": "yes"}


@pytest.mark.daemons
def test_dovecot_vmail_is_uid_5000(dovecot23: dict[str, str]) -> None:
    keys = ("mail_uid", "mail_gid", "first_valid_uid", "last_valid_uid", "first_valid_gid", "last_valid_gid")
    assert {dovecot23[k] for k in keys} == {"5000"}


@pytest.mark.daemons
def test_dovecot_auth_is_ldap_only(dovecot23: dict[str, str]) -> None:
    auth = {k: v for k, v in dovecot23.items() if k.startswith(("passdb", "userdb"))}
    assert auth == {
        "passdb/args": LDAP_CONF,
        "passdb/driver": "ldap",
        "userdb/args": LDAP_CONF,
        "userdb/driver": "ldap",
    }


@pytest.mark.parametrize("placed", [False, True], ids=["one-server", "placement"])
def test_no_passwordless_or_master_login(files: dict[str, str], placed: bool) -> None:
    conf = files[DOVECOT_CONF]
    if placed:
        conf = render(dataclasses.replace(context(), peers=(Peer("a", "10.10.3.11"),)), profile())[DOVECOT_CONF]
    text = "\n".join(ln for ln in conf.splitlines() if not ln.lstrip().startswith("#"))
    # The one passwd-file allowed is placement's map, after the directory (whose failures return at once):
    # test_placement_asks_the_directory_first_and_the_map_only_after_it.
    text = text.replace("driver = passwd-file\n  args = username_format=%s-%{real_lport}-%256Nu ", "")
    forbidden = [r"nopassword", r"driver = static", r"driver = passwd-file", r"master = yes", r"port = 144",
                 r"auth_master_user_separator"]  # fmt: skip
    assert [f for f in forbidden if re.search(f, text)] == []


@pytest.mark.daemons
def test_dovecot_tls_is_required(dovecot23: dict[str, str]) -> None:
    got = {k: dovecot23[k] for k in ("ssl", "ssl_cert", "ssl_key")}
    assert got == {
        "ssl": "required",
        "ssl_cert": "</etc/pki/mailstrata/server.crt",
        "ssl_key": "# hidden, use -P to show it",  # doveconf never prints keys
    }


def test_dovecot_key_path(files: dict[str, str]) -> None:
    assert "\nssl_key = </etc/pki/mailstrata/server.key\n" in files[DOVECOT_CONF]


@pytest.mark.daemons
def test_no_cleartext_auth(tmp_path: Path) -> None:
    text = render(context(), profile())[DOVECOT_CONF]
    assert "\ndisable_plaintext_auth = yes\n" in text  # explicit, although it is Dovecot's default
    assert doveconf_value(write_file(tmp_path / "dovecot.conf", text), "disable_plaintext_auth") == "yes"


@pytest.mark.daemons
def test_tls_floor_is_tls12(tmp_path: Path) -> None:
    text = render(context(), profile())[DOVECOT_CONF]
    assert "\nssl_min_protocol = TLSv1.2\n" in text
    assert doveconf_value(write_file(tmp_path / "dovecot.conf", text), "ssl_min_protocol") == "TLSv1.2"


def test_centos7_file_differs_from_the_checked_one_only_in_the_tls_floor_and_dh(files: dict[str, str]) -> None:
    stack = dataclasses.replace(context(), peers=_sample.MAILSTORE_PEERS,
                                spool=_sample.stack_context(Role.MAILSTORE).spool)
    checked = render(stack, profile())[DOVECOT_CONF].splitlines()
    centos = files[DOVECOT_CONF].splitlines()
    diff = [(a, b) for a, b in zip(checked, centos, strict=True) if a != b]
    assert diff == [("ssl_min_protocol = TLSv1.2", "ssl_protocols = !SSLv2 !SSLv3 !TLSv1 !TLSv1.1"),
                    ("ssl_dh = </etc/dovecot/ffdhe2048.pem", "ssl_dh_parameters_length = 2048")]


@pytest.mark.daemons
def test_listeners_behind_proxy_pools_expect_haproxy(dovecot23: dict[str, str]) -> None:
    listeners = {k: v for k, v in dovecot23.items() if "/inet_listener " in k}
    assert listeners == {
        "service imap-login/inet_listener imap/haproxy": "yes",
        "service imap-login/inet_listener imap/port": "143",
        "service imap-login/inet_listener imaps/haproxy": "yes",
        "service imap-login/inet_listener imaps/port": "993",
        "service imap-login/inet_listener imaps/ssl": "yes",
        "service managesieve-login/inet_listener sieve/haproxy": "yes",
        "service managesieve-login/inet_listener sieve/port": "4190",
        "service pop3-login/inet_listener pop3/haproxy": "yes",
        "service pop3-login/inet_listener pop3/port": "110",
        "service pop3-login/inet_listener pop3s/haproxy": "yes",
        "service pop3-login/inet_listener pop3s/port": "995",
        "service pop3-login/inet_listener pop3s/ssl": "yes",
    }


@pytest.mark.daemons
def test_dovecot_listens_on_ipv4(dovecot23: dict[str, str]) -> None:
    assert dovecot23["listen"] == "*"


@pytest.mark.daemons
def test_proxy_headers_are_trusted_from_the_lb_subnets_only(dovecot23: dict[str, str]) -> None:
    assert dovecot23["haproxy_trusted_networks"] == "10.10.3.0/24"  # the member subnet (mailstrata.octavia)


def test_listener_without_proxy_pool_has_no_haproxy() -> None:
    text = render(context(proxy_ports=frozenset({993})), profile())[DOVECOT_CONF]
    assert text.count("haproxy = yes") == 1
    assert "  inet_listener imaps {\n    port = 993\n    ssl = yes\n    haproxy = yes\n  }\n" in text


def test_no_proxy_pool_means_no_trusted_proxies() -> None:
    text = render(context(proxy_ports=frozenset()), profile())[DOVECOT_CONF]
    assert "haproxy" not in text


def test_proxy_source_of_the_whole_internet_is_refused() -> None:
    nets = _sample.context(Role.MAILSTORE).platform.networks
    wide = Networks(servers={**nets.servers, Role.MAILSTORE: ("0.0.0.0/0",)}, vip_subnet=nets.vip_subnet,
                    clients=nets.clients, admin=nets.admin)
    with pytest.raises(ConfigError) as err:
        render(context(networks=wide), profile())
    assert str(err.value.problems[0]) == (
        "networks.servers.mailstore: a PROXY-protocol source must not be the whole Internet, got 0.0.0.0/0; "
        "name the LB subnets"
    )


@pytest.mark.daemons
def test_lmtp_listens_only_on_postfix_socket(dovecot23: dict[str, str]) -> None:
    lmtp = {k: v for k, v in dovecot23.items() if k.startswith("service lmtp/")}
    assert lmtp == {
        "service lmtp/unix_listener /var/spool/postfix/private/dovecot-lmtp/group": "postfix",
        "service lmtp/unix_listener /var/spool/postfix/private/dovecot-lmtp/mode": "0600",
        "service lmtp/unix_listener /var/spool/postfix/private/dovecot-lmtp/user": "postfix",
    }


@pytest.mark.daemons
def test_special_use_folders_are_auto_subscribed(dovecot23: dict[str, str]) -> None:
    uses = {k.split("/")[1]: v for k, v in dovecot23.items() if k.endswith("/special_use")}
    auto = {k.split("/")[1] for k, v in dovecot23.items() if k.endswith("/auto") and v == "subscribe"}
    assert uses == {
        "mailbox Drafts": "\\Drafts",
        "mailbox Junk": "\\Junk",
        "mailbox Sent": "\\Sent",
        'mailbox "Sent Messages"': "\\Sent",
        "mailbox Trash": "\\Trash",
    }
    assert auto == set(uses)


def test_no_autocreate_plugin(files: dict[str, str]) -> None:
    plugins = re.findall(r"(?m)^\s*mail_plugins = (.*)$", files[DOVECOT_CONF])
    assert plugins and not any("autocreate" in p for p in plugins)


@pytest.mark.daemons
def test_shared_namespace_with_acls(dovecot23: dict[str, str]) -> None:
    shared = {k: v for k, v in dovecot23.items() if k.startswith("namespace shared_users/")}
    assert shared["namespace shared_users/prefix"] == "shared/%%u/"
    assert shared["namespace shared_users/type"] == "shared"
    assert (dovecot23["plugin/acl"], dovecot23["plugin/acl_shared_dict"]) == (
        "vfile",
        "file:/var/vmail/shared-mailboxes.db",
    )
    assert dovecot23["protocol imap/mail_plugins"] == "acl quota fts fts_lucene imap_acl imap_quota"


@pytest.mark.daemons
def test_one_quota_backend_and_the_default_rules(dovecot23: dict[str, str]) -> None:
    quota = {k: v for k, v in dovecot23.items() if k.startswith("plugin/quota")}
    assert quota == {
        "plugin/quota": "maildir:User quota",
        "plugin/quota_rule": "*:storage=2G:messages=100000",
        "plugin/quota_rule2": "Trash:storage=+100M",
    }


def test_exactly_one_quota_line(files: dict[str, str]) -> None:
    assert len(re.findall(r"^\s*quota\s*=", files[DOVECOT_CONF], re.M)) == 1


@pytest.mark.daemons
def test_over_quota_defers_by_default(dovecot23: dict[str, str]) -> None:
    assert dovecot23["quota_full_tempfail"] == "yes"


@pytest.mark.daemons
def test_over_quota_bounce_policy(tmp_path: Path) -> None:
    text = render(context(quota=QuotaPolicy(over_quota=OverQuota.BOUNCE)), profile())[DOVECOT_CONF]
    assert doveconf(write_file(tmp_path / "dovecot.conf", text)).get("quota_full_tempfail", "no") == "no"
    assert "quota_full_tempfail = no\n" in text


@pytest.mark.daemons
def test_fts_lucene_by_default(dovecot23: dict[str, str]) -> None:
    got = {k: dovecot23[k] for k in ("mail_plugins", "plugin/fts", "plugin/fts_lucene", "plugin/fts_autoindex")}
    assert got == {
        "mail_plugins": "acl quota fts fts_lucene",
        "plugin/fts": "lucene",
        "plugin/fts_lucene": "whitespace_chars=@.",
        "plugin/fts_autoindex": "yes",
    }


@pytest.mark.daemons
def test_fts_solr_when_chosen(tmp_path: Path) -> None:
    text = render(context(fts=FtsBackend.SOLR), profile())[DOVECOT_CONF]
    conf = doveconf(write_file(tmp_path / "dovecot.conf", text))
    got = {k: conf.get(k) for k in ("mail_plugins", "plugin/fts", "plugin/fts_solr", "plugin/fts_lucene")}
    assert got == {
        "mail_plugins": "acl quota fts fts_solr",
        "plugin/fts": "solr",
        "plugin/fts_solr": "url=http://127.0.0.1:8983/solr/dovecot/",
        "plugin/fts_lucene": None,
    }


@pytest.mark.daemons
def test_sieve_settings(dovecot23: dict[str, str]) -> None:
    got = {k: dovecot23[k] for k in ("plugin/sieve", "plugin/sieve_before", "lda_mailbox_autocreate")}
    assert got == {
        "plugin/sieve": "file:~/sieve;active=~/.dovecot.sieve",
        "plugin/sieve_before": SIEVE,
        "lda_mailbox_autocreate": "yes",
    }
    assert dovecot23["protocol lmtp/mail_plugins"] == "acl quota fts fts_lucene sieve"
    assert "sieve" in dovecot23["protocols"].split()


@pytest.mark.daemons
def test_global_sieve_compiles(files: dict[str, str], tmp_path: Path) -> None:
    requires("sievec")
    script = write_file(tmp_path / "spam-to-junk.sieve", files[SIEVE])
    conf = write_file(tmp_path / "dovecot.conf", render(context(), profile())[DOVECOT_CONF])
    proc = subprocess.run(
        ["sievec", "-c", str(conf), str(script), str(tmp_path / "out.svbin")], capture_output=True, text=True
    )
    assert (proc.returncode, proc.stderr) == (0, "")


def test_ldap_conf_content(files: dict[str, str]) -> None:
    lines = [ln for ln in files[LDAP_CONF].splitlines() if ln and not ln.startswith("#")]
    assert lines == [
        "uris = ldaps://dc1.domain01.dom:636",
        "ldap_version = 3",
        "dn = cn=correoapp,ou=mailapps,dc=domain01,dc=dom",
        'dnpass = "Bind-Pa55word"',
        "tls_ca_cert_file = /etc/pki/tls/certs/ca-bundle.crt",
        "tls_require_cert = demand",
        "base = dc=domain01,dc=dom",
        "scope = subtree",
        "auth_bind = yes",
        f"pass_filter = {LOGIN_FILTER}",
        "pass_attrs = =user=%L{ldap:mail}",
        f"user_filter = {LOGIN_FILTER}",
        "user_attrs = =user=%L{ldap:mail}, =home=/var/vmail/%1LM{ldap:mail}/%2.1LM{ldap:mail}/%L{ldap:mail}, "
        "info=quota_rule=*:bytes=%$",
        "iterate_attrs = mail=user",
        "iterate_filter = (&(objectClass=person)(|(mail=*@domain01.dom)(mail=*@domain02.dom)))",
    ]


def test_ldap_starttls() -> None:
    directory = replace(_sample.DIRECTORY, urls=("ldap://dc1.domain01.dom",), tls=LdapTls.STARTTLS)
    text = render(context(directory=directory), profile())[LDAP_CONF]
    assert "uris = ldap://dc1.domain01.dom\n" in text
    assert "\ntls = yes\n" in text


def test_ldap_plain_has_no_tls_settings() -> None:
    directory = replace(_sample.DIRECTORY, urls=("ldap://dc1.domain01.dom",), tls=LdapTls.PLAIN)
    text = render(context(directory=directory), profile())[LDAP_CONF]
    assert "tls" not in text.replace("ldaps", "")


# ---- Postfix ----------------------------------------------------------------------------------------


def postfix_copy(files: dict[str, str], tmp_path: Path) -> Path:
    """A config directory with the rendered files; map paths point into it (test-side only)."""
    conf = tmp_path / "postfix"
    for name in ("main.cf", "master.cf", "ldap-people.cf", "ldap-groups.cf"):
        text = files[f"/etc/postfix/{name}"]
        write_file(conf / name, text.replace("ldap:/etc/postfix/", f"ldap:{conf}/"))
    return conf


@pytest.fixture
def main_cf(files: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return postconf(postfix_copy(files, tmp_path), "-n")


@pytest.mark.daemons
def test_postfix_delivers_the_served_domains_over_lmtp(main_cf: dict[str, str], tmp_path: Path) -> None:
    conf = tmp_path / "postfix"
    got = {k: main_cf[k] for k in ("virtual_mailbox_domains", "virtual_mailbox_maps", "virtual_alias_maps",
                                  "virtual_transport", "recipient_delimiter")}  # fmt: skip
    assert got == {
        "virtual_mailbox_domains": "domain01.dom, domain02.dom",
        "virtual_mailbox_maps": f"proxy:ldap:{conf}/ldap-people.cf",
        # people first: a primary address answers itself, so no alias can take a person's mail
        "virtual_alias_maps": f"proxy:ldap:{conf}/ldap-people.cf, proxy:ldap:{conf}/ldap-groups.cf",
        "virtual_transport": "lmtp:unix:private/dovecot-lmtp",
        "recipient_delimiter": "+",
    }


@pytest.mark.daemons
def test_postfix_relays_out_through_smtp_outs_internal_relay_on_each_server(main_cf: dict[str, str]) -> None:
    # Directly, not through the LB (whose address no one can trust), to every SMTP-out server in turn.
    got = (main_cf["relayhost"], main_cf["smtp_fallback_relay"])
    assert got == ("[10.10.2.21]:2525", "[10.10.2.22]:2525")


@pytest.mark.daemons
def test_postfix_trusts_only_loopback(main_cf: dict[str, str]) -> None:
    got = {k: main_cf[k] for k in ("mynetworks", "smtpd_relay_restrictions", "smtpd_recipient_restrictions")}
    assert got == {
        "mynetworks": "127.0.0.0/8",
        "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
        "smtpd_recipient_restrictions": "permit_mynetworks, reject_unauth_destination",
    }


@pytest.mark.daemons
def test_postfix_limits(main_cf: dict[str, str]) -> None:
    keys = ("smtpd_recipient_limit", "message_size_limit", "smtpd_error_sleep_time", "smtpd_soft_error_limit",
            "smtpd_hard_error_limit", "smtpd_client_connection_count_limit",
            "smtpd_client_connection_rate_limit", "default_process_limit", "bounce_queue_lifetime",
            "maximal_queue_lifetime")  # fmt: skip
    assert [main_cf[k] for k in keys] == ["200", "26214400", "1s", "10", "20", "10", "60", "200", "1d", "1d"]


@pytest.mark.daemons
def test_postfix_exempts_the_platform_mtas_from_client_limits(main_cf: dict[str, str]) -> None:
    # the delivery LB's amphorae connect from the mailstore subnet (mailstrata/octavia.py), then smtp-in and
    # smtp-out; not the VIP subnet, which no member traffic comes from
    assert main_cf["smtpd_client_event_limit_exceptions"] == "10.10.3.0/24, 10.10.1.0/24, 10.10.2.0/24"


@pytest.mark.daemons
def test_postfix_starttls_may(main_cf: dict[str, str]) -> None:
    got = {k: main_cf[k] for k in ("smtpd_tls_security_level", "smtpd_tls_protocols", "smtpd_tls_cert_file")}
    assert got == {
        "smtpd_tls_security_level": "may",
        "smtpd_tls_protocols": "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1",
        "smtpd_tls_cert_file": "/etc/pki/mailstrata/server.crt",
    }


@pytest.mark.daemons
def test_postfix_master_services(files: dict[str, str], tmp_path: Path) -> None:
    out = postconf_text(postfix_copy(files, tmp_path), "-M")
    services = [tuple(line.split()[:2]) for line in out.splitlines()]
    assert ("smtp", "inet") in services and ("lmtp", "unix") in services and len(services) == 24
    # The default platform's delivery pool on 25 sends PROXY, so per-client limits see each smtp-in server.
    assert "smtp inet n - n - - smtpd -o smtpd_upstream_proxy_protocol=haproxy -o mynetworks=" in " ".join(out.split())


@pytest.mark.daemons
def test_postfix_smtp_expects_proxy_when_its_pool_sends_it(tmp_path: Path) -> None:
    rendered = render(context(proxy_ports=frozenset({25, 143})), profile())
    out = postconf_text(postfix_copy(rendered, tmp_path), "-M", "smtp/inet")
    assert out.split() == ["smtp", "inet", "n", "-", "n", "-", "-", "smtpd", "-o",
                           "smtpd_upstream_proxy_protocol=haproxy", "-o", "mynetworks="]  # fmt: skip


@pytest.mark.daemons
def test_postfix_check(files: dict[str, str], tmp_path: Path) -> None:
    requires("postfix")
    conf = postfix_copy(files, tmp_path)
    # Test-side only: a writable queue and data directory instead of the real ones.
    main = (conf / "main.cf").read_text()
    main = re.sub(r"(?m)^queue_directory = .*$", f"queue_directory = {tmp_path}/queue", main)
    main = re.sub(r"(?m)^data_directory = .*$", f"data_directory = {tmp_path}/data", main)
    (conf / "main.cf").write_text(main)
    (tmp_path / "queue").mkdir()
    (tmp_path / "data").mkdir()
    proc = subprocess.run(["postfix", "-c", str(conf), "check"], capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_ldap_people_map(files: dict[str, str]) -> None:
    lines = [ln for ln in files[PEOPLE_CF].splitlines() if ln and not ln.startswith("#")]
    assert lines == [
        "server_host = ldaps://dc1.domain01.dom:636",
        "version = 3",
        "start_tls = no",
        "tls_ca_cert_file = /etc/pki/tls/certs/ca-bundle.crt",
        "tls_require_cert = yes",
        "bind = yes",
        "bind_dn = cn=correoapp,ou=mailapps,dc=domain01,dc=dom",
        "bind_pw = Bind-Pa55word",
        "search_base = dc=domain01,dc=dom",
        "scope = sub",
        "domain = domain01.dom, domain02.dom",
        "query_filter = (&(objectClass=person)(mail=%s))",
        "result_attribute = mail",
    ]


def test_ldap_group_map_expands_members(files: dict[str, str]) -> None:
    lines = [ln for ln in files[GROUPS_CF].splitlines() if ln and not ln.startswith("#")]
    assert lines[-4:] == [
        # a group's address or alias (to its members), or a person's alias that is not their primary address
        "query_filter = (|(&(objectClass=group)(|(mail=%s)(proxyAddresses=smtp:%s)))"
        "(&(objectClass=person)(proxyAddresses=smtp:%s)(!(mail=%s))))",
        "result_attribute =",
        "special_result_attribute = member",
        "leaf_result_attribute = mail",
    ]


# ---- role script ------------------------------------------------------------------------------------


@pytest.mark.daemons
@pytest.mark.parametrize("with_nfs", [True, False], ids=["nfs", "local"])
def test_role_script_passes_shellcheck(with_nfs: bool, tmp_path: Path) -> None:
    requires("shellcheck")
    ctx = context() if with_nfs else context(nfs=None)
    script = write_file(tmp_path / "role.sh", render(ctx, load_profile("centos7", Role.MAILSTORE))[ROLE_SCRIPT])
    proc = subprocess.run(["shellcheck", "-s", "bash", str(script)], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout) == (0, "")


@dataclass
class ScriptRun:
    root: Path
    script: Path
    env: dict[str, str]

    def run(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(self.script)], capture_output=True, text=True, env=self.env)


@pytest.fixture
def role_script(tmp_path: Path) -> ScriptRun:
    """The role script rendered with every path under tmp_path; commands it must not run for real
    (mount, sievec, newaliases, systemctl) are stubs, and the share counts as mounted."""
    requires("runuser", "stat")
    if os.geteuid() != 0:
        unavailable("not root", why="the role script chowns to uid 5000", install="run the tests as root")
    root = tmp_path / "root"
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name in ("mountpoint", "mount", "sievec", "newaliases", "systemctl"):
        write_file(stubs / name, f'#!/bin/sh\necho {name} "$@" >> {tmp_path}/calls\n').chmod(0o755)
    prof = profile(root=root)
    prof = replace(
        prof,
        commands=type(prof.commands)(
            "test.commands",
            {**prof.commands, "sievec": "sievec", "newaliases": "newaliases", "daemon_reload": "systemctl x"},
        ),
    )
    ctx = context(nfs=NfsMount(source="${nfs.export}", mount_point=str(root / "MAILBOXES")))
    script = write_file(tmp_path / "role.sh", render(ctx, prof)[str(root) + ROLE_SCRIPT])
    (root / "var").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"}
    return ScriptRun(root, script, env)


@pytest.mark.daemons
def test_role_script_links_vmail_into_the_share(role_script: ScriptRun) -> None:
    proc = role_script.run()
    assert proc.returncode == 0, proc.stderr
    share = role_script.root / "MAILBOXES" / "vmail"
    assert os.readlink(role_script.root / "var/vmail") == str(share)
    assert (share.stat().st_uid, share.stat().st_gid, oct(share.stat().st_mode & 0o777)) == (5000, 5000, "0o750")


@pytest.mark.daemons
def test_role_script_runs_twice(role_script: ScriptRun) -> None:
    first, second = role_script.run(), role_script.run()
    assert (first.returncode, second.returncode) == (0, 0), second.stderr
    assert os.readlink(role_script.root / "var/vmail") == str(role_script.root / "MAILBOXES" / "vmail")


@pytest.mark.daemons
def test_role_script_never_hides_local_mail(role_script: ScriptRun) -> None:
    write_file(role_script.root / "var/vmail/old-mail", "x")
    proc = role_script.run()
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith(
        f"ERROR: {role_script.root}/var/vmail is a directory with files in it; "
        f"move them to {role_script.root}/MAILBOXES/vmail first"
    )


@pytest.mark.daemons
def test_role_script_compiles_the_sieve_and_aliases(role_script: ScriptRun, tmp_path: Path) -> None:
    assert role_script.run().returncode == 0
    assert (tmp_path / "calls").read_text().splitlines() == [
        "mountpoint -q " + str(role_script.root / "MAILBOXES"),
        "sievec " + str(role_script.root) + SIEVE,
        "newaliases",
        "systemctl x",
    ]


# ---- against a real directory -----------------------------------------------------------------------


@dataclass
class Store:
    """A running Dovecot (rendered for 2.3, paths under `root`) with Samba AD, inside one namespace."""

    ns: NetNs
    root: Path
    conf: Path
    postfix: Path
    passwords: dict[str, str]
    in_netns: Callable[..., Any]  # runs a function in a thread inside the namespace
    log: Path

    def doveadm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.ns.run(["doveadm", "-c", str(self.conf), *args], capture_output=True, text=True, check=False)

    def home(self, address: str) -> Path:
        """The home of the user whose canonical name (primary address, lower-cased) is `address`."""
        md5 = hashlib.md5(address.encode()).hexdigest()
        return self.root / "var/vmail" / md5[0] / md5[2] / address

    def lmtp(self, rcpt: str, message: str) -> tuple[int, bytes]:
        sock = str(self.root / "var/spool/postfix/private/dovecot-lmtp")
        with smtplib.LMTP(sock) as lmtp:
            lmtp.ehlo("test")
            lmtp.mail("sender@example.org")
            lmtp.rcpt(rcpt)
            return lmtp.data(message.encode())


def _ad_context(ad: Any, **changes: object) -> LayerContext:
    """The sample mailstore context against the test AD `ad`, with loopback VIPs, the test client playing the
    LB's amphora (whose port is on the member subnet: loopback here); `changes` to the layer's own fields."""
    directory = DirectorySettings(
        urls=(ad.ldaps_url,),
        tls=LdapTls.LDAPS,
        base_dn=ad.base_dn,
        bind_dn=ad.bind_dn,
        bind_password=Secret(ref=ad.bind_password),
        domains=ad.domains,
        ca_cert_pem=ad.ca_cert_pem,
    )
    ctx = context(
        directory=directory,
        vips=Vips(smtp_in="127.0.0.21", smtp_out="127.0.0.22", mailstore="127.0.0.23", webmail="127.0.0.24"),
        networks=replace(_sample.context(Role.MAILSTORE).platform.networks,
                         servers={**_sample.context(Role.MAILSTORE).platform.networks.servers,
                                  Role.MAILSTORE: ("127.0.0.0/8",)}),
    )
    return dataclasses.replace(ctx, **changes)  # type: ignore[arg-type]


def _install_dovecot(ctx: LayerContext, root: Path, log: Path, *, listen: str | None = None) -> Path:
    """Render the layer under `root` (Dovecot logging to `log`), make its certificate and directories as the
    setup script would, compile the global sieve; returns dovecot.conf. `listen`: test-side only, for two
    instances in one namespace (a server has its own addresses; here they share one `lo`)."""
    prof = profile(root=root, dovecot_log=str(log))
    for path, text in render(ctx, prof).items():
        if path == str(root) + DOVECOT_CONF and listen is not None:
            assert "\nlisten = *\n" in text
            text = text.replace("\nlisten = *\n", f"\nlisten = {listen}\n")
        write_file(Path(path), text)
    tls = root / "etc/pki/mailstrata"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "2", "-subj", "/CN=mailstore", "-keyout", str(tls / "server.key"),
         "-out", str(tls / "server.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    for d in ("var/lib/dovecot", "var/spool/postfix/private"):
        (root / d).mkdir(parents=True, exist_ok=True)
    if not (root / "var/vmail").exists():
        (root / "var/vmail").mkdir(parents=True)
        os.chown(root / "var/vmail", 5000, 5000)
    (root / LDAP_CONF.lstrip("/")).chmod(0o600)  # as the setup script leaves it
    conf = root / DOVECOT_CONF.lstrip("/")
    # As the role script does: compile the global sieve as root.
    subprocess.run(["sievec", "-c", str(conf), str(root) + SIEVE], check=True, capture_output=True)
    return conf


def _start_dovecot(ns: NetNs, root: Path, conf: Path, log: Path) -> subprocess.Popen[bytes]:
    """Dovecot in the foreground inside `ns`, once its LMTP socket is there."""
    dovecot = ns.popen(["dovecot", "-F", "-c", str(conf)])
    sock = root / "var/spool/postfix/private/dovecot-lmtp"
    deadline = time.monotonic() + 15
    while not sock.exists():
        assert dovecot.poll() is None and time.monotonic() < deadline, log.read_text() if log.exists() else ""
        time.sleep(0.1)
    return dovecot


def _stop_dovecot(dovecot: subprocess.Popen[bytes]) -> None:
    dovecot.terminate()
    dovecot.wait(timeout=15)


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    requires("samba", "samba-tool", "dovecot", "doveadm", "postmap", "sievec", "openssl", "ip", root=True)
    from tests.support.samba_ad import SambaAD

    # Dovecot's auth process (user dovecot) reads the CA and deliveries run as uid 5000: pytest's own
    # temporary directories are root-only, so this one is made traversable.
    tmp = Path(tempfile.mkdtemp(prefix="mailstrata-mailstore-"))
    tmp.chmod(0o755)
    root = tmp / "root"
    ns = NetNs.create("mst-ms")
    try:
        with SambaAD(tmp / "ad", netns=ns.name) as ad:
            conf = _install_dovecot(_ad_context(ad), root, tmp / "dovecot.log")
            dovecot = _start_dovecot(ns, root, conf, tmp / "dovecot.log")
            try:
                passwords = {login: u.password for login, u in ad.users.items()}
                yield Store(ns, root, conf, root / "etc/postfix", passwords, ad.run_in_netns, tmp / "dovecot.log")
            finally:
                _stop_dovecot(dovecot)
    finally:
        ns.delete()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.daemons
def test_auth_with_the_directory_password(store: Store) -> None:
    proc = store.doveadm("auth", "test", "usuario01", store.passwords["usuario01"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("passdb: usuario01 auth succeeded")


@pytest.mark.daemons
def test_auth_with_a_wrong_password_fails(store: Store) -> None:
    proc = store.doveadm("auth", "test", "usuario01", "not-" + store.passwords["usuario01"])
    assert proc.returncode == 77
    assert proc.stdout.startswith("passdb: usuario01 auth failed")


@pytest.mark.daemons
def test_auth_without_a_password_fails(store: Store) -> None:
    assert store.doveadm("auth", "test", "usuario01", "").returncode == 77


def userdb(store: Store, user: str) -> dict[str, str]:
    proc = store.doveadm("user", user)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(line.split("\t", 1) for line in proc.stdout.splitlines()[1:])


@pytest.mark.daemons
def test_userdb_hashed_home_and_quota_from_the_directory(store: Store) -> None:
    assert userdb(store, "usuario01") == {
        "user": "usuario01@domain01.dom",  # the canonical name: the primary address
        "uid": "5000",
        "gid": "5000",
        "home": f"{store.root}/var/vmail/c/4/usuario01@domain01.dom",
        "mail": "maildir:~/maildir",
        "quota_rule": "*:bytes=1048576",
    }


@pytest.mark.daemons
def test_userdb_same_home_whatever_the_spelling(store: Store) -> None:
    assert userdb(store, "USUARIO01@domain01.dom")["home"] == f"{store.root}/var/vmail/c/4/usuario01@domain01.dom"


@pytest.mark.daemons
def test_user_without_quota_attribute_gets_the_default(store: Store) -> None:
    assert "quota_rule" not in userdb(store, "usuario03")
    proc = store.doveadm("quota", "get", "-u", "usuario03")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()[1:]]
    assert [(r[2], r[4]) for r in rows] == [("STORAGE", "2097152"), ("MESSAGE", "100000")]


@pytest.mark.daemons
def test_unknown_user_is_not_found(store: Store) -> None:
    assert store.doveadm("user", "nadie").returncode == 67


@pytest.mark.daemons
def test_spam_is_filed_into_junk(store: Store) -> None:
    msg = (
        "From: a@example.org\r\nTo: usuario02@domain01.dom\r\nSubject: ***SPAM*** buy\r\nX-Spam-Flag: YES\r\n\r\nx\r\n"
    )
    assert store.lmtp("usuario02@domain01.dom", msg)[0] == 250
    assert len(list((store.home("usuario02@domain01.dom") / "maildir/.Junk/new").iterdir())) == 1


@pytest.mark.daemons
def test_clean_mail_goes_to_the_inbox(store: Store) -> None:
    msg = "From: a@example.org\r\nTo: usuario05@domain02.dom\r\nSubject: hello\r\nX-Spam-Flag: NO\r\n\r\nx\r\n"
    assert store.lmtp("usuario05@domain02.dom", msg)[0] == 250
    home = store.home("usuario05@domain02.dom")
    assert len(list((home / "maildir/new").iterdir())) == 1
    assert not (home / "maildir/.Junk/new").exists() or not any((home / "maildir/.Junk/new").iterdir())


@pytest.mark.daemons
def test_over_quota_mail_is_deferred(store: Store) -> None:
    # usuario01's directory quota is 1 MiB; QuotaPolicy's default over-quota policy is DEFER (4xx).
    body = ("y" * 76 + "\r\n") * 20000
    msg = f"From: a@example.org\r\nTo: usuario01@domain01.dom\r\nSubject: big\r\n\r\n{body}"
    code, reply = store.lmtp("usuario01@domain01.dom", msg)
    assert (code, reply.split(b" ", 1)[0]) == (452, b"4.2.2")


@pytest.mark.daemons
def test_people_map_finds_mailboxes(store: Store) -> None:
    got = {a: postmap(store, a, "ldap-people.cf") for a in ("usuario01@domain01.dom", "usuario05@domain02.dom")}
    assert got == {
        "usuario01@domain01.dom": "usuario01@domain01.dom",
        "usuario05@domain02.dom": "usuario05@domain02.dom",
    }


@pytest.mark.daemons
def test_people_map_knows_no_one_else(store: Store) -> None:
    assert postmap(store, "nadie@domain01.dom", "ldap-people.cf") is None


@pytest.mark.daemons
def test_group_address_expands_to_its_members(store: Store) -> None:
    got = postmap(store, "ventas@domain01.dom", "ldap-groups.cf")
    assert got is not None and sorted(got.split(",")) == ["usuario01@domain01.dom", "usuario02@domain01.dom"]


def postmap(store: Store, key: str, table: str) -> str | None:
    proc = store.ns.run(
        ["postmap", "-c", str(store.postfix), "-q", key, f"ldap:{store.postfix / table}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.stderr == "" and proc.returncode in (0, 1)
    return proc.stdout.strip() if proc.returncode == 0 else None


# ---- IMAP through the PROXY listener: the end-to-end check of TLS, PROXY and directory login --------

PROXY_HEADER = b"PROXY TCP4 127.0.0.99 127.0.0.1 40000 143\r\n"  # as an amphora would send it


class ProxiedIMAP4(imaplib.IMAP4):
    """imaplib that sends a PROXY v1 header before reading the greeting, as Octavia's pools do."""

    def __init__(self, port: int, header: bytes | None, host: str = "127.0.0.1") -> None:
        self._header = header
        super().__init__(host, port, timeout=10)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock: socket.socket = super()._create_socket(timeout)  # type: ignore[misc]  # not in typeshed
        if self._header is not None:
            sock.sendall(self._header)
        return sock


def _tls_context(store: Store) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(store.root / "etc/pki/mailstrata/server.crt"))
    ctx.check_hostname = False  # the self-signed test certificate names no address
    return ctx


def _login_over_starttls(store: Store, password: str) -> tuple[str, str]:
    imap = ProxiedIMAP4(143, PROXY_HEADER)
    try:
        try:
            imap.login("usuario01", password)
            before = "accepted"
        except imaplib.IMAP4.error as err:
            before = str(err)
        imap.starttls(_tls_context(store))
        typ, _ = imap.login("usuario01", password)
    except BaseException:
        imap.shutdown()
        raise
    imap.logout()
    return before, typ


def _connect_without_header() -> str:
    try:
        ProxiedIMAP4(143, None).shutdown()
        return "greeted"
    except (imaplib.IMAP4.abort, OSError) as err:
        return type(err).__name__


def _connect(port: int) -> str:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return "connected"
    except ConnectionRefusedError:
        return "refused"


@pytest.mark.daemons
def test_imap_login_needs_starttls_then_works_with_the_directory_password(store: Store) -> None:
    before, after = store.in_netns(_login_over_starttls, store, store.passwords["usuario01"])
    assert "Plaintext authentication disallowed" in before
    assert after == "OK"


@pytest.mark.daemons
def test_imap_sees_the_client_address_from_the_proxy_header(store: Store) -> None:
    store.in_netns(_login_over_starttls, store, store.passwords["usuario01"])
    deadline = time.monotonic() + 5
    # logged under the canonical name (the primary address), whatever the client typed
    while "Login: user=<usuario01@domain01.dom>" not in store.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    logins = [ln for ln in store.log.read_text().splitlines()
              if "imap-login: Info: Login: user=<usuario01@domain01.dom>" in ln]
    assert logins and all("rip=127.0.0.99" in ln and "TLS" in ln for ln in logins)


@pytest.mark.daemons
def test_imap_refuses_a_connection_without_proxy_header(store: Store) -> None:
    assert store.in_netns(_connect_without_header) == "abort"


@pytest.mark.daemons
def test_no_extra_localhost_listener(store: Store) -> None:
    assert store.in_netns(_connect, 144) == "refused"


# ---- identity: users are their full addresses (issue 9) ----------------------------------------------
# The seeded directory (mailstrata/twin/samba.py) holds jsmith@domain01.dom (login jsmith) and
# jsmith@domain02.dom (login jsmith02), jdoe whose address is john.doe@domain01.dom with the aliases
# jd@domain01.dom and john.doe@domain02.dom (proxyAddresses), and 1,100 bulk users.


def _imap_session(store: Store, user: str, password: str) -> imaplib.IMAP4:
    imap = ProxiedIMAP4(143, PROXY_HEADER)
    try:
        imap.starttls(_tls_context(store))
        imap.login(user, password)
    except BaseException:
        imap.shutdown()
        raise
    return imap


def _imap_login(store: Store, user: str, password: str) -> str:
    """"OK", or the server's refusal."""
    try:
        imap = _imap_session(store, user, password)
    except imaplib.IMAP4.error as err:
        return str(err)
    imap.logout()
    return "OK"


def _inbox_subjects(store: Store, user: str, password: str) -> list[str]:
    return _subjects(_imap_session(store, user, password))


def _subjects(imap: imaplib.IMAP4) -> list[str]:
    """The subjects in INBOX, sorted; logs the session out."""
    try:
        _, count = imap.select("INBOX", readonly=True)
        if count == [b"0"]:
            return []
        _, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    finally:
        imap.logout()
    return sorted(part[1].decode().strip().removeprefix("Subject: ") for part in data if isinstance(part, tuple))


def _deliver(store: Store, rcpt: str, subject: str) -> int:
    msg = f"From: a@example.org\r\nTo: {rcpt}\r\nSubject: {subject}\r\nX-Spam-Flag: NO\r\n\r\nx\r\n"
    return store.lmtp(rcpt, msg)[0]


@pytest.mark.daemons
def test_namesakes_in_two_domains_each_log_in_with_their_address_and_password(store: Store) -> None:
    # GIVEN jsmith@domain01.dom (login jsmith) and jsmith@domain02.dom (login jsmith02), two people
    own = {"jsmith@domain01.dom": store.passwords["jsmith"], "jsmith@domain02.dom": store.passwords["jsmith02"]}
    other = {"jsmith@domain01.dom": store.passwords["jsmith02"], "jsmith@domain02.dom": store.passwords["jsmith"]}
    # WHEN each logs in over IMAP with their address THEN their own password works and the namesake's does not
    got = {a: store.in_netns(_imap_login, store, a, pw) for a, pw in own.items()}
    crossed = {a: "OK" in store.in_netns(_imap_login, store, a, pw) for a, pw in other.items()}
    assert got == {"jsmith@domain01.dom": "OK", "jsmith@domain02.dom": "OK"}
    assert crossed == {"jsmith@domain01.dom": False, "jsmith@domain02.dom": False}


@pytest.mark.daemons
def test_namesakes_in_two_domains_receive_only_their_own_mail(store: Store) -> None:
    # GIVEN one message for each jsmith WHEN both are delivered over LMTP THEN each reads only their own
    assert _deliver(store, "jsmith@domain02.dom", "namesake: for domain02") == 250
    assert _deliver(store, "jsmith@domain01.dom", "namesake: for domain01") == 250
    got = {
        "jsmith@domain01.dom": store.in_netns(_inbox_subjects, store, "jsmith@domain01.dom", store.passwords["jsmith"]),
        "jsmith@domain02.dom": store.in_netns(_inbox_subjects, store, "jsmith@domain02.dom",
                                              store.passwords["jsmith02"]),
    }
    assert got == {"jsmith@domain01.dom": ["namesake: for domain01"],
                   "jsmith@domain02.dom": ["namesake: for domain02"]}  # fmt: skip


@pytest.mark.daemons
def test_a_user_whose_address_is_not_the_login_logs_in_with_either(store: Store) -> None:
    # GIVEN jdoe, whose address is john.doe@domain01.dom WHEN logging in THEN the address and the account
    # name work; the local part alone and an alias are no logins (aliases are addresses, not names)
    pw = store.passwords["jdoe"]
    got = {u: store.in_netns(_imap_login, store, u, pw) == "OK"
           for u in ("john.doe@domain01.dom", "John.Doe@Domain01.dom", "jdoe", "john.doe", "jd@domain01.dom")}
    assert got == {"john.doe@domain01.dom": True, "John.Doe@Domain01.dom": True, "jdoe": True, "john.doe": False,
                   "jd@domain01.dom": False}  # fmt: skip


@pytest.mark.daemons
def test_both_logins_of_one_user_are_one_canonical_user_with_one_home(store: Store) -> None:
    # doveadm prints `user` only when the lookup changed the name it was given
    by_login, by_address = userdb(store, "jdoe"), userdb(store, "john.doe@domain01.dom")
    assert by_login.pop("user") == "john.doe@domain01.dom"
    assert by_login == by_address
    assert by_login["home"] == str(store.home("john.doe@domain01.dom"))


@pytest.mark.daemons
def test_alias_table_rewrites_an_alias_to_its_owners_address(store: Store) -> None:
    # The mailstore's virtual_alias_maps (ldap-groups.cf), asked by Postfix's own postmap: an alias (any case)
    # answers the owner's primary address; a primary address and a namesake need no rewriting.
    keys = ("jd@domain01.dom", "JD@Domain01.DOM", "john.doe@domain02.dom", "john.doe@domain01.dom",
            "jsmith@domain02.dom", "jdoe@domain01.dom")  # fmt: skip
    assert {k: postmap(store, k, "ldap-groups.cf") for k in keys} == {
        "jd@domain01.dom": "john.doe@domain01.dom",
        "JD@Domain01.DOM": "john.doe@domain01.dom",
        "john.doe@domain02.dom": "john.doe@domain01.dom",
        "john.doe@domain01.dom": None,
        "jsmith@domain02.dom": None,
        "jdoe@domain01.dom": None,  # the account name is no address
    }


@pytest.mark.daemons
def test_people_table_knows_primary_addresses_only(store: Store) -> None:
    keys = ("jsmith@domain02.dom", "john.doe@domain01.dom", "jd@domain01.dom")
    assert {k: postmap(store, k, "ldap-people.cf") for k in keys} == {
        "jsmith@domain02.dom": "jsmith@domain02.dom",
        "john.doe@domain01.dom": "john.doe@domain01.dom",
        "jd@domain01.dom": None,  # an alias is rewritten first (virtual_alias_maps), then it is a mailbox
    }


@pytest.mark.daemons
def test_mail_to_the_address_and_to_the_aliases_reaches_the_owner(store: Store) -> None:
    # GIVEN mail to jdoe's address and to both aliases, each rewritten by the alias table as Postfix does
    # before delivery WHEN delivered over LMTP THEN jdoe reads all three, whichever login he uses
    for rcpt in ("john.doe@domain01.dom", "jd@domain01.dom", "john.doe@domain02.dom"):
        target = postmap(store, rcpt, "ldap-groups.cf") or rcpt
        assert _deliver(store, target, f"alias: to {rcpt}") == 250
    expected = ["alias: to jd@domain01.dom", "alias: to john.doe@domain01.dom", "alias: to john.doe@domain02.dom"]
    for login in ("jdoe", "john.doe@domain01.dom"):
        assert store.in_netns(_inbox_subjects, store, login, store.passwords["jdoe"]) == expected


@pytest.mark.daemons
def test_iteration_lists_every_user_by_canonical_name(store: Store) -> None:
    # `doveadm user '*'` iterates the userdb (iterate_filter): every user with a mailbox, more than one
    # LDAP page (1,000) of them, each by their canonical name (the primary address, lower-cased).
    from tests.support.samba_ad import SEED_USERS, bulk_users

    proc = store.doveadm("user", "*")
    assert proc.returncode == 0, proc.stderr
    expected = {u.mail.lower() for u in SEED_USERS if u.mail} | {m for _, m in bulk_users()}
    assert len(expected) > 1000
    assert sorted(proc.stdout.split()) == sorted(expected)


@pytest.fixture(scope="module")
def mta(store: Store) -> Iterator[Path]:
    """The mailstore's own Postfix (its rendered main.cf and master.cf, in a copy with a log file added)
    delivering over LMTP to the running Dovecot; yields the copy's config directory."""
    requires("postfix", "postconf", "postalias", "sendmail")
    conf = store.root / "etc/postfix-mta"
    shutil.copytree(store.postfix, conf)
    data = store.root / "var/lib/postfix"
    data.mkdir(parents=True, exist_ok=True)
    shutil.chown(data, "postfix", "postfix")
    write_file(store.root / "etc/aliases", "postmaster: root\n")
    # As `postfix set-permissions` leaves it: master makes its sockets here as the mail owner.
    shutil.chown(store.root / "var/spool/postfix/private", "postfix")
    log = store.root / "maillog"
    # Test-side only: a log file (no syslog here; master.cf has postlogd), and a host name of our own.
    store.ns.run(["postconf", "-c", str(conf), "-e", f"maillog_file = {log}",
                  f"maillog_file_prefixes = {store.root}", "myhostname = mailstore-01.test"], check=True)  # fmt: skip
    store.ns.run(["postalias", "-c", str(conf), str(store.root / "etc/aliases")], check=True)
    # Postfix prints its complaints only to a terminal: `script` gives it one.
    started = subprocess.run(["script", "-qec", shlex.join(store.ns.cmd(["postfix", "-c", str(conf), "start"])),
                              "/dev/null"], capture_output=True, text=True, check=False)  # fmt: skip
    assert started.returncode == 0, started.stdout + (log.read_text() if log.exists() else "")
    try:
        yield conf
    finally:
        store.ns.run(["postfix", "-c", str(conf), "stop"], capture_output=True, check=False)


@pytest.mark.daemons
def test_postfix_delivers_an_alias_to_its_owners_mailbox(store: Store, mta: Path) -> None:
    # GIVEN mail submitted to the mailstore's Postfix for jdoe's aliases (any case) and his address
    # WHEN Postfix rewrites them (virtual_alias_maps) and delivers over LMTP THEN all reach his one mailbox
    rcpts = ("JD@domain01.dom", "john.doe@domain02.dom", "john.doe@domain01.dom")
    for rcpt in rcpts:
        msg = f"From: a@example.org\r\nTo: {rcpt}\r\nSubject: postfix: to {rcpt}\r\n\r\nx\r\n"
        sent = store.ns.run(["sendmail", "-C", str(mta), "-f", "a@example.org", rcpt], input=msg,
                            capture_output=True, text=True, check=False)  # fmt: skip
        assert sent.returncode == 0, sent.stderr
    expected = sorted(f"postfix: to {r}" for r in rcpts)
    deadline = time.monotonic() + 30
    while True:
        got = [s for s in store.in_netns(_inbox_subjects, store, "jdoe", store.passwords["jdoe"])
               if s.startswith("postfix: ")]  # fmt: skip
        if got == expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert got == expected, (store.root / "maillog").read_text()[-3000:]


@pytest.mark.daemons
def test_postfix_delivers_namesakes_to_their_own_mailboxes(store: Store, mta: Path) -> None:
    # GIVEN one message for each jsmith through the mailstore's Postfix WHEN delivered THEN each reads only theirs
    for rcpt in ("jsmith@domain02.dom", "jsmith@domain01.dom"):
        msg = f"From: a@example.org\r\nTo: {rcpt}\r\nSubject: postfix namesake: {rcpt}\r\n\r\nx\r\n"
        sent = store.ns.run(["sendmail", "-C", str(mta), "-f", "a@example.org", rcpt], input=msg,
                            capture_output=True, text=True, check=False)  # fmt: skip
        assert sent.returncode == 0, sent.stderr
    logins = {"jsmith@domain01.dom": "jsmith", "jsmith@domain02.dom": "jsmith02"}
    expected = {a: [f"postfix namesake: {a}"] for a in logins}
    deadline = time.monotonic() + 30
    while True:
        got = {a: [s for s in store.in_netns(_inbox_subjects, store, a, store.passwords[login])
                   if s.startswith("postfix namesake: ")] for a, login in logins.items()}  # fmt: skip
        if got == expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert got == expected, (store.root / "maillog").read_text()[-3000:]


@pytest.mark.daemons
def test_imap_logs_the_client_address_webmail_names_in_imap_id(dovecot23: dict[str, str]) -> None:
    # SOGo sends ID ("x-originating-ip" ...) after LOGIN, when Dovecot no longer trusts it: logged, not believed.
    assert dovecot23["protocol imap/imap_id_log"] == "x-originating-ip"


# ---- per-user placement: two mailstores on one share (issue 12, item 4) -----------------------------
# Two real Dovecot 2.3 instances rendered from the library, each under its own root with its own address in
# one namespace, sharing one maildir tree (a directory standing in for the NFS share: each root's var/vmail
# links to it, as the role script links /var/vmail into the share) and one Samba AD. The placement agent is
# the rendered script, run a round at a time (`--once`) with `--self`: both servers' addresses are local here.

PEERS = (Peer("mailstore-01", "127.0.0.11"), Peer("mailstore-02", "127.0.0.12"))
PLACEMENT_CONF = "/etc/dovecot/mailstrata-placement.conf"
AGENT = "/usr/local/sbin/mailstrata-placement"
MAP = "/var/lib/mailstrata/placement/map.passwd"


@dataclass
class Mailstores:
    ns: NetNs
    tmp: Path
    share: Path
    roots: dict[str, Path]
    confs: dict[str, Path]
    logs: dict[str, Path]
    procs: dict[str, subprocess.Popen[bytes]]
    passwords: dict[str, str]
    in_netns: Callable[..., Any]

    def address(self, name: str) -> str:
        return next(p.address for p in PEERS if p.name == name)

    def other(self, name: str) -> str:
        return next(p.name for p in PEERS if p.name != name)

    def agent(self, name: str) -> subprocess.CompletedProcess[str]:
        """One round of `name`'s placement agent; fails the test on an error."""
        root = self.roots[name]
        proc = self.ns.run(["/usr/bin/python3", f"{root}{AGENT}", "--config", f"{root}{PLACEMENT_CONF}", "--once",
                            "--self", name], capture_output=True, text=True, check=False)  # fmt: skip
        assert proc.returncode == 0 and "error" not in proc.stdout, proc.stdout + proc.stderr
        if "map written" in proc.stdout:
            time.sleep(1.1)  # Dovecot checks a passwd-file for changes at most once a second
        return proc

    def agents(self) -> str:
        """One round of every agent, in slot order; their output."""
        return "".join(self.agent(p.name).stdout for p in PEERS)

    def map(self, name: str) -> str:
        return (self.roots[name] / MAP.lstrip("/")).read_text()

    def doveadm(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.ns.run(["doveadm", "-c", str(self.confs[name]), *args], capture_output=True, text=True,
                           check=False)  # fmt: skip

    def home_of(self, name: str, user: str) -> str:
        """Where server `name` places `user`, as Dovecot's own passdb lookup answers (the `host` field)."""
        proc = self.doveadm(name, "auth", "lookup", "-x", "service=lmtp", user)  # as LMTP asks
        assert proc.returncode == 0, proc.stdout + proc.stderr
        pairs = (ln.split(" : ", 1) for ln in proc.stdout.splitlines()[1:] if " : " in ln)
        fields = {k.strip(): v.strip() for k, v in pairs}
        return next(p.name for p in PEERS if p.address == fields["host"])

    def start(self, name: str) -> None:
        self.procs[name] = _start_dovecot(self.ns, self.roots[name], self.confs[name], self.logs[name])
        _wait_for_port(self, self.address(name), 24)

    def stop(self, name: str) -> None:
        _stop_dovecot(self.procs.pop(name))

    def kill(self, name: str) -> None:
        """The server dies: every process of its Dovecot at once (SIGKILL), as when the machine goes away."""
        master = self.procs.pop(name)
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        tree, todo = [], [master.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        master.wait(timeout=15)

    def lmtp(self, name: str, rcpt: str, message: str) -> tuple[int, bytes]:
        """A delivery as the local Postfix of `name` makes it: over the unix socket in its queue directory."""
        with smtplib.LMTP(str(self.roots[name] / "var/spool/postfix/private/dovecot-lmtp")) as lmtp:
            lmtp.ehlo("test")
            lmtp.mail("sender@example.org")
            code, reply = lmtp.rcpt(rcpt)
            if code != 250:
                return code, reply  # e.g. 4xx: the home cannot be reached
            return lmtp.data(message.encode())

    def wait_log(self, name: str, needle: str, timeout: float = 10) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            lines = [ln for ln in self.logs[name].read_text().splitlines() if needle in ln]
            if lines or time.monotonic() > deadline:
                return lines
            time.sleep(0.1)


def _wait_for_port(ms: Mailstores, host: str, port: int) -> None:
    def probe() -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((host, port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.1)
        return False

    assert ms.in_netns(probe), f"{host}:{port} does not answer"


@pytest.fixture(scope="module")
def mailstores() -> Iterator[Mailstores]:
    requires("samba", "samba-tool", "dovecot", "doveadm", "sievec", "openssl", "ip", "/usr/bin/python3", root=True)
    from tests.support.samba_ad import SambaAD

    tmp = Path(tempfile.mkdtemp(prefix="mailstrata-placement-"))
    tmp.chmod(0o755)
    share = tmp / "share"  # the NFS share's vmail directory
    share.mkdir()
    os.chown(share, 5000, 5000)
    ns = NetNs.create("mst-pl", addresses=[p.address for p in PEERS])
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with SambaAD(tmp / "ad", netns=ns.name) as ad:
            ctx = _ad_context(ad, peers=PEERS)
            roots = {p.name: tmp / p.name for p in PEERS}
            logs = {p.name: tmp / f"{p.name}.log" for p in PEERS}
            confs = {}
            for p in PEERS:
                (roots[p.name] / "var").mkdir(parents=True)
                (roots[p.name] / "var/vmail").symlink_to(share)  # as the role script links /var/vmail
                confs[p.name] = _install_dovecot(ctx, roots[p.name], logs[p.name], listen=p.address)
                # Test-side: no metadata service here (the poll is tested on its own, with a local server).
                cfg = roots[p.name] / PLACEMENT_CONF.lstrip("/")
                cfg.write_text(re.sub(r"(?m)^metadata_url .*$", "metadata_url", cfg.read_text()))
            ms = Mailstores(ns, tmp, share, roots, confs, logs, procs,
                            {login: u.password for login, u in ad.users.items()}, ad.run_in_netns)
            ms.agents()  # the first map, before Dovecot starts (the unit's ExecStartPre)
            for p in PEERS:
                ms.start(p.name)
            ms.agents()  # both healthy now
            yield ms
            for name in list(procs):
                ms.stop(name)
    finally:
        ns.delete()
        shutil.rmtree(tmp, ignore_errors=True)


def _homes(ms: Mailstores, users: tuple[str, ...]) -> dict[str, str]:
    return {u: ms.home_of(PEERS[0].name, u) for u in users}


USERS = ("usuario01@domain01.dom", "usuario02@domain01.dom", "usuario03@domain01.dom", "usuario05@domain02.dom",
         "jsmith@domain01.dom", "jsmith@domain02.dom", "john.doe@domain01.dom")


def _a_user_homed_on(ms: Mailstores, name: str) -> tuple[str, str]:
    """(canonical address, login) of a seeded user whose home is `name`."""
    logins = {"jsmith@domain01.dom": "jsmith", "jsmith@domain02.dom": "jsmith02", "john.doe@domain01.dom": "jdoe"}
    for u in USERS:
        if ms.home_of(name, u) == name:
            return u, logins.get(u, u.split("@")[0])
    raise AssertionError(f"no seeded user is homed on {name}")


def _imap_via(ms: Mailstores, name: str, user: str, password: str) -> imaplib.IMAP4:
    """An IMAP session through server `name`'s LB-facing port (PROXY header, STARTTLS), as a client gets one."""
    address = ms.address(name)
    header = f"PROXY TCP4 127.0.0.99 {address} 40000 143\r\n".encode()
    imap = ProxiedIMAP4(143, header, host=address)
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # two self-signed test certificates
        imap.starttls(ctx)
        imap.login(user, password)
    except BaseException:
        imap.shutdown()
        raise
    return imap


def _imap_subjects_via(ms: Mailstores, name: str, user: str, password: str) -> list[str]:
    return _subjects(_imap_via(ms, name, user, password))


@pytest.mark.daemons
def test_placement_config_is_accepted_by_doveconf(mailstores: Mailstores) -> None:
    for name, conf in mailstores.confs.items():
        proc = mailstores.ns.run(["doveconf", "-n", "-c", str(conf)], capture_output=True, text=True, check=False)
        assert (proc.returncode, proc.stderr) == (0, ""), name
        assert "\nlmtp_proxy = yes\n" in proc.stdout


@pytest.mark.daemons
def test_every_mailstore_computes_the_same_map(mailstores: Mailstores) -> None:
    maps = {p.name: mailstores.map(p.name) for p in PEERS}
    assert maps[PEERS[0].name] == maps[PEERS[1].name]
    lines = maps[PEERS[0].name].splitlines()
    assert len(lines) == 6 * 256  # imap (143, 993), pop3 (110, 995), sieve, lmtp (the unix socket): every bucket
    hosts = {ln.split("host=")[1].split()[0] for ln in lines}
    assert hosts == {p.address for p in PEERS}  # both healthy: both hold buckets


@pytest.mark.daemons
def test_every_mailstore_places_a_user_on_the_same_home(mailstores: Mailstores) -> None:
    # Dovecot's own lookup on each server, whatever login spelling
    by_server = {p.name: {u: mailstores.home_of(p.name, u) for u in USERS} for p in PEERS}
    assert by_server[PEERS[0].name] == by_server[PEERS[1].name]
    assert set(by_server[PEERS[0].name].values()) == {p.name for p in PEERS}  # seven users over both


@pytest.mark.daemons
def test_imap_login_on_another_mailstore_is_served_by_the_users_home(mailstores: Mailstores) -> None:
    ms = mailstores
    home = PEERS[0].name
    user, login = _a_user_homed_on(ms, home)
    other = ms.other(home)
    # WHEN the user logs in through the other server's LB port
    imap = ms.in_netns(_imap_via, ms, other, login, ms.passwords[login])
    ms.in_netns(imap.logout)
    # THEN the other server proxied the login, and the home logged it in (its peer port, the client's address)
    assert ms.wait_log(other, f"proxy({user},{ms.address(home)}:10993): Started proxying")
    logins = ms.wait_log(home, f"imap-login: Info: Login: user=<{user}>")
    # the client's address (the proxy is a trusted network), and TLS between the two servers (STARTTLS)
    assert logins and all("rip=127.0.0.99" in ln and "TLS" in ln for ln in logins)
    assert not [ln for ln in ms.logs[other].read_text().splitlines() if f"Login: user=<{user}>" in ln]


@pytest.mark.daemons
def test_lmtp_delivery_on_another_mailstore_lands_via_the_home(mailstores: Mailstores) -> None:
    ms = mailstores
    home = PEERS[1].name
    user, login = _a_user_homed_on(ms, home)
    other = ms.other(home)
    msgid = f"<placement-{time.monotonic_ns()}@example.org>"
    msg = (f"From: a@example.org\r\nTo: {user}\r\nSubject: via {other}\r\nMessage-ID: {msgid}\r\n"
           "X-Spam-Flag: NO\r\n\r\nx\r\n")
    # WHEN the other server's Postfix hands the message to its own Dovecot
    assert ms.lmtp(other, user, msg)[0] == 250
    # THEN the home saved it (and only the home), and the user reads it
    assert ms.wait_log(home, f"msgid={msgid}: stored mail into mailbox 'INBOX'")
    assert not [ln for ln in ms.logs[other].read_text().splitlines() if f"msgid={msgid}: stored mail" in ln]
    assert f"via {other}" in ms.in_netns(_imap_subjects_via, ms, home, login, ms.passwords[login])


# ---- placement: the rendered files (no daemons running) ---------------------------------------------

SAMPLE_PEERS = (Peer("mailstore-01", "10.10.3.11"), Peer("mailstore-02", "10.10.3.12"))


def _placed(tmp_path: Path) -> str:
    """`doveconf -n` of the sample mailstore with two servers; no warnings."""
    text = render(dataclasses.replace(context(), peers=SAMPLE_PEERS), profile())[DOVECOT_CONF]
    proc = subprocess.run(["doveconf", "-n", "-c", str(write_file(tmp_path / "dovecot.conf", text))],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert (proc.returncode, proc.stderr) == (0, "")
    return proc.stdout


@pytest.mark.daemons
def test_placement_asks_the_directory_first_and_the_map_only_after_it(tmp_path: Path) -> None:
    # The map holds no passwords: it must never be reached by a user the directory did not verify.
    blocks = re.findall(r"(?ms)^passdb \{\n(.*?)^\}", _placed(tmp_path))
    assert [dict(ln.strip().split(" = ", 1) for ln in b.splitlines()) for b in blocks] == [
        {"args": LDAP_CONF, "driver": "ldap", "result_success": "continue-ok", "result_failure": "return-fail",
         "result_internalfail": "return-fail"},
        {"args": "username_format=%s-%{real_lport}-%256Nu /var/lib/mailstrata/placement/map.passwd",
         "driver": "passwd-file", "result_internalfail": "return-fail"},
    ]  # fmt: skip


@pytest.mark.daemons
def test_placement_opens_peer_ports_and_proxies_lmtp(tmp_path: Path) -> None:
    conf = flatten_doveconf(_placed(tmp_path))
    peer = {k: v for k, v in conf.items() if "_peer/" in k or k.startswith("service lmtp/inet")}
    assert peer == {
        "service imap-login/inet_listener imap_peer/port": "10993",
        "service pop3-login/inet_listener pop3_peer/port": "1109",
        "service managesieve-login/inet_listener sieve_peer/port": "220",
        "service lmtp/inet_listener lmtp/port": "24",
    }
    assert (conf["lmtp_proxy"], conf["login_trusted_networks"]) == ("yes", "10.10.3.0/24")


def test_without_peers_there_is_no_placement() -> None:
    out = render(context(), profile())
    assert "lmtp_proxy" not in out[DOVECOT_CONF] and "passwd-file" not in out[DOVECOT_CONF]
    assert not [p for p in out if "placement" in p]


def test_placement_agent_config_lists_the_peers_and_the_map() -> None:
    out = render(dataclasses.replace(context(), peers=SAMPLE_PEERS), load_profile("centos7", Role.MAILSTORE))
    cfg = [ln for ln in out[PLACEMENT_CONF].splitlines() if ln and not ln.startswith("#")]
    keys = ("peer ", "map_file", "front_ports", "buckets", "drain_dir", "drain_request")
    assert [ln for ln in cfg if ln.startswith(keys)] == [
        "buckets 256",
        "map_file /var/lib/mailstrata/placement/map.passwd",
        "drain_dir /var/vmail/.mailstrata/draining",
        "drain_request /run/mailstrata/drain",
        "front_ports imap 143 993",
        "front_ports lmtp 0",
        "front_ports pop3 110 995",
        "front_ports sieve 4190",
        "peer mailstore-01 10.10.3.11",
        "peer mailstore-02 10.10.3.12",
    ]
    dropin = out["/etc/systemd/system/dovecot.service.d/mailstrata.conf"]
    # Dovecot reads a missing map as "no line" (served anywhere): it must not start without one.
    assert "\nAfter=mailstrata-placement.service\n" in dropin
    assert "\nExecStartPre=/usr/bin/test -s /var/lib/mailstrata/placement/map.passwd\n" in dropin
    unit = out["/etc/systemd/system/mailstrata-placement.service"]
    assert "\nBefore=dovecot.service\n" in unit and " --once\n" in unit  # the first map before Dovecot
    assert "systemctl enable --now mailstrata-placement.service\n" in out[ROLE_SCRIPT]


def _logged(ms: Mailstores, name: str, needle: str) -> int:
    return sum(needle in ln for ln in ms.logs[name].read_text().splitlines())


def _session_state(imap: imaplib.IMAP4) -> str:
    """"open" when the session still answers NOOP, else "closed"."""
    try:
        imap.noop()
        return "open"
    except (imaplib.IMAP4.abort, OSError):
        return "closed"


@pytest.fixture
def restored(mailstores: Mailstores) -> Iterator[Mailstores]:
    """The pair as the module left it (both up, none draining, current maps) after the test."""
    yield mailstores
    for p in PEERS:
        (mailstores.roots[p.name] / "run/mailstrata/drain").unlink(missing_ok=True)
        if p.name not in mailstores.procs:
            mailstores.start(p.name)
    mailstores.agents()
    mailstores.agents()  # a second round sees the others' flags gone


@pytest.mark.daemons
def test_a_draining_home_hands_its_users_over_and_kicks_their_sessions(restored: Mailstores) -> None:
    ms = restored
    home = PEERS[0].name
    user, login = _a_user_homed_on(ms, home)
    other = ms.other(home)
    # GIVEN an open IMAP session of the user on its home
    imap = ms.in_netns(_imap_via, ms, home, login, ms.passwords[login])
    ms.in_netns(imap.select, "INBOX")
    # WHEN the home is asked to drain and each agent runs one round (the home first: it publishes its flag)
    (ms.roots[home] / "run/mailstrata").mkdir(parents=True, exist_ok=True)
    (ms.roots[home] / "run/mailstrata/drain").touch()
    kicked = ms.agent(home).stdout
    ms.agent(other)
    # THEN both servers place the user on the other one, with the same map
    assert {p.name: ms.home_of(p.name, user) for p in PEERS} == {home: other, other: other}
    assert ms.map(home) == ms.map(other)
    assert (ms.share / ".mailstrata/draining" / home).exists()
    # AND the session on the old home was kicked, so that the client reconnects to the new one
    assert "kicked" in kicked
    assert ms.in_netns(_session_state, imap) == "closed"
    # AND a new login through the drained server's LB port is served by the other server
    before = _logged(ms, other, f"imap-login: Info: Login: user=<{user}>")
    ms.in_netns(ms.in_netns(_imap_via, ms, home, login, ms.passwords[login]).logout)
    assert ms.wait_log(home, f"proxy({user},{ms.address(other)}:10993): Started proxying")
    assert _logged(ms, other, f"imap-login: Info: Login: user=<{user}>") == before + 1


@pytest.mark.daemons
def test_when_a_home_stops_its_users_are_served_and_delivered_by_the_other(restored: Mailstores) -> None:
    ms = restored
    home = PEERS[1].name
    user, login = _a_user_homed_on(ms, home)
    other = ms.other(home)
    # GIVEN the user's home stops WHEN the other server's agent runs a round
    ms.stop(home)
    ms.agent(other)
    # THEN the other server is the user's home, and serves the user's mail and deliveries itself
    assert ms.home_of(other, user) == other
    msgid = f"<outage-{time.monotonic_ns()}@example.org>"
    msg = f"From: a@example.org\r\nTo: {user}\r\nSubject: during the outage\r\nMessage-ID: {msgid}\r\n\r\nx\r\n"
    assert ms.lmtp(other, user, msg)[0] == 250
    assert ms.wait_log(other, f"msgid={msgid}: stored mail into mailbox 'INBOX'")
    assert "during the outage" in ms.in_netns(_imap_subjects_via, ms, other, login, ms.passwords[login])
    # AND WHEN the home comes back and both agents run a round THEN it is the user's home again
    ms.start(home)
    rounds = ms.agents()
    assert {p.name: ms.home_of(p.name, user) for p in PEERS} == {home: home, other: home}, rounds


def _serve_metadata(body: bytes) -> Any:
    """An HTTP server standing in for Nova's metadata service, on 127.0.0.31 inside the namespace."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200 if self.path == "/openstack/latest/meta_data.json" else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.31", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.daemons
def test_the_nova_metadata_key_drains_a_server(restored: Mailstores) -> None:
    ms = restored
    name = PEERS[1].name
    ms.ns.add_address("127.0.0.31")
    cfg = ms.roots[name] / PLACEMENT_CONF.lstrip("/")
    original = cfg.read_text()
    flag = ms.share / ".mailstrata/draining" / name
    try:
        for value, drained in (("true", True), ("false", False)):
            server = ms.in_netns(_serve_metadata, json.dumps({"meta": {"mailstrata_drain": value}}).encode())
            try:
                url = f"http://127.0.0.31:{server.server_port}/openstack/latest/meta_data.json"
                cfg.write_text(re.sub(r"(?m)^metadata_url.*$", f"metadata_url {url}", original))
                ms.agent(name)
            finally:
                server.shutdown()
            assert flag.exists() is drained, value
    finally:
        cfg.write_text(original)


def _deliver_until_accepted(ms: Mailstores, name: str, user: str, msg: str) -> int:
    """As the sending Postfix does: a 4xx (the home went away mid-delivery) is retried after the next round."""
    for _ in range(5):
        try:
            code = ms.lmtp(name, user, msg)[0]
        except smtplib.SMTPResponseException as err:
            code = err.smtp_code
        if code == 250:
            return code
        assert 400 <= code < 500, code
        ms.agent(name)
        time.sleep(0.5)
    return code


def _search(imap: imaplib.IMAP4, word: str) -> list[bytes]:
    _, data = imap.search(None, "BODY", word)
    return data[0].split()


def _found_by_search(ms: Mailstores, via: str, login: str, words: list[str]) -> dict[str, int]:
    """{word: messages a full-text search (SEARCH BODY) finds}, through server `via`'s LB-facing port."""
    imap = ms.in_netns(_imap_via, ms, via, login, ms.passwords[login])
    try:
        ms.in_netns(imap.select, "INBOX", True)
        return {w: len(ms.in_netns(_search, imap, w)) for w in words}
    finally:
        ms.in_netns(imap.logout)


@pytest.mark.daemons
def test_a_full_text_index_a_dead_home_was_writing_is_repaired_by_the_new_home(restored: Mailstores) -> None:
    # GIVEN a user homed on `home`, with two messages delivered and indexed there
    ms = restored
    home = PEERS[0].name
    user, login = _a_user_homed_on(ms, home)
    other = ms.other(home)
    run = f"lock{time.monotonic_ns()}"
    words = [f"{run}w{i}" for i in range(4)]

    def msg(i: int) -> str:
        return (f"From: a@example.org\r\nTo: {user}\r\nSubject: {run} {i}\r\nMessage-ID: <{words[i]}@example.org>"
                f"\r\n\r\nthe word is {words[i]}\r\n")

    for i in (0, 1):
        assert ms.lmtp(home, user, msg(i))[0] == 250
    assert _found_by_search(ms, home, login, words[:2]) == dict.fromkeys(words[:2], 1)
    # AND the home dies while it writes the user's Lucene index: CLucene's write.lock stays on the share.
    # (Left alone, the new home's indexer times out on that lock within Dovecot's 60 s override, fails with
    # CLucene's I/O error, empties the index and still records the message as indexed: a search never finds
    # any earlier message again.)
    lock = next(ms.share.glob(f"*/*/{user}")) / "maildir/lucene-indexes/write.lock"
    lock.touch()
    os.chown(lock, 5000, 5000)
    ms.kill(home)
    # WHEN the other server's agent runs a round (it becomes the user's home) and mail keeps coming
    repaired = ms.agent(other).stdout
    for i in (2, 3):
        assert ms.lmtp(other, user, msg(i))[0] == 250
    # THEN it repaired the index, and a full-text search finds every message
    assert f"repaired the full-text index of {user}" in repaired
    assert not lock.exists()
    assert _found_by_search(ms, other, login, words) == dict.fromkeys(words, 1)


@pytest.mark.daemons
def test_after_a_home_is_killed_mid_stream_every_message_arrives_once_and_search_finds_it(
        restored: Mailstores) -> None:
    # GIVEN a user whose home is `home`, and deliveries arriving at both servers in turn (the LB's round robin)
    ms = restored
    home = PEERS[0].name
    user, login = _a_user_homed_on(ms, home)
    other = ms.other(home)
    run = f"r{time.monotonic_ns()}"
    words: list[str] = []

    def deliver(i: int, via: str) -> None:
        word = f"{run}w{i:02d}"
        msg = (f"From: a@example.org\r\nTo: {user}\r\nSubject: {run} {i}\r\nMessage-ID: <{word}@example.org>\r\n"
               f"X-Spam-Flag: NO\r\n\r\nthe word is {word}\r\n")
        assert _deliver_until_accepted(ms, via, user, msg) == 250
        words.append(word)

    for i in range(6):
        deliver(i, (home, other)[i % 2])
    # WHEN the home is killed mid-stream, the other server's agent runs a round, mail keeps coming
    ms.kill(home)
    for i in range(6, 12):
        deliver(i, other)
        if i == 7:
            ms.agent(other)
    # AND the home comes back, both agents run, and mail arrives at both servers again
    ms.start(home)
    ms.agents()
    for i in range(12, 18):
        deliver(i, (home, other)[i % 2])
    # THEN every message is in the mailbox once, and a full-text search (Lucene, on the share) finds each one
    imap = ms.in_netns(_imap_via, ms, other, login, ms.passwords[login])
    try:
        ms.in_netns(imap.select, "INBOX", True)
        _, data = ms.in_netns(imap.search, None, "SUBJECT", run)
        found = {w: len(ms.in_netns(_search, imap, w)) for w in words}
        _, subj = ms.in_netns(imap.fetch, "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)])")
    finally:
        ms.in_netns(imap.logout)
    logs = {n: [ln for ln in ms.logs[n].read_text().splitlines() if "fts" in ln or "ucene" in ln or "indexer" in ln]
            for n in ms.logs}
    assert found == {w: 1 for w in words}, logs
    assert len(data[0].split()) == 18, [p[1] for p in subj if isinstance(p, tuple)]


def _pop3_login_via(ms: Mailstores, name: str, user: str, password: str) -> bytes:
    """POP3 through server `name`'s LB port (PROXY header, STLS, USER/PASS): the server's answer to PASS."""
    address = ms.address(name)
    raw = socket.create_connection((address, 110), timeout=10)
    raw.sendall(f"PROXY TCP4 127.0.0.99 {address} 40000 110\r\n".encode())
    f = raw.makefile("rb")
    assert f.readline().startswith(b"+OK")
    raw.sendall(b"STLS\r\n")
    assert f.readline().startswith(b"+OK")
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    tls = ctx.wrap_socket(raw)
    f = tls.makefile("rb")
    tls.sendall(f"USER {user}\r\n".encode())
    f.readline()
    tls.sendall(f"PASS {password}\r\n".encode())
    answer = f.readline()
    tls.sendall(b"QUIT\r\n")
    f.readline()
    tls.close()
    return answer


def _sieve_login_via(ms: Mailstores, name: str, user: str, password: str) -> bytes:
    """ManageSieve through server `name`'s LB port (PROXY header, STARTTLS, AUTHENTICATE PLAIN): the answer."""
    import base64

    address = ms.address(name)
    raw = socket.create_connection((address, 4190), timeout=10)
    raw.sendall(f"PROXY TCP4 127.0.0.99 {address} 40000 4190\r\n".encode())

    def until_ok(f: Any) -> bytes:
        while True:
            line: bytes = f.readline()
            if not line or line.startswith((b"OK", b"NO", b"BYE")):
                return line

    assert until_ok(raw.makefile("rb")).startswith(b"OK")
    raw.sendall(b"STARTTLS\r\n")
    assert until_ok(raw.makefile("rb")).startswith(b"OK")
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    tls = ctx.wrap_socket(raw)
    f = tls.makefile("rb")
    until_ok(f)  # the capabilities again, after TLS
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    tls.sendall(f'AUTHENTICATE "PLAIN" "{token}"\r\n'.encode())
    answer = until_ok(f)
    tls.sendall(b"LOGOUT\r\n")
    tls.close()
    return answer


@pytest.mark.daemons
@pytest.mark.parametrize(("service", "login_via"), [("pop3", _pop3_login_via), ("managesieve", _sieve_login_via)])
def test_pop3_and_managesieve_logins_on_another_mailstore_are_served_by_the_home(
        mailstores: Mailstores, service: str, login_via: Callable[..., bytes]) -> None:
    ms = mailstores
    home = PEERS[1].name
    user, login = _a_user_homed_on(ms, home)
    other = ms.other(home)
    before = _logged(ms, home, f"{service}-login: Info: Login: user=<{user}>")
    # WHEN the user logs in through the other server's LB port THEN the home serves the login
    assert ms.in_netns(login_via, ms, other, login, ms.passwords[login]).startswith((b"+OK", b"OK"))
    port = {"pop3": 1109, "managesieve": 220}[service]
    assert ms.wait_log(other, f"proxy({user},{ms.address(home)}:{port}): Started proxying")
    deadline = time.monotonic() + 10
    while _logged(ms, home, f"{service}-login: Info: Login: user=<{user}>") == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _logged(ms, home, f"{service}-login: Info: Login: user=<{user}>") == before + 1
