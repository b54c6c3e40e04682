"""The webmail layer (SOGo, nginx, MariaDB, memcached), checked by the real programs.

Versions checked here are Debian 12's: SOGo 5.8 with GNUstep base 1.28 (`plparse`/`plser` read
sogo.conf with the same NSDictionary property-list code sogod uses), nginx 1.22, MariaDB 10.11,
memcached 1.6, shellcheck 0.9, cloud-init 22.4. The CentOS 7 profile targets SOGo 5, nginx 1.20,
MariaDB 5.5 and memcached 1.4; every setting the templates use exists in both. The one
version-dependent step (securing MariaDB's root account before 10.4) is chosen by `versions.mariadb`.

Test-side overrides, never in the templates: where a check runs a rendered file on this machine, paths
that only exist on CentOS (certificates, pid and log files, the nginx user) are replaced in the test's
copy (`_nginx_for_this_machine`), and the end-to-end tests render the layer with the CentOS profile
relocated under a temporary root (`OsProfile.relocated`, as the local twin does).
"""

from __future__ import annotations

import configparser
import json
import plistlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mailstrata.contract import DRAFTS, JUNK, SENT, TRASH
from mailstrata.directory import DirectorySettings, LdapTls
from mailstrata.errors import ConfigError
from mailstrata.roles import Role
from mailstrata.terraform_eval import StandIns, evaluate
from mailstrata.userdata import profiles as profiles_mod
from mailstrata.userdata.context import Database, LayerContext, Secret
from mailstrata.userdata.daemons.ldap import quoted_secret
from mailstrata.userdata.profiles import OsProfile, load_profile
from mailstrata.userdata.render import LayerUserData, render_layer
from mailstrata.userdata.terraform_text import escape, references, substitute
from tests.support import netns
from tests.support.daemons import stop, wait_for, write_tree
from tests.support.requires import DEBIAN, requires, requires_netns, unavailable
from tests.support.synth import default_platform, resources
from tests.userdata import _sample

SAMPLE_VALUES = _sample.SAMPLE_VALUES
ROLE = Role.WEBMAIL
SOGO_CONF = "/etc/sogo/sogo.conf"
NGINX_CONF = "/etc/nginx/nginx.conf"
DB_CNF = "/etc/sogo/mailstrata-db.cnf"
MARIADB_CNF = "/etc/my.cnf.d/mailstrata-sogo.cnf"
MEMCACHED_SYSCONFIG = "/etc/sysconfig/memcached"
SOGO_SYSCONFIG = "/etc/sysconfig/sogo"
ROLE_SCRIPT = "/usr/local/sbin/mailstrata-setup-role"
SETUP_SCRIPT = "/usr/local/sbin/mailstrata-setup"
SOGO_REPO = "/etc/yum.repos.d/sogo.repo"
PUBLIC_HOST = "webmail.domain01.dom"
DB_REF = "${random_password.webmail_db.result}"
BIND_REF = "${var.ad_bind_password}"


# ---- helpers ---------------------------------------------------------------------------------------


def delivered(text: str) -> str:
    """`text` with each Terraform reference replaced by the value Terraform computes for it."""
    return substitute(text, {expr: _sample.resolve(expr) for expr in references(text)})


def sample_context(**webmail_changes: Any) -> LayerContext:
    ctx = _sample.context(ROLE)
    assert ctx.platform.webmail is not None
    return ctx.with_platform(webmail=replace(ctx.platform.webmail, **webmail_changes)) if webmail_changes else ctx


def render(ctx: LayerContext, os_profile: OsProfile | None = None) -> LayerUserData:
    return render_layer(ctx, os=os_profile) if os_profile is not None else render_layer(ctx)


def resolved_files(ud: LayerUserData, values: dict[str, str] | None = None) -> dict[str, str]:
    """A variant's files with the sample references replaced (Terraform's part), by path."""
    table = {**SAMPLE_VALUES, **(values or {})}
    missing = sorted({e for f in ud.files for e in references(f.content)} - set(table))
    if missing:  # expressions over the variables (sogo.conf's escaped bind password): Terraform computes them
        variables = {k.removeprefix("var."): v for k, v in table.items() if k.startswith("var.")}
        table |= evaluate({e: "${" + e + "}" for e in missing}, StandIns(variables=variables))
    return {f.path: substitute(f.content, table) for f in ud.files}


def sogo_plist(text: str, tmp_path: Path) -> dict[str, Any]:
    """sogo.conf as sogod reads it: GNUstep's parser, re-serialised as XML for Python to compare."""
    requires("plser")
    src = tmp_path / "sogo.conf"
    src.write_text(text)
    out = subprocess.run(
        ["plser", "-Format", "NSPropertyListXMLFormat_v1_0", str(src)], capture_output=True, check=True
    )
    assert out.stdout.startswith(b"<?xml"), out.stderr.decode()
    return plistlib.loads(out.stdout)


def shell_vars(path: Path, *names: str) -> dict[str, str]:
    """Variables of a sysconfig file as a shell (and systemd's EnvironmentFile) reads them."""
    script = f'set -a; . "{path}"; ' + " ".join(f'printf "%s\\0" "${{{n}}}";' for n in names)
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True).stdout.decode()
    return dict(zip(names, out.split("\0")[:-1], strict=True))


def machine_profile(root: Path, **versions: str) -> OsProfile:
    """The CentOS 7 profile moved under `root`, with this machine's users (what the twin's profile does)."""
    base = load_profile("centos7", ROLE).relocated(str(root))
    attrs = profiles_mod._Attrs
    return replace(
        base,
        versions=attrs("test.versions", {**base.versions, **versions}),
        users=attrs("test.users", {**base.users, "nginx": "root", "memcached": "nobody"}),
    )


def port_open(ns: netns.NetNs, port: int) -> bool:
    probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), 1).close()"
    return ns.run([sys.executable, "-c", probe], check=False, capture_output=True).returncode == 0


@pytest.fixture
def files() -> dict[str, str]:
    """A one-server webmail layer with its local MariaDB (the default platform's two servers share an
    external database; `test_default_platform_shares_one_database` covers that)."""
    return resolved_files(render(_sample.context(ROLE)))


def test_default_platform_shares_one_database(layer_files: Callable[[Role], dict[str, str]]) -> None:
    default = layer_files(ROLE)
    assert MARIADB_CNF not in default
    assert "mysql://sogo:Db-Pa55word@sogo-db.cloud0.hc.mycompany.dom:3306/sogo/sogo_user_profile" in default[SOGO_CONF]


@pytest.fixture(scope="module")
def default_render() -> LayerUserData:
    return render(_sample.context(ROLE))


# ---- what is written, and how -----------------------------------------------------------------------


def test_files_of_a_layer_with_a_local_database(files: dict[str, str]) -> None:
    assert sorted(files) == [
        "/etc/cron.d/mailstrata-sogo",
        MARIADB_CNF,
        "/etc/nginx/mta-sts.txt",
        NGINX_CONF,
        DB_CNF,
        SOGO_CONF,
        MEMCACHED_SYSCONFIG,
        SOGO_SYSCONFIG,
        "/etc/systemd/system/mailstrata-metadata-guard.service",
        "/etc/yum.repos.d/CentOS-Base.repo",
        "/etc/yum.repos.d/epel.repo",
        "/usr/local/sbin/mailstrata-metadata-guard",
        SETUP_SCRIPT,
        ROLE_SCRIPT,
    ]


def test_sogo_conf_is_readable_by_sogo_only(default_render: LayerUserData) -> None:
    f = default_render.file(SOGO_CONF)
    assert (f.owner, f.mode) == ("root:sogo", "0640")


def test_database_credentials_are_root_only(default_render: LayerUserData) -> None:
    f = default_render.file(DB_CNF)
    assert (f.owner, f.mode) == ("root:root", "0600")


def test_secret_files_are_written_root_only_until_handed_over(
    layer_cloud_config: Callable[[Role], dict],
) -> None:
    modes = {f["path"]: f["permissions"] for f in layer_cloud_config(ROLE)["write_files"]}
    assert (modes[SOGO_CONF], modes[DB_CNF]) == ("0600", "0600")


def test_setup_hands_sogo_conf_to_the_sogo_group(files: dict[str, str]) -> None:
    lines = files[SETUP_SCRIPT].splitlines()
    assert "chown root:sogo /etc/sogo/sogo.conf" in lines and "chmod 0640 /etc/sogo/sogo.conf" in lines


def test_passwords_are_terraform_references_in_the_synthesized_text(default_render: LayerUserData) -> None:
    text = escape(default_render.body_text())  # what goes into cdk.tf.json
    # the bind password as sogo.conf quotes it: Terraform escapes it (ldap.quoted_secret)
    assert (text.count(DB_REF), text.count(quoted_secret(BIND_REF)), text.count("$" + DB_REF)) == (5, 1, 0)


def test_no_literal_password_in_the_synthesized_text(default_render: LayerUserData) -> None:
    text = default_render.body_text()
    assert [v for v in (SAMPLE_VALUES["var.ad_bind_password"], SAMPLE_VALUES[DB_REF[2:-1]]) if v in text] == []


def test_cloud_config_passes_cloud_init_schema(tmp_path: Path) -> None:
    requires("cloud-init")
    doc = tmp_path / "user-data"
    doc.write_text(_sample.cloud_config_text(ROLE))
    out = subprocess.run(["cloud-init", "schema", "--config-file", str(doc)], capture_output=True, text=True)
    assert (out.returncode, out.stdout.strip()) == (0, f"Valid cloud-config: {doc}")


# ---- packages and the SOGo repository ----------------------------------------------------------------


def test_without_a_sogo_repository_no_sogo_package_is_requested(default_render: LayerUserData) -> None:
    assert [p for p in default_render.packages if p.startswith(("sogo", "sope"))] == []


def test_without_a_sogo_repository_setup_names_the_config_key(files: dict[str, str]) -> None:
    assert (
        'fail "package sogo is not installed: set webmail.sogo_repo_url in the platform config to a yum '
        'repository with SOGo 5 for this OS (sogo, sogo-tool, sogo-activesync, sope49-gdl1-mysql)"'
        in files[ROLE_SCRIPT]
    )


def test_with_a_sogo_repository_its_packages_are_installed() -> None:
    ud = render(sample_context(sogo_repo_url="https://repo.example.net/sogo/5/rhel/7/$basearch"))
    assert ud.packages[-5:] == ("sogo", "sogo-tool", "sogo-activesync", "sope49-gdl1-mysql", "mariadb-server")


def test_sogo_repository_file_is_checked_with_its_key() -> None:
    ud = render(
        sample_context(
            sogo_repo_url="https://repo.example.net/sogo/5/rhel/7/$basearch",
            sogo_repo_gpg_key="https://repo.example.net/sogo.asc",
        )
    )
    repo = configparser.ConfigParser(interpolation=None)  # yum's .repo files are INI files
    repo.read_string(ud.file(SOGO_REPO).content)
    assert dict(repo["sogo"]) == {
        "name": "SOGo (webmail.sogo_repo_url)",
        "baseurl": "https://repo.example.net/sogo/5/rhel/7/$basearch",
        "enabled": "1",
        "gpgcheck": "1",
        "gpgkey": "https://repo.example.net/sogo.asc",
    }


def test_sogo_repository_without_key_says_packages_are_unverified() -> None:
    ud = render(sample_context(sogo_repo_url="https://repo.example.net/sogo"))
    repo = configparser.ConfigParser(interpolation=None)
    repo.read_string(ud.file(SOGO_REPO).content)
    assert repo["sogo"]["gpgcheck"] == "0"


def test_profile_older_than_sogo_5_is_refused() -> None:
    old = replace(
        load_profile("centos7", ROLE),
        versions=profiles_mod._Attrs("t", {**load_profile("centos7", ROLE).versions, "sogo": "2.3"}),
    )
    with pytest.raises(
        ValueError, match=r"^centos7/webmail.versions.sogo: the templates need SOGo 5 or later, got 2.3$"
    ):
        render(_sample.context(ROLE), old)


def test_database_name_must_be_a_plain_identifier() -> None:
    ctx = _sample.context(ROLE)
    assert ctx.platform.webmail is not None
    bad = replace(ctx.platform.webmail, database=replace(ctx.platform.webmail.database, name="sogo-db"))
    with pytest.raises(
        ValueError, match=r"^webmail.database.name: must be letters, digits and '_' only, got 'sogo-db'$"
    ):
        render(ctx.with_platform(webmail=bad))


# ---- sogo.conf ---------------------------------------------------------------------------------------


@pytest.mark.daemons
def test_sogo_conf_parses_as_a_property_list(files: dict[str, str], tmp_path: Path) -> None:
    requires("plparse")
    conf = tmp_path / "sogo.conf"
    conf.write_text(files[SOGO_CONF])
    out = subprocess.run(["plparse", str(conf)], capture_output=True, text=True)
    assert (out.returncode, out.stderr.strip()) == (0, f"Parsing '{conf}' - a dictionary")


def test_sogo_conf_sets_each_key_once(files: dict[str, str]) -> None:
    # GNUstep keeps the last of two equal keys without a word; the top level is indented by two spaces.
    keys = re.findall(r"^  (\w+) = ", files[SOGO_CONF], re.M)
    assert sorted({k for k in keys if keys.count(k) > 1}) == []


@pytest.mark.daemons
def test_sogo_ldap_source_is_ad_with_indirect_bind(files: dict[str, str], tmp_path: Path) -> None:
    conf = sogo_plist(files[SOGO_CONF], tmp_path)
    assert conf["SOGoUserSources"] == [
        {
            "type": "ldap",
            "id": "directory",
            "displayName": "Directory",
            "hostname": "ldaps://dc1.domain01.dom:636",
            "baseDN": "dc=domain01,dc=dom",
            "bindDN": "cn=correoapp,ou=mailapps,dc=domain01,dc=dom",
            "bindPassword": SAMPLE_VALUES["var.ad_bind_password"],
            "bindFields": ["sAMAccountName", "mail"],  # the account name or the address
            "UIDFieldName": "sAMAccountName",
            "IDFieldName": "sAMAccountName",
            "CNFieldName": "cn",
            "MailFieldNames": ["mail"],
            "filter": "(mail='*@domain01.dom' OR mail='*@domain02.dom')",
            "canAuthenticate": "YES",
            "isAddressBook": "YES",
        }
    ]


def test_sogo_ldap_source_uses_starttls_when_configured() -> None:
    ctx = _sample.context(ROLE)
    d = replace(ctx.platform.directory, urls=("ldap://dc1.domain01.dom:389",), tls=LdapTls.STARTTLS)
    conf = render(ctx.with_platform(directory=d)).file(SOGO_CONF).content
    assert re.findall(r"^ +(hostname|encryption) = (.*);$", conf, re.M) == [
        ("hostname", '"ldap://dc1.domain01.dom:389"'),
        ("encryption", "STARTTLS"),
    ]


@pytest.mark.daemons
def test_sogo_reaches_imap_sieve_and_submission_over_tls(
    files: dict[str, str], context_vips: dict[str, str], tmp_path: Path
) -> None:
    conf = sogo_plist(files[SOGO_CONF], tmp_path)
    assert {k: conf[k] for k in ("SOGoIMAPServer", "SOGoSieveServer", "SOGoSMTPServer")} == {
        "SOGoIMAPServer": f"imaps://{context_vips['mailstore']}:993/?tlsVerifyMode=none",
        "SOGoSieveServer": f"sieve://{context_vips['mailstore']}:4190/?tls=YES&tlsVerifyMode=none",
        "SOGoSMTPServer": f"smtp://{context_vips['smtp_out']}:587/?tls=YES&tlsVerifyMode=none",
    }


@pytest.mark.daemons
def test_sogo_authenticates_submission_with_plain(files: dict[str, str], tmp_path: Path) -> None:
    conf = sogo_plist(files[SOGO_CONF], tmp_path)
    assert (conf["SOGoMailingMechanism"], conf["SOGoSMTPAuthenticationType"]) == ("smtp", "PLAIN")


@pytest.mark.daemons
def test_sogo_tables_are_in_mariadb(files: dict[str, str], tmp_path: Path) -> None:
    conf = sogo_plist(files[SOGO_CONF], tmp_path)
    base = f"mysql://sogo:{SAMPLE_VALUES['random_password.webmail_db.result']}@127.0.0.1:3306/sogo"
    assert {k: v for k, v in conf.items() if k.endswith("URL")} == {
        "SOGoProfileURL": f"{base}/sogo_user_profile",
        "OCSFolderInfoURL": f"{base}/sogo_folder_info",
        "OCSSessionsFolderURL": f"{base}/sogo_sessions_folder",
        "OCSEMailAlarmsFolderURL": f"{base}/sogo_alarms_folder",
    }


@pytest.mark.daemons
def test_sogo_folder_names_match_the_mailstore(files: dict[str, str], tmp_path: Path) -> None:
    conf = sogo_plist(files[SOGO_CONF], tmp_path)
    names = ("SOGoDraftsFolderName", "SOGoSentFolderName", "SOGoTrashFolderName", "SOGoJunkFolderName")
    assert [conf[k] for k in names] == ["Drafts", "Sent", "Trash", "Junk"]


@pytest.mark.daemons
def test_sogo_sieve_features_are_on(files: dict[str, str], tmp_path: Path) -> None:
    conf = sogo_plist(files[SOGO_CONF], tmp_path)
    keys = ("SOGoSieveScriptsEnabled", "SOGoForwardEnabled", "SOGoVacationEnabled")
    assert [conf[k] for k in keys] == ["YES", "YES", "YES"]


@pytest.mark.daemons
def test_sogo_process_settings(files: dict[str, str], tmp_path: Path) -> None:
    conf = sogo_plist(files[SOGO_CONF], tmp_path)
    keys = ("WOPort", "WOWorkersCount", "SxVMemLimit", "SOGoMemcachedHost", "SOGoMailDomain", "SOGoTimeZone")
    assert [conf[k] for k in keys] == ["127.0.0.1:20000", "20", "1024", "127.0.0.1:11211", "domain01.dom", "UTC"]


@pytest.mark.daemons
def test_sogo_upload_limit_follows_the_message_size_limit(files: dict[str, str], tmp_path: Path) -> None:
    conf = sogo_plist(files[SOGO_CONF], tmp_path)
    assert (conf["WOMaxUploadSize"], conf["SOGoMaximumMessageSizeLimit"]) == ("25600", "25600")


def test_sogo_sysconfig_prefork_equals_workers(files: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "sogo"
    path.write_text(files[SOGO_SYSCONFIG])
    assert shell_vars(path, "PREFORK", "USER", "LDAPTLS_CACERT", "LDAPTLS_REQCERT") == {
        "PREFORK": "20",
        "USER": "sogo",
        "LDAPTLS_CACERT": "/etc/pki/tls/certs/ca-bundle.crt",
        "LDAPTLS_REQCERT": "demand",
    }


# ---- ActiveSync: the bundle, and the hold of Ping and Sync requests ------------------------------------
# Phones "push" by holding a Ping or Sync request open until something changes (SOGo's Installation Guide,
# "Microsoft Enterprise ActiveSync Tuning"). SOGo answers a held request after its hold, plus at most one
# internal poll; nginx, the webmail load balancer and sogod's watchdog must each wait longer than that.

EAS_KEYS = ("SOGoMaximumPingInterval", "SOGoMaximumSyncInterval", "SOGoInternalSyncInterval",
            "SOGoMaximumSyncWindowSize", "WOWatchDogRequestTimeout")
EAS_LOCATION = "location ^~ /Microsoft-Server-ActiveSync {"


def nginx_activesync_timeouts(conf: str) -> dict[str, int]:
    """The proxy_*_timeout values (seconds) of nginx.conf's ActiveSync location."""
    block = conf.split(EAS_LOCATION, 1)[1].split("}", 1)[0]
    return {k: int(v) for k, v in re.findall(r"^\s*(proxy_\w+_timeout) (\d+)s;", block, re.M)}


@pytest.mark.daemons
def test_sogo_holds_activesync_requests_for_push(files: dict[str, str], tmp_path: Path) -> None:
    # SOGo's defaults (10 s Ping, 30 s Sync, 10-minute watchdog) amount to no push; the guide's values for 59 min
    conf = sogo_plist(files[SOGO_CONF], tmp_path)
    assert {k: conf.get(k) for k in EAS_KEYS} == {
        "SOGoMaximumPingInterval": "3540", "SOGoMaximumSyncInterval": "3540", "SOGoInternalSyncInterval": "30",
        "SOGoMaximumSyncWindowSize": "100", "WOWatchDogRequestTimeout": "60",
    }  # fmt: skip


@pytest.mark.daemons
def test_every_hop_waits_longer_than_sogo_holds_an_activesync_request(
    layer_files: Callable[[Role], dict[str, str]], tmp_path: Path
) -> None:
    # The default platform as synthesized: sogo.conf and nginx.conf from the user-data, the listener's data
    # timeouts from cdk.tf.json (what Octavia's amphora applies to the HTTPS connection).
    files = layer_files(ROLE)
    conf = sogo_plist(files[SOGO_CONF], tmp_path)
    longest_answer = max(int(conf["SOGoMaximumPingInterval"]), int(conf["SOGoMaximumSyncInterval"])) + int(
        conf["SOGoInternalSyncInterval"]
    )
    nginx = nginx_activesync_timeouts(files[NGINX_CONF])
    [https] = [lst for lst in resources(default_platform(), "openstack_lb_listener_v2").values()
               if lst["description"].startswith("mailstrata/webmail/443:")]  # fmt: skip
    lb = min(https["timeout_client_data"], https["timeout_member_data"]) // 1000
    watchdog = int(conf["WOWatchDogRequestTimeout"]) * 60
    assert (longest_answer < nginx["proxy_read_timeout"], nginx["proxy_read_timeout"] <= lb, lb <= watchdog,
            nginx["proxy_send_timeout"] == nginx["proxy_read_timeout"]) == (True, True, True, True), (
        longest_answer, nginx, lb, watchdog)  # fmt: skip


def test_both_profiles_install_sogos_activesync_bundle() -> None:
    # Debian 12 has sogo-activesync in its archive, CentOS 7 from the SOGo repository (webmail.sogo_repo_url).
    debian = render(_sample.context(ROLE), load_profile("debian12", ROLE))
    centos = render(sample_context(sogo_repo_url="https://repo.example.net/sogo/5/rhel/7/$basearch"))
    assert ("sogo-activesync" in debian.packages, "sogo-activesync" in centos.packages) == (True, True)


@pytest.mark.parametrize("os_name", ["debian12", "centos7"])
def test_role_script_refuses_a_server_without_the_activesync_bundle(os_name: str) -> None:
    profile = load_profile(os_name, ROLE)
    script = render(_sample.context(ROLE), profile).file(ROLE_SCRIPT).content
    assert f"if ! {profile.commands.is_installed} sogo-activesync >/dev/null 2>&1; then" in script


@pytest.fixture(scope="module")
def with_ad_ca() -> LayerUserData:
    ctx = _sample.context(ROLE)
    return render(ctx.with_platform(directory=replace(ctx.platform.directory, ca_cert_pem=SAMPLE_CA)))


SAMPLE_CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"


def test_a_directory_ca_is_written(with_ad_ca: LayerUserData) -> None:
    f = with_ad_ca.file("/etc/pki/mailstrata/ad-ca.pem")
    assert (f.content.endswith("\n" + SAMPLE_CA + "\n"), f.mode) == (True, "0644")


def test_sogo_verifies_the_directory_with_its_ca(with_ad_ca: LayerUserData) -> None:
    assert "\nLDAPTLS_CACERT=/etc/pki/mailstrata/ad-ca.pem\n" in with_ad_ca.file(SOGO_SYSCONFIG).content


# ---- the external database ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def external() -> LayerUserData:
    ctx = _sample.context(ROLE)
    assert ctx.platform.webmail is not None
    db = Database(external_host="galera.db.internal", password=Secret(ref=DB_REF))
    return render(ctx.with_platform(webmail=replace(ctx.platform.webmail, database=db)))


def test_external_database_installs_no_server(external: LayerUserData) -> None:
    assert ("mariadb-server" in external.packages, MARIADB_CNF in [f.path for f in external.files]) == (False, False)


def test_external_database_is_where_sogo_connects(external: LayerUserData) -> None:
    urls = re.findall(r'^  \w+URL = "mysql://sogo:[^@]+@([^/]+)/sogo/\w+";$', external.file(SOGO_CONF).content, re.M)
    assert urls == ["galera.db.internal:3306"] * 4


def test_external_database_is_not_created_by_setup(external: LayerUserData) -> None:
    script = external.file(ROLE_SCRIPT).content
    assert ("systemctl enable --now mariadb" in script, "GRANT" in script) == (False, False)


# ---- shell scripts -----------------------------------------------------------------------------------


@pytest.mark.daemons
@pytest.mark.parametrize("variant", ["default", "external-db", "sogo-repo", "mariadb-10.11"])
def test_role_script_passes_shellcheck(variant: str, files: dict[str, str], tmp_path: Path) -> None:
    requires("shellcheck")
    if variant == "default":
        text = files[ROLE_SCRIPT]
    elif variant == "external-db":
        ctx = sample_context(database=Database(external_host="db.internal", password=Secret(ref=DB_REF)))
        text = resolved_files(render(ctx))[ROLE_SCRIPT]
    elif variant == "sogo-repo":
        text = resolved_files(render(sample_context(sogo_repo_url="https://repo.example.net/sogo")))[ROLE_SCRIPT]
    else:
        ud = render(_sample.context(ROLE), machine_profile(tmp_path / "root", mariadb="10.11"))
        text = next(c for p, c in resolved_files(ud).items() if p.endswith(ROLE_SCRIPT))
    script = tmp_path / "role.sh"
    script.write_text(text)
    out = subprocess.run(["shellcheck", "--severity=style", str(script)], capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (0, "")


@pytest.mark.daemons
def test_setup_script_passes_shellcheck(files: dict[str, str], tmp_path: Path) -> None:
    requires("shellcheck")
    script = tmp_path / "setup.sh"
    script.write_text(files[SETUP_SCRIPT])
    out = subprocess.run(["shellcheck", "--severity=style", str(script)], capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (0, "")


# ---- MariaDB and memcached ---------------------------------------------------------------------------


@pytest.mark.daemons
def test_mariadb_options_are_accepted_by_mariadbd(files: dict[str, str], tmp_path: Path) -> None:
    requires("mariadbd")
    cnf = tmp_path / "sogo.cnf"
    cnf.write_text(files[MARIADB_CNF])
    out = subprocess.run(["mariadbd", f"--defaults-file={cnf}", "--help", "--verbose"], capture_output=True, text=True)
    # The only line allowed on stderr is about this machine's open-files limit, not the config.
    complaints = [ln for ln in out.stderr.splitlines() if "max_open_files" not in ln]
    values = dict(ln.split(None, 1) for ln in out.stdout.splitlines() if re.match(r"^[a-z][a-z0-9-]+ +\S", ln))
    wanted = ("bind-address", "port", "skip-name-resolve", "character-set-server", "collation-server",
              "max-allowed-packet", "innodb-file-per-table")  # fmt: skip
    assert (out.returncode, complaints, {k: values[k].strip() for k in wanted}) == (
        0,
        [],
        {
            "bind-address": "127.0.0.1",
            "port": "3306",
            "skip-name-resolve": "TRUE",
            "character-set-server": "utf8",
            "collation-server": "utf8_general_ci",
            "max-allowed-packet": "67108864",
            "innodb-file-per-table": "TRUE",
        },
    )


@pytest.mark.daemons
def test_database_credentials_file_is_read_by_the_mysql_client(files: dict[str, str], tmp_path: Path) -> None:
    requires("my_print_defaults")
    cnf = tmp_path / "db.cnf"
    cnf.write_text(files[DB_CNF])
    out = subprocess.run(
        ["my_print_defaults", f"--defaults-file={cnf}", "client", "mysql"], capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines() == [
        "--user=sogo",
        f"--password={SAMPLE_VALUES['random_password.webmail_db.result']}",
        "--host=127.0.0.1",
        "--port=3306",
        "--database=sogo",
    ]


@pytest.mark.daemons
def test_memcached_listens_on_loopback_tcp_only(files: dict[str, str], tmp_path: Path) -> None:
    requires("memcached", "ss")
    requires_netns()
    sysconfig = tmp_path / "memcached"
    sysconfig.write_text(files[MEMCACHED_SYSCONFIG])
    v = shell_vars(sysconfig, "PORT", "USER", "MAXCONN", "CACHESIZE", "OPTIONS")
    assert v["USER"] == "memcached"
    # the unit's command line; the user is this machine's (Debian has no `memcached` user)
    argv = ["memcached", "-u", "nobody", "-p", v["PORT"], "-m", v["CACHESIZE"], "-c", v["MAXCONN"],
            *shlex.split(v["OPTIONS"])]  # fmt: skip
    with netns.NetNs.create("ms-mc") as ns:
        proc = ns.popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: port_open(ns, 11211), "memcached", 20)
            listening = ns.run(["ss", "-H", "-l", "-n", "-t", "-u"], capture_output=True, text=True).stdout
        finally:
            stop(proc)
    assert sorted((ln.split()[0], ln.split()[4]) for ln in listening.splitlines()) == [("tcp", "127.0.0.1:11211")]


# ---- nginx -------------------------------------------------------------------------------------------


def _nginx_for_this_machine(conf: str, root: Path) -> str:
    """The rendered nginx.conf with CentOS-only paths moved under `root` (test-side only)."""
    for src, dst in (
        ("/etc/pki/mailstrata/", f"{root}/tls/"),
        ("/run/nginx.pid", f"{root}/nginx.pid"),
        ("/var/log/nginx/", f"{root}/log/"),
        ("/usr/lib64/GNUstep/SOGo/WebServerResources", f"{root}/WebServerResources"),
    ):
        assert src in conf, src
        conf = conf.replace(src, dst)
    # the worker user: CentOS's `nginx` does not exist here, and workers must read files under root
    return conf.replace("\nuser nginx;\n", "\nuser root;\n")


def _self_signed(tls: Path) -> None:
    tls.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "2", "-subj", f"/CN={PUBLIC_HOST}", "-keyout", str(tls / "server.key"),
         "-out", str(tls / "server.crt")],
        check=True, capture_output=True,
    )  # fmt: skip


@pytest.mark.daemons
def test_nginx_accepts_the_config_without_warnings(files: dict[str, str], tmp_path: Path) -> None:
    requires("nginx", "openssl")
    (tmp_path / "log").mkdir()
    _self_signed(tmp_path / "tls")
    conf = tmp_path / "nginx.conf"
    conf.write_text(_nginx_for_this_machine(files[NGINX_CONF], tmp_path))
    out = subprocess.run(["nginx", "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True)
    assert (out.returncode, out.stderr.splitlines()) == (
        0,
        [f"nginx: the configuration file {conf} syntax is ok", f"nginx: configuration file {conf} test is successful"],
    )


# A stand-in for sogod: answers every request with the path and headers it received.
ECHO_BACKEND = """
import http.server, json, sys
class Echo(http.server.BaseHTTPRequestHandler):
    def reply(self):
        body = json.dumps({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = reply
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", 20000), Echo).serve_forever()
"""


@pytest.fixture(scope="module")
def nginx_site(
    layer_files: Callable[[Role], dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[netns.NetNs]:
    """The rendered nginx in a private namespace, in front of an echoing stand-in for sogod."""
    requires("nginx", "openssl", "curl")
    requires_netns()
    root = tmp_path_factory.mktemp("nginx")
    (root / "log").mkdir()
    (root / "WebServerResources").mkdir()
    (root / "WebServerResources" / "probe.txt").write_text("static\n")
    _self_signed(root / "tls")
    conf = root / "nginx.conf"
    conf.write_text(_nginx_for_this_machine(layer_files(ROLE)[NGINX_CONF], root))
    ns = netns.NetNs.create("ms-web")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(ns.popen([sys.executable, "-c", ECHO_BACKEND]))
        procs.append(ns.popen(["nginx", "-c", str(conf), "-p", str(root), "-g", "daemon off;"]))
        wait_for(lambda: port_open(ns, 20000) and port_open(ns, 443) and port_open(ns, 80), "nginx and backend", 20)
        yield ns
    finally:
        for p in procs:
            stop(p)
        ns.delete()


def curl(ns: netns.NetNs, url: str, *args: str) -> str:
    # nginx requires the PROXY line on 80 and 443 (the webmail pools send it). curl's names this connection's
    # own addresses (127.0.0.1), a source nginx does not trust, so the client stays 127.0.0.1.
    out = ns.run(
        ["curl", "-sk", "--haproxy-protocol", "--max-time", "5", "-H", f"Host: {PUBLIC_HOST}", *args, url],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return out.stdout


def status(ns: netns.NetNs, url: str, *args: str) -> str:
    return curl(ns, url, "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", *args)


def backend_saw(ns: netns.NetNs, url: str, *args: str) -> dict[str, Any]:
    return json.loads(curl(ns, url, *args))


# A client that writes a PROXY v1 line of its own choosing before TLS (or plain HTTP), from a chosen source
# address, as an amphora (or an impostor) would: {"status", "body"}, or {"error"} when TLS or the
# connection fails.
PROXY_CLIENT = r"""
import json, socket, ssl, sys
a = json.loads(sys.argv[1])
s = socket.socket()
s.settimeout(5)
if a["source"]:
    s.bind((a["source"], 0))
s.connect((a["host"], a["port"]))
try:
    if a["proxy"]:
        s.sendall(a["proxy"].encode() + b"\r\n")
    if a["tls"]:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, a["tls"])
        s = ctx.wrap_socket(s, server_hostname=a["sni"])
    s.sendall(f"GET {a['path']} HTTP/1.0\r\nHost: {a['sni']}\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
except OSError as e:  # ssl.SSLError too
    print(json.dumps({"error": type(e).__name__}))
    sys.exit(0)
head, _, body = data.partition(b"\r\n\r\n")
if not head:
    print(json.dumps({"error": "closed without an answer"}))
else:
    print(json.dumps({"status": head.split(b"\r\n")[0].decode(), "body": body.decode(errors="replace")}))
"""


def proxy_client(ns: netns.NetNs, *, host: str, port: int, proxy: str | None, tls: str | None = "TLSv1_2",
                 path: str = "/SOGo/so/", source: str | None = None) -> dict[str, Any]:
    arg = {"host": host, "port": port, "proxy": proxy, "tls": tls, "path": path, "source": source, "sni": PUBLIC_HOST}
    out = ns.run([sys.executable, "-c", PROXY_CLIENT, json.dumps(arg)], capture_output=True, text=True, timeout=20)
    return json.loads(out.stdout)


@pytest.mark.daemons
def test_port_80_redirects_to_https(nginx_site: netns.NetNs) -> None:
    assert status(nginx_site, "http://127.0.0.1/SOGo/so/?x=1") == f"301 https://{PUBLIC_HOST}/SOGo/so/?x=1"


@pytest.mark.daemons
def test_root_redirects_to_sogo(nginx_site: netns.NetNs) -> None:
    assert status(nginx_site, "https://127.0.0.1/") == f"301 https://{PUBLIC_HOST}/SOGo/"


@pytest.mark.daemons
def test_sogo_gets_the_public_url_headers(nginx_site: netns.NetNs) -> None:
    seen = backend_saw(nginx_site, "https://127.0.0.1/SOGo/so/")
    h = seen["headers"]
    assert (seen["path"], h["x-webobjects-server-url"], h["x-webobjects-server-name"],
            h["x-webobjects-server-port"], h["x-webobjects-server-protocol"], h["x-webobjects-remote-host"]) == (
        "/SOGo/so/", f"https://{PUBLIC_HOST}", PUBLIC_HOST, "443", "HTTP/1.0", "127.0.0.1",
    )  # fmt: skip


@pytest.mark.daemons
def test_client_cannot_claim_a_remote_user(nginx_site: netns.NetNs) -> None:
    seen = backend_saw(nginx_site, "https://127.0.0.1/SOGo/so/", "-H", "x-webobjects-remote-user: admin")
    assert "x-webobjects-remote-user" not in seen["headers"]


@pytest.mark.daemons
def test_client_cannot_forge_its_address(nginx_site: netns.NetNs) -> None:
    seen = backend_saw(nginx_site, "https://127.0.0.1/SOGo/so/", "-H", "X-Forwarded-For: 192.0.2.7")
    assert (seen["headers"]["x-forwarded-for"], seen["headers"]["x-real-ip"]) == ("127.0.0.1", "127.0.0.1")


@pytest.mark.daemons
def test_activesync_goes_to_sogo(nginx_site: netns.NetNs) -> None:
    seen = backend_saw(nginx_site, "https://127.0.0.1/Microsoft-Server-ActiveSync?Cmd=Ping", "-X", "POST")
    assert seen["path"] == "/SOGo/Microsoft-Server-ActiveSync?Cmd=Ping"


@pytest.mark.daemons
def test_static_resources_come_from_disk(nginx_site: netns.NetNs) -> None:
    assert curl(nginx_site, "https://127.0.0.1/SOGo.woa/WebServerResources/probe.txt") == "static\n"


@pytest.mark.daemons
@pytest.mark.parametrize("url", ["http://127.0.0.1/healthz", "https://127.0.0.1/healthz"])
def test_health_endpoint_is_answered_by_sogo(nginx_site: netns.NetNs, url: str) -> None:
    assert backend_saw(nginx_site, url)["path"] == "/SOGo/"


@pytest.mark.daemons
def test_https_sends_hsts(nginx_site: netns.NetNs) -> None:
    headers = curl(nginx_site, "https://127.0.0.1/SOGo/so/", "-D", "-", "-o", "/dev/null").lower().splitlines()
    assert "strict-transport-security: max-age=31536000" in headers


@pytest.mark.daemons
@pytest.mark.parametrize(
    ("flag", "accepted"), [("-tls1", False), ("-tls1_1", False), ("-tls1_2", True), ("-tls1_3", True)]
)
def test_tls_protocol_floor(nginx_site: netns.NetNs, flag: str, accepted: bool) -> None:
    # SECLEVEL=0 lets this client offer the old protocols, so only the server's setting decides. The PROXY
    # line goes first (openssl s_client cannot send one), then exactly the one TLS version of `flag`.
    version = {"-tls1": "TLSv1", "-tls1_1": "TLSv1_1", "-tls1_2": "TLSv1_2", "-tls1_3": "TLSv1_3"}[flag]
    out = proxy_client(nginx_site, host="127.0.0.1", port=443, proxy="PROXY TCP4 127.0.0.1 127.0.0.1 40000 443",
                       tls=version, path="/")
    assert ("error" not in out) is accepted


def test_proxy_protocol_pool_gives_nginx_the_client_address() -> None:
    ctx = replace(_sample.context(ROLE), proxy_ports=frozenset({443}))
    conf = render(ctx).file(NGINX_CONF).content
    lines = [ln.strip() for ln in conf.splitlines()]
    assert [ln for ln in lines if ln.startswith(("listen", "set_real_ip_from", "real_ip_header"))] == [
        "set_real_ip_from 10.10.4.0/24;",
        "real_ip_header proxy_protocol;",
        "listen 80 default_server;",
        "listen 443 ssl http2 default_server proxy_protocol;",
        "listen 443 ssl http2 proxy_protocol;",  # MTA-STS
    ]


# ---- end to end: the role script's database, and a SOGo login through nginx --------------------------


@pytest.fixture(scope="module")
def context_vips() -> dict[str, str]:
    ctx = _sample.context(ROLE)
    return {"mailstore": delivered(ctx.platform.vips.mailstore), "smtp_out": delivered(ctx.platform.vips.smtp_out)}


def _stubs(root: Path) -> Path:
    """`rpm` and `systemctl` that succeed: everything is installed, services are started by the test."""
    bin_dir = root / "stub-bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("rpm", "systemctl"):
        (bin_dir / name).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _start_mariadb(ns: netns.NetNs, root: Path, cnf: Path) -> tuple[subprocess.Popen[bytes], Path]:
    data, sock = root / "mysql-data", root / "mysqld.sock"
    subprocess.run(
        ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
         "--auth-root-authentication-method=socket", "--skip-test-db"],
        check=True, capture_output=True,
    )  # fmt: skip
    proc = ns.popen(
        ["mariadbd", f"--defaults-file={cnf}", f"--datadir={data}", f"--socket={sock}",
         f"--pid-file={root}/mysqld.pid", f"--log-error={root}/mysqld.err", "--user=root"],
    )  # fmt: skip
    wait_for(lambda: sock.exists() and port_open(ns, 3306), "mariadbd", timeout=30)
    return proc, sock


@pytest.mark.daemons
def test_role_script_creates_the_database_idempotently(tmp_path: Path) -> None:
    requires("mariadbd", "mariadb-install-db", "mysql", "mysqladmin")
    requires_netns()
    root = tmp_path / "root"
    ud = render(_sample.context(ROLE), machine_profile(root, mariadb="10.11"))
    tree = resolved_files(ud)
    write_tree(tree, Path("/"))
    script = next(p for p in tree if p.endswith(ROLE_SCRIPT))
    cnf = next(Path(p) for p in tree if p.endswith(MARIADB_CNF))
    db_cnf = next(p for p in tree if p.endswith(DB_CNF))
    with netns.NetNs.create("ms-db") as ns:
        proc, sock = _start_mariadb(ns, tmp_path, cnf)
        try:
            env = ["env", f"PATH={_stubs(tmp_path)}:/usr/sbin:/usr/bin:/sbin:/bin", f"MYSQL_UNIX_PORT={sock}"]
            runs = [ns.run([*env, "bash", script], capture_output=True, text=True, check=False) for _ in range(2)]
            grants = ns.run(
                ["mysql", f"--defaults-extra-file={db_cnf}", "-N", "-e", "SHOW GRANTS"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
        finally:
            stop(proc)
    assert ([r.returncode for r in runs], [r.stderr for r in runs], grants.stdout.splitlines()[1:]) == (
        [0, 0],
        ["", ""],
        ["GRANT ALL PRIVILEGES ON `sogo`.* TO `sogo`@`127.0.0.1`"],
    )


# The stretch: the whole layer on this machine. Samba AD, MariaDB (set up by the role script),
# memcached, sogod and nginx run in one private namespace from the rendered files; the layer is rendered
# with the CentOS profile relocated under a temporary root and the sample directory replaced by the test
# DC (the context's directory settings, not the templates). sogod gets the rendered sogo.conf on its
# command line (GNUstep's argument domain, which wins over Debian's own /etc/sogo/sogo.conf) and the
# rendered /etc/sysconfig/sogo in its environment; 2 workers instead of the configured 20.


def _openstep(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "(" + ", ".join(_openstep(v) for v in value) + ")"
    return "{" + " ".join(f"{k} = {_openstep(v)};" for k, v in value.items()) + "}"


def _sogod_argv(conf: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for key, value in {**conf, "WOWorkersCount": "2"}.items():
        args += [f"-{key}", value if isinstance(value, str) else _openstep(value)]
    return ["/usr/sbin/sogod", "-WONoDetach", "YES", "-WOLogFile", "-", "-WOPidFile", "/run/sogo/sogo.pid", *args]


MAILSTORE_STANDIN = "127.0.0.12"  # the mailstore VIP as this stack renders it: a stand-in Dovecot answers there

# The mailstore VIP's IMAPS for SOGo (its ActiveSync lists the user's folders there): only a stand-in, since this
# stack tests the webmail layer. Any password is taken (SOGo has checked it against AD already); the mailstore's
# own Dovecot, with AD behind it, is tests/userdata/roles/test_mailstore.py's and the twin's. The special-use
# folders are contract.DRAFTS, SENT, TRASH and JUNK, as the mailstore creates them.
IMAP_STANDIN = """
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = {address}
ssl = required
ssl_cert = <{tls}/server.crt
ssl_key = <{tls}/server.key
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox {drafts} {{
    auto = subscribe
    special_use = \\Drafts
  }}
  mailbox {sent} {{
    auto = subscribe
    special_use = \\Sent
  }}
  mailbox {trash} {{
    auto = subscribe
    special_use = \\Trash
  }}
  mailbox {junk} {{
    auto = subscribe
    special_use = \\Junk
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
}}
"""


def _start_imap_standin(ns: netns.NetNs, root: Path, tls: Path) -> subprocess.Popen[bytes]:
    root.mkdir(parents=True)
    (root / "mail").mkdir()
    shutil.chown(root / "mail", "nobody", "nogroup")
    conf = root / "dovecot.conf"
    conf.write_text(IMAP_STANDIN.format(root=root, address=MAILSTORE_STANDIN, tls=tls, drafts=DRAFTS, sent=SENT,
                                        trash=TRASH, junk=JUNK))
    return ns.popen(["dovecot", "-F", "-c", str(conf)])


@pytest.fixture(scope="module", params=[LdapTls.LDAPS, LdapTls.STARTTLS], ids=["ldaps", "starttls"])
def webmail_stack(request: pytest.FixtureRequest) -> Iterator[tuple[netns.NetNs, Any, Path]]:
    """(namespace, SambaAD, the relocated root) with the layer's daemons running."""
    requires("samba", "samba-tool", "sogod", "plser", "mariadbd", "mariadb-install-db", "memcached", "nginx",
            "curl", "openssl", "setpriv", "unshare", "dovecot")  # fmt: skip
    requires_netns()
    from tests.support.samba_ad import BIND_LOGIN, TRICKY_PASSWORD, USERS_DN, SambaAD

    tls: LdapTls = request.param
    # not under pytest's 0700 temporary root: sogod runs as `sogo` and reads the CA file in here
    base = Path(tempfile.mkdtemp(prefix=f"mailstrata-webmail-{tls.value}-"))
    base.chmod(0o755)
    root = base / "root"
    ns = netns.NetNs.create("ms-sogo")
    procs: list[subprocess.Popen[bytes]] = []
    ad = SambaAD(base / "ad", netns=ns.name)
    try:
        ad.start()
        # a bind password with every character some file format treats as syntax: sogo.conf must carry it
        ad.set_password(BIND_LOGIN, TRICKY_PASSWORD)
        directory = DirectorySettings(
            urls=(ad.ldaps_url if tls is LdapTls.LDAPS else ad.ldap_url,),
            tls=tls,
            base_dn=USERS_DN,  # the DC's clean container (see samba_ad.py)
            bind_dn=ad.bind_dn,
            bind_password=Secret(ref=BIND_REF),
            domains=ad.domains,
            ca_cert_pem=ad.ca_cert_pem,
        )
        profile = machine_profile(root, mariadb="10.11")
        sample = _sample.context(ROLE)
        vips = replace(sample.platform.vips, mailstore=MAILSTORE_STANDIN)
        ud = render(sample.with_platform(directory=directory, vips=vips), profile)
        tree = resolved_files(ud, {BIND_REF[2:-1]: ad.bind_password})
        write_tree(tree, Path("/"))

        def path(suffix: str) -> Path:
            return Path(next(p for p in tree if p.endswith(suffix)))

        # what the packages would have put in place
        (root / "etc/nginx").mkdir(parents=True, exist_ok=True)
        shutil.copy("/etc/nginx/mime.types", profile.paths.nginx_mime_types)
        resources = Path(profile.paths.sogo_web_resources)
        resources.parent.mkdir(parents=True, exist_ok=True)
        resources.symlink_to("/usr/lib/GNUstep/SOGo/WebServerResources")
        Path(profile.paths.nginx_log_dir).mkdir(parents=True, exist_ok=True)
        Path(profile.paths.nginx_pid).parent.mkdir(parents=True, exist_ok=True)
        _self_signed(Path(profile.paths.tls_dir))
        procs.append(_start_imap_standin(ns, base / "imap", Path(profile.paths.tls_dir)))

        mariadb, sock = _start_mariadb(ns, base, path(MARIADB_CNF))
        procs.append(mariadb)
        env = ["env", f"PATH={_stubs(base)}:/usr/sbin:/usr/bin:/sbin:/bin", f"MYSQL_UNIX_PORT={sock}"]
        ns.run([*env, "bash", str(path(ROLE_SCRIPT))], check=True, capture_output=True)

        mc = shell_vars(path(MEMCACHED_SYSCONFIG), "PORT", "MAXCONN", "CACHESIZE", "OPTIONS")
        procs.append(ns.popen(["memcached", "-u", "nobody", "-p", mc["PORT"], "-m", mc["CACHESIZE"],
                               "-c", mc["MAXCONN"], *shlex.split(mc["OPTIONS"])]))  # fmt: skip

        sysconfig = shell_vars(path(SOGO_SYSCONFIG), "LDAPTLS_CACERT", "LDAPTLS_REQCERT")
        sogod = _sogod_argv(sogo_plist(path(SOGO_CONF).read_text(), base))
        # sogo's home is /run/sogo (systemd-tmpfiles makes it on a real server): a private /run here
        start = (
            "mount -t tmpfs -o mode=0755 tmpfs /run && install -d -o sogo -g sogo /run/sogo && exec env "
            + " ".join(f"{k}={shlex.quote(v)}" for k, v in sysconfig.items())
            + " setpriv --reuid=sogo --regid=sogo --init-groups "
            + shlex.join(sogod)
        )
        with (base / "sogo.log").open("wb") as log:
            procs.append(ns.popen(["unshare", "-m", "--propagation", "private", "sh", "-c", start],
                                  stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
        procs.append(ns.popen(["nginx", "-c", str(path(NGINX_CONF)), "-g", "daemon off;"]))
        wait_for(lambda: port_open(ns, 11211) and port_open(ns, 20000) and port_open(ns, 443)
                 and open_at(ns, MAILSTORE_STANDIN, 993), "the stack", 30)  # fmt: skip
        yield ns, ad, root
    finally:
        for p in reversed(procs):
            p.kill()  # sogod's watchdog takes its time on SIGTERM; nothing here needs a clean stop
            p.wait(timeout=10)
        ad.stop()
        ns.delete()
        shutil.rmtree(base, ignore_errors=True)


def login(ns: netns.NetNs, user: str, password: str) -> tuple[str, str]:
    body = json.dumps({"userName": user, "password": password})
    out = curl(ns, "https://127.0.0.1/SOGo/connect", "-H", "Content-Type: application/json", "-d", body,
               "-w", "\n%{http_code}")  # fmt: skip
    text, _, code = out.rpartition("\n")
    return code, text


@pytest.mark.daemons
def test_sogo_login_through_nginx(webmail_stack: tuple[netns.NetNs, Any, Path]) -> None:
    ns, ad, _ = webmail_stack
    code, text = login(ns, "usuario01", ad.users["usuario01"].password)
    assert (code, json.loads(text)["cn"]) == ("200", "usuario01")


@pytest.mark.daemons
def test_sogo_login_of_the_second_domain(webmail_stack: tuple[netns.NetNs, Any, Path]) -> None:
    ns, ad, _ = webmail_stack
    code, text = login(ns, "usuario05", ad.users["usuario05"].password)
    assert (code, json.loads(text)["cn"]) == ("200", "usuario05")


@pytest.mark.daemons
def test_sogo_login_with_the_address(webmail_stack: tuple[netns.NetNs, Any, Path]) -> None:
    # Issue 9: the address is a login everywhere (bindFields: the account name or the mail attribute).
    ns, ad, _ = webmail_stack
    code, text = login(ns, "usuario05@domain02.dom", ad.users["usuario05"].password)
    assert (code, json.loads(text)["cn"]) == ("200", "usuario05")


@pytest.mark.daemons
def test_sogo_login_with_a_wrong_password_is_refused(webmail_stack: tuple[netns.NetNs, Any, Path]) -> None:
    ns, _, _ = webmail_stack
    assert login(ns, "usuario01", "not-the-password")[0] == "403"


@pytest.mark.daemons
def test_sogo_created_its_tables_in_mariadb(webmail_stack: tuple[netns.NetNs, Any, Path]) -> None:
    ns, _, root = webmail_stack
    out = ns.run(["mysql", f"--defaults-extra-file={root}{DB_CNF}", "-N", "-e", "SHOW TABLES"],
                 capture_output=True, text=True)  # fmt: skip
    assert sorted(out.stdout.split()) == ["sogo_folder_info", "sogo_sessions_folder", "sogo_user_profile"]


@pytest.mark.daemons
@pytest.mark.parametrize("url", ["http://127.0.0.1/healthz", "https://127.0.0.1/healthz"])
def test_health_endpoint_reports_a_running_sogo(webmail_stack: tuple[netns.NetNs, Any, Path], url: str) -> None:
    ns, _, _ = webmail_stack
    assert status(ns, url) == "200 "


ACTIVESYNC_BUNDLE = Path("/usr/lib/GNUstep/SOGo/ActiveSync.SOGo")  # what Debian's sogo-activesync installs


def requires_activesync() -> None:
    if not ACTIVESYNC_BUNDLE.is_dir():
        unavailable(f"not installed: sogo-activesync ({ACTIVESYNC_BUNDLE})", why="for SOGo's ActiveSync",
                    install=DEBIAN)


def activesync_options(ns: netns.NetNs, *auth: str) -> tuple[str, dict[str, str]]:
    """(status, headers) of OPTIONS /Microsoft-Server-ActiveSync through nginx, as a phone asks before anything."""
    out = curl(ns, "https://127.0.0.1/Microsoft-Server-ActiveSync", "-X", "OPTIONS", *auth, "-D", "-",
               "-o", "/dev/null")  # fmt: skip
    status, *lines = out.splitlines()
    headers = dict(ln.split(": ", 1) for ln in lines if ": " in ln)
    return status.split()[1], {k.lower(): v.strip() for k, v in headers.items()}


@pytest.mark.daemons
def test_activesync_options_through_nginx_names_the_protocol_versions_and_commands(
    webmail_stack: tuple[netns.NetNs, Any, Path],
) -> None:
    # Without the bundle (sogo-activesync) SOGo answers this path as plain WebDAV, without MS-AS headers.
    requires_activesync()
    ns, ad, _ = webmail_stack
    code, headers = activesync_options(ns, "-u", f"usuario01:{ad.users['usuario01'].password}")
    versions = headers.get("ms-asprotocolversions", "").split(",")
    commands = headers.get("ms-asprotocolcommands", "").split(",")
    assert (code, "14.1" in versions, {"FolderSync", "Sync", "Ping"} <= set(commands)) == ("200", True, True), headers


@pytest.mark.daemons
def test_activesync_with_a_wrong_password_is_refused(webmail_stack: tuple[netns.NetNs, Any, Path]) -> None:
    requires_activesync()
    ns, _, _ = webmail_stack
    code, headers = activesync_options(ns, "-u", "usuario01:not-the-password")
    assert (code, "ms-asprotocolversions" in headers) == ("401", False)


@pytest.mark.daemons
def test_activesync_folder_sync_lists_the_users_mailboxes(webmail_stack: tuple[netns.NetNs, Any, Path]) -> None:
    # A phone's first FolderSync (SyncKey 0), HTTP Basic as the AD user: SOGo lists the user's IMAP folders
    # (from the stand-in mailstore), typing the special-use ones by the names sogo.conf gives them.
    from tests.support import activesync as eas

    requires_activesync()
    ns, ad, root = webmail_stack
    request, answer = root / "foldersync.wbxml", root / "foldersync.answer"
    request.write_bytes(eas.folder_sync_request())
    query = "Cmd=FolderSync&User=usuario01&DeviceId=MailstrataTest1&DeviceType=SmartPhone"
    out = curl(ns, f"https://127.0.0.1/Microsoft-Server-ActiveSync?{query}", "-u",
               f"usuario01:{ad.users['usuario01'].password}", "-H", f"MS-ASProtocolVersion: {eas.PROTOCOL}",
               "-H", f"Content-Type: {eas.CONTENT_TYPE}", "--data-binary", f"@{request}", "-o", str(answer),
               "-w", "%{http_code} %{content_type}")  # fmt: skip
    tree = eas.decode(answer.read_bytes()) if out.startswith("200 ") else eas.Element("none")
    names = {t: sorted(n for n, _ in f) for t, f in eas.folders_by_type(tree).items()}
    assert (out, tree.name, tree.value("Status"), names.get(eas.INBOX), names.get(eas.DRAFTS),
            names.get(eas.DELETED_ITEMS), names.get(eas.SENT_ITEMS)) == (
        f"200 {eas.CONTENT_TYPE}", "FolderSync", "1", ["INBOX"], [DRAFTS], [TRASH], [SENT]
    ), names  # fmt: skip


# ---- client addresses: the PROXY protocol from the webmail pools ---------------------------------------
# The webmail pools send PROXY v1 (tests/constructs/test_webmail_pool.py reads that from cdk.tf.json), so
# nginx must read it on 80 and 443, trust it only from where amphorae connect from, and give sogod the
# address it names. The live tests run the rendered nginx (debian12 profile, moved under a temporary root)
# in a private namespace whose networks stand in for the platform's: the VIP subnet is 127.20.0.0/24 and
# the webmail servers' subnet 127.10.4.0/24 (the same render, other inputs). 203.0.113.7 is only ever
# text in a PROXY line. In front of nginx runs the twin's HAProxy for the default platform's webmail VIP,
# generated from cdk.tf.json as Octavia's amphora would run it (mailstrata.twin.haproxy).

CLIENT = "203.0.113.7"  # the browser named in PROXY lines; never an address anything binds or dials
LIVE_VIP_SUBNET, LIVE_WEBMAIL_SUBNET = "127.20.0.0/24", "127.10.4.0/24"
AMPHORA = "127.10.4.210"  # an amphora's member-side port, on the webmail subnet (mailstrata.octavia)
LB_VIP = "127.20.0.13"
MEMBER = "127.10.4.41"  # the webmail server
OUTSIDER = "127.200.0.1"  # the Internet: not a source nginx may take a PROXY line from


def webmail_proxy_ports() -> frozenset[int]:
    """The member ports whose webmail pool sends PROXY in the default platform's cdk.tf.json (what the
    webmail MailLayer hands the templates as ctx.proxy_ports)."""
    prefix = "mailstrata/webmail/"
    return frozenset(
        int(p["description"][len(prefix):].split(":", 1)[0])
        for p in resources(default_platform(), "openstack_lb_pool_v2").values()
        if p["description"].startswith(prefix) and p["protocol"] == "PROXY"
    )


def live_context() -> LayerContext:
    ctx = _sample.context(ROLE)
    n = ctx.platform.networks
    networks = replace(n, servers={**n.servers, ROLE: (LIVE_WEBMAIL_SUBNET,)}, vip_subnet=(LIVE_VIP_SUBNET,))
    return replace(ctx.with_platform(networks=networks), proxy_ports=webmail_proxy_ports())


def nginx_under(root: Path, ctx: LayerContext) -> tuple[Path, OsProfile]:
    """nginx.conf rendered with the debian12 profile moved under `root`, and what the package would have put
    in place there (mime.types, log and pid folders) plus a self-signed certificate."""
    profile = load_profile("debian12", ROLE).relocated(str(root))
    tree = resolved_files(render(ctx, profile))
    conf = Path(next(p for p in tree if p.endswith(NGINX_CONF)))
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(tree[str(conf)])
    shutil.copy("/etc/nginx/mime.types", profile.paths.nginx_mime_types)
    Path(profile.paths.nginx_log_dir).mkdir(parents=True, exist_ok=True)
    Path(profile.paths.nginx_pid).parent.mkdir(parents=True, exist_ok=True)
    _self_signed(Path(profile.paths.tls_dir))
    return conf, profile


def listen_lines(conf: str) -> list[str]:
    lines = [ln.strip() for ln in conf.splitlines()]
    return [ln for ln in lines if ln.startswith(("listen", "set_real_ip_from", "real_ip_header"))]


def test_the_default_platform_reads_proxy_on_80_and_443_from_the_lb_subnets_only(
    layer_files: Callable[[Role], dict[str, str]],
) -> None:
    assert listen_lines(layer_files(ROLE)[NGINX_CONF]) == [
        "set_real_ip_from 10.10.4.0/24;",  # the webmail servers' subnet (the amphorae's member-side ports)
        "real_ip_header proxy_protocol;",
        "listen 80 default_server proxy_protocol;",
        "listen 443 ssl http2 default_server proxy_protocol;",
        "listen 443 ssl http2 proxy_protocol;",  # the MTA-STS policy's server: the same socket, by Host
    ]


def test_sogo_gets_the_client_address_in_every_header_it_reads(layer_files: Callable[[Role], dict[str, str]]) -> None:
    conf = layer_files(ROLE)[NGINX_CONF]
    for header in ("X-Real-IP", "X-Forwarded-For", "x-webobjects-remote-host"):
        assert conf.count(f"proxy_set_header {header} $remote_addr;") == 2, header  # /SOGo and ActiveSync


def test_a_whole_internet_proxy_source_is_refused() -> None:
    ctx = live_context()
    networks = replace(ctx.platform.networks, servers={**ctx.platform.networks.servers, ROLE: ("0.0.0.0/0",)})
    with pytest.raises(ConfigError) as err:
        render(ctx.with_platform(networks=networks))
    assert [str(p) for p in err.value.problems] == [
        "networks.servers.webmail: a PROXY-protocol source must not be the whole Internet, got 0.0.0.0/0; name the LB "
        "subnets"
    ]


@pytest.mark.daemons
def test_nginx_t_accepts_the_proxy_protocol_config_of_the_debian12_profile(tmp_path: Path) -> None:
    requires("nginx", "openssl")
    conf, _ = nginx_under(tmp_path, replace(_sample.context(ROLE), proxy_ports=webmail_proxy_ports()))
    out = subprocess.run(["nginx", "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True)
    assert ("proxy_protocol;" in conf.read_text(), out.returncode, out.stderr.splitlines()) == (
        True,
        0,
        [f"nginx: the configuration file {conf} syntax is ok", f"nginx: configuration file {conf} test is successful"],
    )


def test_sogo_does_not_write_the_client_address_into_sent_mail(files: dict[str, str], tmp_path: Path) -> None:
    # SOGo's X-Forward header would carry the browser's address (now the real one) to every recipient.
    assert sogo_plist(files[SOGO_CONF], tmp_path)["SOGoMailDisableXForward"] == "YES"


def open_at(ns: netns.NetNs, host: str, port: int) -> bool:
    probe = f"import socket; socket.create_connection(({host!r}, {port}), 1).close()"
    return ns.run([sys.executable, "-c", probe], check=False, capture_output=True).returncode == 0


def haproxy_servers(ns: netns.NetNs, sock: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """{(backend, server): (status, check_status)} from HAProxy's stats socket."""
    out = ns.run(["socat", "-", f"UNIX-CONNECT:{sock}"], input="show stat\n", capture_output=True, text=True)
    header, *rows = [ln for ln in out.stdout.splitlines() if ln]
    cols = header.lstrip("# ").split(",")
    stats = [dict(zip(cols, r.split(","), strict=False)) for r in rows]
    return {(s["pxname"], s["svname"]): (s["status"], s["check_status"]) for s in stats
            if s["svname"] not in ("FRONTEND", "BACKEND")}


@pytest.fixture(scope="module")
def proxied_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[netns.NetNs, Path, Path]]:
    """(namespace, nginx's log folder, HAProxy's stats socket): the rendered nginx on MEMBER in front of an
    echoing stand-in for sogod, and the twin's HAProxy for the webmail VIP in front of nginx."""
    requires("nginx", "openssl", "curl", "haproxy", "socat")
    requires_netns()
    from mailstrata.twin.haproxy import haproxy_cfg, load_balancers

    root = tmp_path_factory.mktemp("proxied")
    conf, profile = nginx_under(root, live_context())
    text = conf.read_text()
    # test-side: nginx binds the server's own address, since the load balancer's VIP takes the same ports in
    # this one namespace (on a real server nginx listens on every address)
    for port in (80, 443):
        assert f"listen {port} " in text
        text = text.replace(f"listen {port} ", f"listen {MEMBER}:{port} ")
    conf.write_text(text)
    lbs = load_balancers(default_platform(), vip_of=lambda _: LB_VIP, member_address=lambda _: MEMBER,
                         cidr=lambda c: c)
    [lb] = [lb for name, lb in lbs.items() if name.endswith("webmail")]
    sock = root / "haproxy.sock"
    (root / "haproxy.cfg").write_text(haproxy_cfg(lb, stats_socket=str(sock), pid_file=str(root / "haproxy.pid")))
    ns = netns.NetNs.create("ms-wpx", addresses=(AMPHORA, LB_VIP, OUTSIDER))
    # /32: connections to the member then leave from the member's own address (the webmail subnet), as the
    # amphora's member-side port would; a /8 alias would make the kernel pick 127.0.0.1
    ns.run(["ip", "addr", "add", f"{MEMBER}/32", "dev", "lo"])
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(ns.popen([sys.executable, "-c", ECHO_BACKEND]))
        procs.append(ns.popen(["nginx", "-c", str(conf), "-p", str(root), "-g", "daemon off;"]))
        wait_for(lambda: open_at(ns, "127.0.0.1", 20000) and open_at(ns, MEMBER, 443) and open_at(ns, MEMBER, 80),
                 "nginx and the backend", 20)  # fmt: skip
        # then the load balancer: HAProxy starts its servers UP but takes them down at the first failed
        # check, which a check sent before nginx listens would be
        procs.append(ns.popen(["haproxy", "-db", "-f", str(root / "haproxy.cfg")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        wait_for(lambda: open_at(ns, LB_VIP, 443) and open_at(ns, LB_VIP, 80), "HAProxy", 20)
        yield ns, Path(profile.paths.nginx_log_dir), sock
    finally:
        for p in procs:
            stop(p)
        ns.delete()


@pytest.mark.daemons
def test_an_amphoras_proxy_line_gives_sogo_the_client_address(proxied_site: tuple[netns.NetNs, Path, Path]) -> None:
    ns, _, _ = proxied_site
    out = proxy_client(ns, host=MEMBER, port=443, proxy=f"PROXY TCP4 {CLIENT} {LB_VIP} 51234 443", source=AMPHORA)
    h = json.loads(out["body"])["headers"]
    assert (out["status"], h["x-forwarded-for"], h["x-real-ip"], h["x-webobjects-remote-host"]) == (
        "HTTP/1.1 200 OK", CLIENT, CLIENT, CLIENT
    )


@pytest.mark.daemons
def test_a_proxy_line_on_port_80_names_the_client_in_the_access_log(
    proxied_site: tuple[netns.NetNs, Path, Path],
) -> None:
    ns, logs, _ = proxied_site
    out = proxy_client(ns, host=MEMBER, port=80, proxy=f"PROXY TCP4 {CLIENT} {LB_VIP} 51235 80", tls=None,
                       path="/SOGo/?port80", source=AMPHORA)  # fmt: skip
    [line] = [ln for ln in (logs / "access.log").read_text().splitlines() if "/SOGo/?port80" in ln]
    assert (out["status"], line.split()[0]) == ("HTTP/1.1 301 Moved Permanently", CLIENT)


@pytest.mark.daemons
@pytest.mark.parametrize(("port", "tls"), [(443, "TLSv1_2"), (80, None)])
def test_a_connection_without_a_proxy_line_is_refused(
    proxied_site: tuple[netns.NetNs, Path, Path], port: int, tls: str | None
) -> None:
    ns, logs, _ = proxied_site
    out = proxy_client(ns, host=MEMBER, port=port, proxy=None, tls=tls, path=f"/SOGo/?no-proxy-{port}",
                       source=AMPHORA)  # fmt: skip
    assert "error" in out, out
    assert f"/SOGo/?no-proxy-{port}" not in (logs / "access.log").read_text()


@pytest.mark.daemons
def test_a_proxy_line_from_an_untrusted_source_does_not_set_the_client(
    proxied_site: tuple[netns.NetNs, Path, Path],
) -> None:
    ns, _, _ = proxied_site
    out = proxy_client(ns, host=MEMBER, port=443, proxy=f"PROXY TCP4 {CLIENT} {LB_VIP} 51236 443", source=OUTSIDER)
    h = json.loads(out["body"])["headers"]
    assert (h["x-forwarded-for"], h["x-real-ip"], h["x-webobjects-remote-host"]) == (OUTSIDER, OUTSIDER, OUTSIDER)


@pytest.mark.daemons
def test_octavias_health_checks_carry_the_proxy_line_and_pass(proxied_site: tuple[netns.NetNs, Path, Path]) -> None:
    ns, _, sock = proxied_site
    # Octavia's first checks run within one monitor delay (5 s); L7OK: /healthz answered 200 through nginx.
    wait_for(lambda: {c for _, c in haproxy_servers(ns, sock).values()} == {"L7OK"}, "the first health checks", 30)
    servers = haproxy_servers(ns, sock)
    assert sorted({(backend.split("-")[-2], st) for (backend, _), st in servers.items()}) == [
        ("443", ("UP", "L7OK")), ("80", ("UP", "L7OK"))
    ]


@pytest.mark.daemons
def test_a_browser_through_the_load_balancer_reaches_sogo_with_its_own_address(
    proxied_site: tuple[netns.NetNs, Path, Path],
) -> None:
    ns, _, _ = proxied_site
    out = ns.run(["curl", "-sk", "--interface", OUTSIDER, "--max-time", "5", "-H", f"Host: {PUBLIC_HOST}",
                  f"https://{LB_VIP}/SOGo/so/"], capture_output=True, text=True, check=False)  # fmt: skip
    h = json.loads(out.stdout)["headers"]
    assert (h["x-forwarded-for"], h["x-real-ip"]) == (OUTSIDER, OUTSIDER)


# ---- MTA-STS (RFC 8461): the policy served for every mail domain ------------------------------------------
# Senders fetch https://mta-sts.<domain>/.well-known/mta-sts.txt over verified TLS. nginx serves one policy
# file (mailstrata.mta_sts) for every served domain on 443; port 80 only redirects; other names do not get it.

MTA_STS_POLICY = "/etc/nginx/mta-sts.txt"
MTA_STS_HOSTS = ("mta-sts.domain01.dom", "mta-sts.domain02.dom")  # the sample platform serves domain01, 02


def test_the_default_platform_serves_its_policy_with_crlf_through_cloud_init(
    layer_files: Callable[[Role], dict[str, str]],
) -> None:
    # layer_files: the synthesized user-data as cloud-init reads it, so the CRLF line ends must survive YAML.
    from mailstrata.mta_sts import policy_text

    assert layer_files(ROLE)[MTA_STS_POLICY] == policy_text(
        ["smtp-in.cloud0.hc.mycompany.dom"], mode="testing", max_age=604800
    )


def test_each_domains_published_mta_sts_id_is_the_id_of_the_served_file(
    layer_files: Callable[[Role], dict[str, str]],
) -> None:
    # The TXT record and the file come from one text: a sender that sees the id change fetches this file.
    from cdktf import App

    from mailstrata.config import parse_config
    from mailstrata.mta_sts import policy_id
    from mailstrata.stacks import MailPlatformStack
    from tests.config._support import default_data

    stack = MailPlatformStack(App(outdir=tempfile.mkdtemp()), "mail", config=parse_config(default_data()))
    txt = {r.name: r.value for r in stack.published if r.name.startswith("_mta-sts.")}
    served = policy_id(layer_files(ROLE)[MTA_STS_POLICY])
    assert txt == {f"_mta-sts.{d}.": f'"v=STSv1; id={served}"' for d in ("domain01.dom", "domain02.dom")}


def test_the_configured_mta_sts_settings_reach_the_policy() -> None:
    from mailstrata.mta_sts import MtaStsMode, MtaStsSettings, policy_text

    ctx = _sample.context(ROLE)
    ctx = ctx.with_platform(mta_sts=MtaStsSettings(mode=MtaStsMode.ENFORCE, max_age=86400))
    assert render(ctx).file(MTA_STS_POLICY).content == policy_text(
        [f"smtp-in.{ctx.platform.dns_zone}"], mode="enforce", max_age=86400
    )


def _mta_sts_certificate(tls: Path) -> Path:
    """A certificate naming webmail's host and every mta-sts.<domain>, as a sender requires; it is its own
    CA here (the platform's must chain to a public CA). Returns the CA file a client trusts."""
    tls.mkdir(parents=True, exist_ok=True)
    names = ",".join(f"DNS:{h}" for h in (PUBLIC_HOST, *MTA_STS_HOSTS))
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "2", "-subj", f"/CN={PUBLIC_HOST}", "-addext", f"subjectAltName={names}",
         "-keyout", str(tls / "server.key"), "-out", str(tls / "server.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    return tls / "server.crt"


@pytest.fixture(scope="module")
def mta_sts_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[netns.NetNs, Path, str]]:
    """(namespace, the CA file, the policy text): the rendered nginx (debian12 profile) with the rendered policy
    file, listening with the PROXY protocol on 80 and 443 as the default platform's webmail pools send it."""
    requires("nginx", "openssl", "curl")
    requires_netns()
    root = tmp_path_factory.mktemp("mta-sts")
    ctx = replace(_sample.context(ROLE), proxy_ports=frozenset({80, 443}))
    conf, profile = nginx_under(root, ctx)
    # test-side: workers as root, to read files under pytest's root-only folder (www-data would get 403)
    conf.write_text(conf.read_text().replace("\nuser www-data;\n", "\nuser root;\n"))
    ca = _mta_sts_certificate(Path(profile.paths.tls_dir))
    policy = resolved_files(render(ctx, profile))[profile.paths.mta_sts_policy]
    Path(profile.paths.mta_sts_policy).write_bytes(policy.encode())  # bytes: no newline translation
    ns = netns.NetNs.create("ms-mtasts")
    proc = None
    try:
        proc = ns.popen(["nginx", "-c", str(conf), "-p", str(root), "-g", "daemon off;"])
        wait_for(lambda: port_open(ns, 443) and port_open(ns, 80), "nginx", 20)
        yield ns, ca, policy
    finally:
        if proc is not None:
            stop(proc)
        ns.delete()


def fetch(ns: netns.NetNs, url: str, host: str, port: int, *args: str) -> tuple[str, str, bytes, str]:
    """(status, Content-Type, body, redirect URL) of `url` as curl gets it through a PROXY v1 line, `host`
    resolving to 127.0.0.1 (so SNI, Host and the certificate check all use `host`)."""
    with tempfile.NamedTemporaryFile() as body:
        out = ns.run(
            ["curl", "-s", "--haproxy-protocol", "--max-time", "5", "--resolve", f"{host}:{port}:127.0.0.1",
             "-o", body.name, "-w", "%{http_code}\n%{content_type}\n%{redirect_url}", *args, url],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        code, ctype, redirect = out.stdout.split("\n")
        return code, ctype, Path(body.name).read_bytes(), redirect


@pytest.mark.daemons
@pytest.mark.parametrize("host", MTA_STS_HOSTS)
def test_a_sender_fetches_the_policy_over_verified_https(
    mta_sts_site: tuple[netns.NetNs, Path, str], host: str
) -> None:
    from mailstrata.mta_sts import policy_text
    from tests.test_mta_sts import rfc8461_policy

    ns, ca, _ = mta_sts_site
    # curl checks the certificate against `ca` and the name `host`, as RFC 8461 3.3 requires of a sender; and
    # follows no redirect (3.3: senders "MUST NOT follow HTTP redirects").
    code, ctype, body, _ = fetch(ns, f"https://{host}/.well-known/mta-sts.txt", host, 443, "--cacert", str(ca))
    expected = policy_text(["smtp-in.cloud0.hc.mycompany.dom"], mode="testing", max_age=604800)
    assert (code, ctype, body) == ("200", "text/plain", expected.encode())
    assert rfc8461_policy(body.decode("ascii")) == {
        "version": "STSv1", "mode": "testing", "max_age": "604800", "mx": ["smtp-in.cloud0.hc.mycompany.dom"]
    }


@pytest.mark.daemons
def test_port_80_redirects_the_policy_url_and_does_not_serve_it(mta_sts_site: tuple[netns.NetNs, Path, str]) -> None:
    ns, _, _ = mta_sts_site
    host = MTA_STS_HOSTS[1]
    code, _, body, redirect = fetch(ns, f"http://{host}/.well-known/mta-sts.txt", host, 80)
    assert (code, redirect, b"STSv1" in body) == ("301", f"https://{host}/.well-known/mta-sts.txt", False)


@pytest.mark.daemons
@pytest.mark.parametrize("host", [PUBLIC_HOST, "mta-sts.domain03.dom", "mta-sts.cloud0.hc.mycompany.dom"])
def test_a_name_that_is_not_mta_sts_of_a_served_domain_does_not_get_the_policy(
    mta_sts_site: tuple[netns.NetNs, Path, str], host: str
) -> None:
    ns, _, _ = mta_sts_site
    code, _, body, _ = fetch(ns, f"https://{host}/.well-known/mta-sts.txt", host, 443, "-k")
    assert (code, b"STSv1" in body) == ("404", False)


@pytest.mark.daemons
def test_only_the_policy_path_is_served_on_mta_sts_names(mta_sts_site: tuple[netns.NetNs, Path, str]) -> None:
    ns, ca, _ = mta_sts_site
    host = MTA_STS_HOSTS[0]
    got = [fetch(ns, f"https://{host}{path}", host, 443, "--cacert", str(ca))[0]
           for path in ("/", "/SOGo/", "/.well-known/mta-sts.txt/", "/mta-sts.txt")]
    assert got == ["404", "404", "404", "404"]

