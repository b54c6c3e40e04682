"""SMTP-in (the MX) user-data: the rendered files, checked by the real daemons (Debian 12's versions).

Static checks read the `layer_files` fixture: the cloud-config exactly as the server receives it, with
the sample values standing in for Terraform's. The daemons read those files at their real paths: each
check runs in a private mount namespace whose /etc is an overlay of the rendered tree over the host's
/etc and whose Postfix queue and data directories are scratch directories, so nothing rendered is
edited and nothing on the host changes.

Live checks render the same templates with the profile relocated under a scratch root (the mechanism
the local twin uses) and start the daemons inside a network namespace with only `lo`: a real Samba AD
(tests/support/samba_ad.py) answers the LDAP maps, Postfix answers SMTP behind a PROXY header, amavisd
scans through its own clamd. Test-side additions are named where they are made (queue directory, log
file, the host name, Debian's policyd-spf binary at CentOS's path, a one-signature ClamAV database).

Versions: the centos7 profile targets Postfix 2.10, amavisd-new 2.10, SpamAssassin 3.4, ClamAV 0.103 and
pypolicyd-spf 2.0; the parsers here are Postfix 3.7, amavisd-new 2.13, SpamAssassin 4.0, ClamAV 1.4 and
postfix-policyd-spf-python 3.0. Every setting used exists in both. Postfix 3.7 prints its
"backwards-compatible default settings" notice for the 2.10 render (2.10 has no compatibility_level);
a render with the profile's Postfix version set to 3.7 is checked to print nothing at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import pwd
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from mailstrata.directory import LdapTls
from mailstrata.errors import ConfigError
from mailstrata.roles import Role
from mailstrata.types import Secret
from mailstrata.userdata.context import LayerContext
from mailstrata.userdata.daemons import postfix
from mailstrata.userdata.profiles import OsProfile, _Attrs, load_profile
from mailstrata.userdata.render import render_layer
from tests.support.daemons import (
    ServerView,
    listening,
    restrictions,
    scratch_dir,
    server_view,
    stop,
    view_postconf,
    view_postconf_master,
    view_run_postconf,
    wait_for,
)
from tests.support.requires import requires, unavailable
from tests.support.samba_ad import SambaAD, private_netns
from tests.support.server_view import install_files
from tests.userdata import _sample

ROLE = Role.SMTP_IN
PROFILE = load_profile("centos7", ROLE)
SAMPLE = _sample.SAMPLE_VALUES
DELIVERY_VIP = SAMPLE["vip.mailstore"]
VIP_SUBNET = "10.20.0.0/24"  # the sample's load balancer subnet
EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
COMPAT_NOTICE = [
    "postfix: Postfix is using backwards-compatible default settings",
    "postfix: See http://www.postfix.org/COMPATIBILITY_README.html for details",
    'postfix: To disable backwards compatibility use "postconf compatibility_level=3.6" and "postfix reload"',
]

# ---- helpers ---------------------------------------------------------------------------------------


def rendered(ctx: LayerContext, os_profile: OsProfile = PROFILE) -> dict[str, str]:
    """{path: text} of a render before Terraform (secret files left out)."""
    return {f.path: f.content for f in render_layer(ctx, os=os_profile).files if not f.b64}


def with_spam(**changes: Any) -> LayerContext:
    ctx = _sample.context(ROLE)
    return ctx.with_platform(spam=dataclasses.replace(ctx.platform.spam, **changes))


def profile_with(
    os_profile: OsProfile = PROFILE,
    *,
    versions: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> OsProfile:
    return dataclasses.replace(
        os_profile,
        versions=_Attrs("test.versions", {**os_profile.versions, **(versions or {})}),
        values=_Attrs("test.values", {**os_profile.values, **(values or {})}),
    )


# amavisd's parsed view: its own configuration reader, then the values it ended up with.
AMAVIS_DUMP = r"""
use strict;
use Amavis::Boot;
use Amavis::Conf qw(:platform :sa :confvars :dynamic_confvars :hidden_confvars :legacy_dynamic_confvars
                    :legacy_confvars);
my ($file) = $ARGV[0] =~ /^(.*)\z/s;
Amavis::Conf::include_config_files($file);
my %d = (D_DISCARD, 'D_DISCARD', D_PASS, 'D_PASS', D_BOUNCE, 'D_BOUNCE', D_REJECT, 'D_REJECT');
print "max_servers=$max_servers\n";
print "sa_tag_level_deflt=$sa_tag_level_deflt\nsa_tag2_level_deflt=$sa_tag2_level_deflt\n";
print "sa_kill_level_deflt=$sa_kill_level_deflt\nsa_dsn_cutoff_level=$sa_dsn_cutoff_level\n";
print "final_virus_destiny=$d{$final_virus_destiny}\nfinal_banned_destiny=$d{$final_banned_destiny}\n";
print "final_spam_destiny=$d{$final_spam_destiny}\nfinal_bad_header_destiny=$d{$final_bad_header_destiny}\n";
print "inet_socket_bind=$inet_socket_bind\ninet_socket_port=$inet_socket_port\n";
print "forward_method=$forward_method\nnotify_method=$notify_method\n";
print "mynetworks=@mynetworks\nlocal_domains=@{$local_domains_maps[0]}\n";
print "av_scanner=$av_scanners[0][0] $av_scanners[0][2][0] $av_scanners[0][2][1]\n";
print "av_scanners_backup=", scalar(@av_scanners_backup), "\n";
print "spam_subject_tag=$sa_spam_subject_tag\n";
"""


def amavis_values(conf: str, work: Path) -> dict[str, str]:
    requires("perl", "amavisd")
    path = work / "amavisd.conf"
    path.write_text(conf)
    script = work / "dump.pl"
    script.write_text(AMAVIS_DUMP)
    proc = subprocess.run(["perl", "-T", str(script), str(path)], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (0, "")
    return dict(line.split("=", 1) for line in proc.stdout.splitlines())


# ---- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(layer_files: Callable[[Role], dict[str, str]]) -> dict[str, str]:
    """SMTP-in's files as the server receives them.

    Workaround: `_sample.py`'s stand-in references (`${vip.mailstore}`) are not Terraform references, so
    `escape()` doubles them and the sample never substitutes them; they are substituted here until the
    fixture reads the synthesized cdk.tf.json (then this loop finds nothing to replace).
    """
    out = {}
    for path, text in layer_files(ROLE).items():
        for ref in ("vip.smtp_in", "vip.smtp_out", "vip.mailstore", "vip.webmail"):
            text = text.replace("${" + ref + "}", SAMPLE[ref])
        out[path] = text
    return out


@pytest.fixture(scope="module")
def services(view: ServerView) -> dict[str, list[str]]:
    return view_postconf_master(view)


@pytest.fixture(scope="module")
def service_params(view: ServerView) -> dict[str, str]:
    return view_postconf(view, "-P")


@pytest.fixture(scope="module")
def amavis(files: dict[str, str]) -> Iterator[dict[str, str]]:
    with scratch_dir("amavis-conf") as work:
        yield amavis_values(files[PROFILE.paths.amavisd_conf], work)


# ==== Postfix: main.cf (postconf -n) ==================================================================


@pytest.mark.daemons
def test_postconf_prints_no_warnings(postconf_n: subprocess.CompletedProcess[str]) -> None:
    assert (postconf_n.returncode, postconf_n.stderr) == (0, "")


@pytest.mark.daemons
def test_relay_domains_are_the_served_domains(main_cf: dict[str, str]) -> None:
    assert main_cf["relay_domains"] == "domain01.dom, domain02.dom"


@pytest.mark.daemons
def test_unknown_recipients_are_checked_against_ldap_people_and_lists(main_cf: dict[str, str]) -> None:
    assert main_cf["relay_recipient_maps"] == (
        "proxy:ldap:/etc/postfix/ldap-people.cf, proxy:ldap:/etc/postfix/ldap-groups.cf"
    )


@pytest.mark.daemons
def test_transport_map_is_the_hash_table(main_cf: dict[str, str]) -> None:
    assert main_cf["transport_maps"] == "hash:/etc/postfix/transport"


@pytest.mark.daemons
def test_mynetworks_is_loopback_only(main_cf: dict[str, str]) -> None:
    assert main_cf["mynetworks"] == "127.0.0.0/8"


@pytest.mark.daemons
def test_mynetworks_holds_neither_the_lb_subnet_nor_the_internet(main_cf: dict[str, str]) -> None:
    trusted = [ipaddress.ip_network(n.strip()) for n in main_cf["mynetworks"].split(",")]
    lb = ipaddress.ip_network(VIP_SUBNET)
    assert [str(t) for t in trusted if t.overlaps(lb) or t.prefixlen == 0] == []


@pytest.mark.daemons
def test_relay_restrictions_end_in_an_explicit_reject_unauth_destination(main_cf: dict[str, str]) -> None:
    assert restrictions(main_cf["smtpd_relay_restrictions"]) == ["permit_mynetworks", "reject_unauth_destination"]


@pytest.mark.daemons
def test_recipient_restrictions_follow_the_reference_order(main_cf: dict[str, str]) -> None:
    assert restrictions(main_cf["smtpd_recipient_restrictions"]) == [
        "reject_invalid_helo_hostname",
        "reject_unknown_sender_domain",
        "reject_unauth_pipelining",
        "permit_mynetworks",
        "reject_unlisted_recipient",
        "reject_rbl_client zen.spamhaus.org=127.0.0.[2..11]",
        "reject_rbl_client bl.spamcop.net",
        "check_policy_service unix:private/policyd-spf",
        "permit",
    ]


@pytest.mark.daemons
def test_no_obsolete_reject_invalid_hostname(postconf_n: subprocess.CompletedProcess[str]) -> None:
    assert re.search(r"\breject_invalid_hostname\b", postconf_n.stdout) is None


@pytest.mark.daemons
def test_helo_is_required_and_vrfy_disabled(main_cf: dict[str, str]) -> None:
    assert (main_cf["smtpd_helo_required"], main_cf["disable_vrfy_command"]) == ("yes", "yes")


@pytest.mark.daemons
def test_every_reject_code_of_the_checks_used_is_554(main_cf: dict[str, str]) -> None:
    assert {k: v for k, v in main_cf.items() if k == "reject_code" or k.endswith("_reject_code")} == {
        "access_map_reject_code": "554",
        "invalid_hostname_reject_code": "554",
        "maps_rbl_reject_code": "554",
        "reject_code": "554",
        "relay_domains_reject_code": "554",
        "unknown_address_reject_code": "554",
        "unknown_relay_recipient_reject_code": "554",
    }


@pytest.mark.daemons
def test_spf_policy_service_lives_as_long_as_smtpd(main_cf: dict[str, str]) -> None:
    assert main_cf["policyd-spf_time_limit"] == "3600"


@pytest.mark.daemons
def test_content_filter_is_amavis_on_loopback(main_cf: dict[str, str]) -> None:
    assert main_cf["content_filter"] == "smtp-amavis:[127.0.0.1]:10024"


@pytest.mark.daemons
def test_starttls_is_offered_with_the_common_certificate(main_cf: dict[str, str]) -> None:
    assert (main_cf["smtpd_tls_security_level"], main_cf["smtpd_tls_cert_file"], main_cf["smtpd_tls_key_file"]) == (
        "may",
        "/etc/pki/mailstrata/server.crt",
        "/etc/pki/mailstrata/server.key",
    )


@pytest.mark.daemons
def test_tls_floor_is_tls_1_2(main_cf: dict[str, str]) -> None:
    floor = "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1"
    assert (main_cf["smtpd_tls_protocols"], main_cf["smtpd_tls_mandatory_protocols"]) == (floor, floor)


@pytest.mark.daemons
def test_limits_come_from_the_platform_config(main_cf: dict[str, str]) -> None:
    names = (
        "smtpd_recipient_limit", "message_size_limit", "smtpd_error_sleep_time", "smtpd_soft_error_limit",
        "smtpd_hard_error_limit", "smtpd_client_connection_count_limit", "smtpd_client_connection_rate_limit",
        "default_process_limit", "bounce_queue_lifetime", "maximal_queue_lifetime",
    )  # fmt: skip
    assert {n: main_cf[n] for n in names} == {
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
def test_per_client_limits_exempt_nobody_behind_proxy(main_cf: dict[str, str]) -> None:
    # A PROXY header can name 127.0.0.1: exempting loopback would exempt whoever claims it.
    assert main_cf["smtpd_client_event_limit_exceptions"] == ""


@pytest.mark.daemons
def test_postfix_2_10_render_has_no_compatibility_level(main_cf: dict[str, str]) -> None:
    assert "compatibility_level" not in main_cf


# ==== Postfix: master.cf (postconf -M / -P) ===========================================================


@pytest.mark.daemons
def test_port_25_expects_the_proxy_protocol(service_params: dict[str, str]) -> None:
    assert service_params["smtp/inet/smtpd_upstream_proxy_protocol"] == "haproxy"


@pytest.mark.daemons
def test_port_25_trusts_no_address(service_params: dict[str, str]) -> None:
    # Issue 9: Postfix checks only a PROXY header's syntax, so no address it names may be trusted.
    assert service_params["smtp/inet/mynetworks"] == ""


@pytest.mark.daemons
def test_proxy_protocol_is_set_on_port_25_only(service_params: dict[str, str]) -> None:
    assert [k for k in service_params if k.endswith("upstream_proxy_protocol")] == [
        "smtp/inet/smtpd_upstream_proxy_protocol"
    ]


@pytest.mark.daemons
def test_smtp_amavis_process_limit_is_16(services: dict[str, list[str]]) -> None:
    assert services["smtp-amavis/unix"][:6] == ["-", "-", "n", "-", "16", "smtp"]


@pytest.mark.daemons
def test_reinjection_listener_on_loopback_10025(services: dict[str, list[str]]) -> None:
    assert services["127.0.0.1:10025/inet"][:6] == ["n", "-", "n", "-", "-", "smtpd"]


@pytest.mark.daemons
def test_reinjection_listener_clears_filter_and_restrictions(service_params: dict[str, str]) -> None:
    own = {k.split("/", 2)[2]: v for k, v in service_params.items() if k.startswith("127.0.0.1:10025/inet/")}
    assert {k: own[k] for k in (
        "content_filter", "mynetworks", "smtpd_client_restrictions", "smtpd_helo_restrictions",
        "smtpd_sender_restrictions", "smtpd_data_restrictions", "smtpd_relay_restrictions",
        "smtpd_recipient_restrictions", "receive_override_options",
    )} == {
        "content_filter": "",
        "mynetworks": "127.0.0.0/8",
        "smtpd_client_restrictions": "",
        "smtpd_helo_restrictions": "",
        "smtpd_sender_restrictions": "",
        "smtpd_data_restrictions": "",
        "smtpd_relay_restrictions": "permit_mynetworks,reject",
        "smtpd_recipient_restrictions": "permit_mynetworks,reject",
        "receive_override_options": "no_unknown_recipient_checks,no_header_body_checks",
    }  # fmt: skip


@pytest.mark.daemons
def test_policyd_spf_is_spawned_with_its_config(services: dict[str, list[str]]) -> None:
    assert services["policyd-spf/unix"] == [
        "-", "n", "n", "-", "0", "spawn",
        "user=nobody", "argv=/usr/libexec/postfix/policyd-spf", "/etc/python-policyd-spf/policyd-spf.conf",
    ]  # fmt: skip


@pytest.mark.daemons
def test_without_a_proxy_pool_port_25_takes_plain_connections(tmp_path: Path) -> None:
    ctx = dataclasses.replace(_sample.context(ROLE), proxy_ports=frozenset())
    params = view_postconf(server_view(rendered(ctx), tmp_path), "-P")
    assert [k for k in params if k.startswith("smtp/inet/")] == []


@pytest.mark.daemons
def test_without_a_proxy_pool_the_lb_is_exempt_from_per_client_limits(tmp_path: Path) -> None:
    # Every client then has the amphora's address, on the smtp-in subnet its members name (mailstrata/octavia.py):
    # limiting it would throttle the whole Internet as one client.
    ctx = dataclasses.replace(_sample.context(ROLE), proxy_ports=frozenset())
    got = view_postconf(server_view(rendered(ctx), tmp_path), "-n")
    assert (got["smtpd_client_event_limit_exceptions"], got["mynetworks"]) == (
        "127.0.0.0/8, 10.10.1.0/24",
        "127.0.0.0/8",
    )


# ==== one value for the amavis process count ==========================================================


@pytest.mark.daemons
def test_amavis_max_servers_is_16(amavis: dict[str, str]) -> None:
    assert amavis["max_servers"] == "16"


@pytest.mark.daemons
def test_process_limit_and_max_servers_follow_amavis_processes(tmp_path: Path) -> None:
    files = rendered(with_spam(amavis_processes=7))
    proc = view_run_postconf(server_view(files, tmp_path), "-M", "smtp-amavis/unix")
    with scratch_dir("amavis-7") as work:
        max_servers = amavis_values(files[PROFILE.paths.amavisd_conf], work)["max_servers"]
    assert (proc.stdout.split()[6], max_servers) == ("7", "7")


# ==== postfix check, postmap ==========================================================================


@pytest.mark.daemons
def test_postfix_check_prints_only_the_3_7_compatibility_notice(view: ServerView) -> None:
    # Postfix 2.10 has no compatibility_level, so Debian's 3.7 announces its backwards-compatible mode.
    requires("postfix")
    proc = view.run(["postfix", "check"], tty=True)
    assert (proc.returncode, [ln for ln in proc.stdout.replace("\r", "").splitlines() if ln]) == (0, COMPAT_NOTICE)


@pytest.mark.daemons
def test_postfix_3_7_profile_sets_compatibility_level_and_check_is_silent(tmp_path: Path) -> None:
    requires("postfix", "postconf")
    files = rendered(_sample.context(ROLE), profile_with(versions={"postfix": "3.7"}))
    server = server_view(files, tmp_path)
    level = view_postconf(server, "-n", "compatibility_level")
    proc = server.run(["postfix", "check"], tty=True)
    assert (level, proc.returncode, proc.stdout.strip()) == ({"compatibility_level": "3.6"}, 0, "")


@pytest.mark.daemons
def test_transport_map_sends_every_served_domain_to_the_delivery_vip(view: ServerView) -> None:
    requires("postmap")
    built = view.run(["postmap", "hash:/etc/postfix/transport"])
    assert built.returncode == 0, built.stderr
    got = {
        d: view.run(["postmap", "-q", d, "hash:/etc/postfix/transport"]).stdout.strip()
        for d in _sample.DIRECTORY.domains
    }
    assert got == {"domain01.dom": f"smtp:[{DELIVERY_VIP}]:25", "domain02.dom": f"smtp:[{DELIVERY_VIP}]:25"}


@pytest.mark.daemons
def test_transport_map_has_no_entry_for_other_domains(view: ServerView) -> None:
    requires("postmap")
    assert view.run(["postmap", "hash:/etc/postfix/transport"]).returncode == 0
    assert view.run(["postmap", "-q", "example.org", "hash:/etc/postfix/transport"]).returncode == 1


# ==== LDAP map files ==================================================================================


def test_ldap_map_files_are_0640_root_postfix() -> None:
    ud = render_layer(_sample.context(ROLE))
    got = {
        p: (ud.file(p).owner, ud.file(p).mode) for p in ("/etc/postfix/ldap-people.cf", "/etc/postfix/ldap-groups.cf")
    }
    assert got == {p: ("root:postfix", "0640") for p in got}


def test_bind_password_is_a_terraform_reference_in_the_rendered_map() -> None:
    text = render_layer(_sample.context(ROLE)).file("/etc/postfix/ldap-people.cf").content
    assert re.findall(r"^bind_pw = .*$", text, re.M) == ["bind_pw = ${var.ad_bind_password}"]


def test_ldap_maps_verify_the_directory_certificate(files: dict[str, str]) -> None:
    lines = set(files["/etc/postfix/ldap-people.cf"].splitlines())
    assert {"server_host = ldaps://dc1.domain01.dom:636", "start_tls = no", "tls_require_cert = yes",
            "tls_ca_cert_file = /etc/pki/tls/certs/ca-bundle.crt", "version = 3"} <= lines  # fmt: skip


# ==== amavisd-new =====================================================================================


@pytest.mark.daemons
def test_amavisd_loads_the_config(files: dict[str, str]) -> None:
    # `test-config` reads the file as amavisd would at start (as root, then as $daemon_user) and exits.
    requires("amavisd")
    with scratch_dir("amavis-load") as work:
        conf = work / "amavisd.conf"
        conf.write_text(files[PROFILE.paths.amavisd_conf])
        conf.chmod(0o644)
        proc = subprocess.run(["amavisd", "-c", str(conf), "test-config"], capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


@pytest.mark.daemons
def test_amavis_spam_levels_come_from_the_platform_config(amavis: dict[str, str]) -> None:
    keys = ("sa_tag_level_deflt", "sa_tag2_level_deflt", "sa_kill_level_deflt", "sa_dsn_cutoff_level")
    assert {k: amavis[k] for k in keys} == {
        "sa_tag_level_deflt": "-999",
        "sa_tag2_level_deflt": "9",
        "sa_kill_level_deflt": "12",
        "sa_dsn_cutoff_level": "15",
    }


@pytest.mark.daemons
def test_amavis_discards_viruses_banned_and_spam_and_passes_bad_headers(amavis: dict[str, str]) -> None:
    keys = ("final_virus_destiny", "final_banned_destiny", "final_spam_destiny", "final_bad_header_destiny")
    assert {k: amavis[k] for k in keys} == {
        "final_virus_destiny": "D_DISCARD",
        "final_banned_destiny": "D_DISCARD",
        "final_spam_destiny": "D_DISCARD",
        "final_bad_header_destiny": "D_PASS",
    }


@pytest.mark.daemons
def test_amavis_listens_on_loopback_and_reinjects_to_10025(amavis: dict[str, str]) -> None:
    keys = ("inet_socket_bind", "inet_socket_port", "forward_method", "notify_method", "mynetworks")
    assert {k: amavis[k] for k in keys} == {
        "inet_socket_bind": "127.0.0.1",
        "inet_socket_port": "10024",
        "forward_method": "smtp:[127.0.0.1]:10025",
        "notify_method": "smtp:[127.0.0.1]:10025",
        "mynetworks": "127.0.0.0/8",
    }


@pytest.mark.daemons
def test_amavis_streams_to_its_own_clamd_socket(amavis: dict[str, str], files: dict[str, str]) -> None:
    socket_path = PROFILE.paths.clamd_amavis_socket
    clamd_conf = files[PROFILE.paths.clamd_amavis_conf].splitlines()
    assert (amavis["av_scanner"], amavis["av_scanners_backup"], f"LocalSocket {socket_path}" in clamd_conf) == (
        f"ClamAV-clamd {{}}/* clamd:{socket_path}",
        "0",
        True,
    )


@pytest.mark.daemons
def test_amavis_edits_headers_for_the_served_domains(amavis: dict[str, str]) -> None:
    assert (amavis["local_domains"], amavis["spam_subject_tag"]) == ("domain01.dom domain02.dom", "***SPAM*** ")


def test_amavis_config_is_0640_root_amavis() -> None:
    f = render_layer(_sample.context(ROLE)).file(PROFILE.paths.amavisd_conf)
    assert (f.owner, f.mode) == ("root:amavis", "0640")


def test_amavis_cleanup_cron_removes_stale_temp_dirs_and_old_quarantine(files: dict[str, str]) -> None:
    jobs = [ln for ln in files["/etc/cron.d/mailstrata-amavis-cleanup"].splitlines() if ln and ln[0].isdigit()]
    assert jobs == [
        "17 * * * * amavis find /var/spool/amavisd/tmp -mindepth 1 -maxdepth 1 -name 'amavis-*' -mmin +1440 "
        "-exec rm -rf {} +",
        "42 3 * * * amavis find /var/spool/amavisd/quarantine -type f -mtime +14 -delete",
    ]


# ==== SpamAssassin, clamd, policyd-spf ================================================================


@pytest.mark.daemons
def test_spamassassin_lints_the_local_config(files: dict[str, str], tmp_path: Path) -> None:
    # The site directory also needs the packaged *.pre files that load the plugins (Debian's copies).
    requires("spamassassin")
    for pre in Path("/etc/spamassassin").glob("*.pre"):
        shutil.copy(pre, tmp_path)
    (tmp_path / "local.cf").write_text(files[f"{PROFILE.paths.spamassassin_dir}/local.cf"])
    proc = subprocess.run(
        ["spamassassin", "--lint", f"--siteconfigpath={tmp_path}"], capture_output=True, text=True, timeout=120
    )
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def test_spamassassin_required_score_is_amavis_tag2_level(files: dict[str, str]) -> None:
    lines = files[f"{PROFILE.paths.spamassassin_dir}/local.cf"].splitlines()
    assert [ln for ln in lines if ln.startswith("required_score")] == ["required_score 9.0"]


@pytest.mark.daemons
def test_clamd_config_parses(files: dict[str, str], tmp_path: Path) -> None:
    requires("clamconf")
    (tmp_path / "clamd.conf").write_text(files[PROFILE.paths.clamd_amavis_conf])
    proc = subprocess.run(["clamconf", "-c", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, re.findall(r"^(?:ERROR|WARNING).*$", proc.stdout + proc.stderr, re.M)) == (0, [])


@pytest.mark.daemons
def test_clamd_listens_on_a_socket_only_amavis_can_use(files: dict[str, str], tmp_path: Path) -> None:
    requires("clamconf")
    (tmp_path / "clamd.conf").write_text(files[PROFILE.paths.clamd_amavis_conf])
    out = subprocess.run(["clamconf", "-c", str(tmp_path)], capture_output=True, text=True, timeout=60).stdout
    got = dict(re.findall(r'^(\w+) = "(.*)"$', out, re.M))
    keys = ("LocalSocket", "LocalSocketGroup", "LocalSocketMode", "User", "StreamMaxLength")
    assert {k: got.get(k) for k in keys} == {
        "LocalSocket": "/var/run/clamd.amavisd/clamd.sock",
        "LocalSocketGroup": "amavis",
        "LocalSocketMode": "660",
        "User": "amavis",
        "StreamMaxLength": "26214400",
    }


POLICYD_SPF_READ = """
import json, sys, syslog
messages = []
syslog.syslog = lambda *args: messages.append(str(args[-1]))
from spf_engine import policydspfsupp
config = policydspfsupp._readConfigFile(sys.argv[1], dict(policydspfsupp.defaultConfigData))
keys = ("debugLevel", "TestOnly", "HELO_reject", "Mail_From_reject", "PermError_reject", "TempError_Defer",
        "skip_addresses")
print(json.dumps({"config": {k: config[k] for k in keys}, "messages": messages}))
"""


@pytest.mark.daemons
def test_policyd_spf_reads_its_config(files: dict[str, str], tmp_path: Path) -> None:
    # policyd-spf's own reader (Debian's python3) over its defaults, as the daemon does; it logs unknown or
    # malformed lines to syslog.
    requires("policyd-spf")
    conf = tmp_path / "policyd-spf.conf"
    conf.write_text(files[PROFILE.paths.policyd_spf_conf])
    proc = subprocess.run(
        ["/usr/bin/python3", "-c", POLICYD_SPF_READ, str(conf)], capture_output=True, text=True, timeout=60
    )
    assert json.loads(proc.stdout) == {
        "config": {
            "debugLevel": 1,
            "TestOnly": 1,
            "HELO_reject": "Fail",
            "Mail_From_reject": "Fail",
            "PermError_reject": "False",
            "TempError_Defer": "False",
            "skip_addresses": "127.0.0.0/8,::ffff:127.0.0.0/104,::1",
        },
        "messages": [],
    }


def test_policyd_spf_config_has_no_duplicate_keys(files: dict[str, str]) -> None:
    keys = [
        ln.split("=", 1)[0].strip()
        for ln in files[PROFILE.paths.policyd_spf_conf].splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    assert sorted(k for k in set(keys) if keys.count(k) > 1) == []


def test_softfail_rejection_is_a_config_choice(tmp_path: Path) -> None:
    text = rendered(with_spam(spf_mail_from_reject="Softfail"))[PROFILE.paths.policyd_spf_conf]
    assert re.findall(r"^Mail_From_reject = .*$", text, re.M) == ["Mail_From_reject = Softfail"]


# ==== DNSBLs ==========================================================================================


def test_rendered_main_cf_names_no_sorbs(files: dict[str, str]) -> None:
    assert "sorbs" not in files["/etc/postfix/main.cf"].lower()


def test_dnsbls_come_from_the_config_in_order_and_keep_given_filters() -> None:
    got = postfix.dnsbl_restrictions(("bl.spamcop.net", "key.zen.dq.spamhaus.net=127.0.0.[2..11]", "zen.spamhaus.org"))
    assert got == (
        "reject_rbl_client bl.spamcop.net",
        "reject_rbl_client key.zen.dq.spamhaus.net=127.0.0.[2..11]",
        "reject_rbl_client zen.spamhaus.org=127.0.0.[2..11]",
    )


def test_an_empty_dnsbl_list_renders_no_rbl_check() -> None:
    text = rendered(with_spam(dnsbls=()))["/etc/postfix/main.cf"]
    assert re.findall(r"^\s+reject_rbl_client.*$", text, re.M) == []


# ==== input validation ================================================================================


def test_bad_inputs_are_reported_together() -> None:
    ctx = with_spam(amavis_processes=0, spf_mail_from_reject="Softfial", dnsbls=("not a zone",))
    with pytest.raises(ConfigError) as err:
        render_layer(ctx)
    assert [str(p) for p in err.value.problems] == [
        "spam.amavis_processes: must be at least 1, got 0; it is both smtp-amavis's process limit and "
        "amavisd's $max_servers",
        "spam.spf_mail_from_reject: must be one of Fail, Softfail, SPF_Not_Pass, False, No_Check, got 'Softfial'",
        "spam.dnsbls[0]: must be a DNS zone, optionally with a reply filter (zone=127.0.0.[2..11]), got 'not a zone'",
    ]


# ==== the role script =================================================================================


@pytest.mark.daemons
def test_role_script_passes_shellcheck(files: dict[str, str], tmp_path: Path) -> None:
    requires("shellcheck")
    script = tmp_path / "mailstrata-setup-role"
    script.write_text(files[PROFILE.paths.role_script])
    proc = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, "")


def test_role_script_compiles_the_transport_map(files: dict[str, str]) -> None:
    lines = files[PROFILE.paths.role_script].splitlines()
    assert "/usr/sbin/postmap -c /etc/postfix hash:/etc/postfix/transport" in lines


def test_setup_script_hands_the_ldap_maps_to_postfix(files: dict[str, str]) -> None:
    lines = files[PROFILE.paths.setup_script].splitlines()
    wanted = ["chown root:postfix /etc/postfix/ldap-people.cf", "chmod 0640 /etc/postfix/ldap-people.cf"]
    assert [ln for ln in lines if ln in wanted] == wanted


# ==== live: the relocated server in a network namespace ===============================================


class ProxySMTP(smtplib.SMTP):
    """An SMTP client that first sends the PROXY v1 header an Octavia PROXY pool would send."""

    client_address = "203.0.113.9"  # only text inside the header; nothing is ever sent to it

    def __init__(self, host: str, port: int, *, timeout: float, claim: str | None = None) -> None:
        if claim is not None:
            self.client_address = claim  # a forged header: whatever the sender wants Postfix to believe
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection((host, port), timeout)
        sock.sendall(f"PROXY TCP4 {self.client_address} 127.0.0.1 40000 25\r\n".encode())
        return sock


def _prepare_root(root: Path, os_profile: OsProfile, ctx: LayerContext) -> OsProfile:
    """Render `ctx` with the profile relocated under `root`, write the files with their owners and modes."""
    relocated = profile_with(os_profile.relocated(str(root)), values={"syslog": False})
    install_files(render_layer(ctx, os=relocated).files, root)
    return relocated


@dataclasses.dataclass
class LiveMx:
    ad: SambaAD
    ns: str
    ctx: LayerContext
    os_profile: OsProfile
    maillog: Path
    role_script: subprocess.CompletedProcess[str]

    def postmap_q(self, key: str, table: str) -> subprocess.CompletedProcess[str]:
        pdir = self.os_profile.paths.postfix_dir
        return subprocess.run(
            ["ip", "netns", "exec", self.ns, "postmap", "-c", pdir, "-q", key, table],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def session(self, steps: Callable[[smtplib.SMTP], Any], claim: str | None = None) -> Any:
        """One SMTP session through a PROXY header naming the Internet client, or `claim` (a forged one)."""

        def run() -> Any:
            client = ProxySMTP("127.0.0.1", 25, timeout=30, claim=claim)
            try:
                return steps(client)
            finally:
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    client.quit()

        return self.ad.run_in_netns(run)


@pytest.fixture(scope="module")
def live_mx() -> Iterator[LiveMx]:
    """Samba AD + the MX's Postfix, relocated, in a namespace with only `lo`."""
    requires("samba", "postfix", "postmap", "policyd-spf", "openssl", "ip", root=True)
    with contextlib.ExitStack() as stack:
        root = stack.enter_context(scratch_dir("mx"))
        ns = stack.enter_context(private_netns(f"mstest-mx-{uuid.uuid4().hex[:6]}"))
        ad = stack.enter_context(SambaAD(root / "ad", netns=ns))
        base = _sample.context(ROLE)
        srv = root / "srv"
        directory = dataclasses.replace(
            base.platform.directory, urls=(ad.ldaps_url,), bind_password=Secret(ref=ad.bind_password),
            ca_cert_pem=ad.ca_cert_pem,
        )
        ctx = base.with_platform(directory=directory,
                                 vips=dataclasses.replace(base.platform.vips, mailstore="127.0.0.23"))
        os_profile = _prepare_root(srv, PROFILE, ctx)
        pdir = Path(os_profile.paths.postfix_dir)
        # Test-side additions: what the OS or the common setup script provides on a real server.
        (srv / "etc/aliases").write_text("postmaster: root\n")
        spf = Path(os_profile.paths.policyd_spf)
        spf.parent.mkdir(parents=True, exist_ok=True)
        spf.symlink_to(shutil.which("policyd-spf") or "/usr/bin/policyd-spf")  # Debian's binary at CentOS's path
        tls = Path(os_profile.paths.tls_dir)
        tls.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
             "-subj", "/CN=smtp-in-01.test", "-keyout", str(tls / "server.key"), "-out", str(tls / "server.crt")],
            check=True, capture_output=True,
        )  # fmt: skip
        queue, data = root / "queue", root / "data"
        queue.mkdir()
        data.mkdir()
        shutil.chown(data, "postfix", "postfix")
        maillog = root / "maillog"
        with (pdir / "main.cf").open("a") as fh:  # test-side: scratch queue, a log file, an FQDN host name
            fh.write(
                f"queue_directory = {queue}\ndata_directory = {data}\nmaillog_file = {maillog}\n"
                f"maillog_file_prefixes = {root}\nmyhostname = smtp-in-01.test\n"
            )
        with (pdir / "master.cf").open("a") as fh:  # Postfix 3.4+ writes maillog_file through postlogd
            fh.write("postlog unix-dgram n - n - 1 postlogd\n")
        role = subprocess.run(["bash", os_profile.paths.role_script], capture_output=True, text=True, timeout=120)
        postfix = subprocess.Popen(
            ["ip", "netns", "exec", ns, "postfix", "-c", str(pdir), "start-fg"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack.callback(stop, postfix, 20)
        # Runs before _stop: the master outlives a signal to the foreground wrapper, so ask Postfix itself.
        stack.callback(subprocess.run, ["ip", "netns", "exec", ns, "postfix", "-c", str(pdir), "stop"],
                       capture_output=True, check=False, timeout=60)
        wait_for(lambda: listening(ns, "0.0.0.0:25"), "Postfix listening on 25", interval=0.2)
        yield LiveMx(ad=ad, ns=ns, ctx=ctx, os_profile=os_profile, maillog=maillog, role_script=role)


def _ldap(live: LiveMx, name: str) -> str:
    return f"ldap:{live.os_profile.paths.postfix_dir}/{name}"


@pytest.mark.daemons
def test_ldap_people_map_finds_a_directory_user(live_mx: LiveMx) -> None:
    proc = live_mx.postmap_q("usuario01@domain01.dom", _ldap(live_mx, "ldap-people.cf"))
    assert (proc.returncode, proc.stdout) == (0, "usuario01@domain01.dom\n")


@pytest.mark.daemons
def test_ldap_people_map_finds_a_user_of_the_second_domain(live_mx: LiveMx) -> None:
    proc = live_mx.postmap_q("usuario05@domain02.dom", _ldap(live_mx, "ldap-people.cf"))
    assert (proc.returncode, proc.stdout) == (0, "usuario05@domain02.dom\n")


@pytest.mark.daemons
def test_ldap_people_map_does_not_find_an_unknown_address(live_mx: LiveMx) -> None:
    proc = live_mx.postmap_q("nobody@domain01.dom", _ldap(live_mx, "ldap-people.cf"))
    assert (proc.returncode, proc.stdout) == (1, "")


@pytest.mark.daemons
def test_ldap_people_map_does_not_return_groups(live_mx: LiveMx) -> None:
    proc = live_mx.postmap_q("ventas@domain01.dom", _ldap(live_mx, "ldap-people.cf"))
    assert (proc.returncode, proc.stdout) == (1, "")


@pytest.mark.daemons
def test_ldap_groups_map_finds_a_distribution_list(live_mx: LiveMx) -> None:
    proc = live_mx.postmap_q("ventas@domain01.dom", _ldap(live_mx, "ldap-groups.cf"))
    assert (proc.returncode, proc.stdout) == (0, "ventas@domain01.dom\n")


@pytest.mark.daemons
def test_ldap_people_map_over_starttls_finds_a_directory_user(live_mx: LiveMx, tmp_path: Path) -> None:
    directory = dataclasses.replace(live_mx.ctx.platform.directory, urls=(live_mx.ad.ldap_url,), tls=LdapTls.STARTTLS)
    text = rendered(live_mx.ctx.with_platform(directory=directory), live_mx.os_profile)[
        f"{live_mx.os_profile.paths.postfix_dir}/ldap-people.cf"
    ]
    (tmp_path / "ldap-people.cf").write_text(text)
    proc = live_mx.postmap_q("usuario01@domain01.dom", f"ldap:{tmp_path}/ldap-people.cf")
    assert (proc.returncode, proc.stdout, "start_tls = yes" in text.splitlines()) == (
        0,
        "usuario01@domain01.dom\n",
        True,
    )


def _rcpt(to: str, helo: str = "mail.example.net") -> Callable[[smtplib.SMTP], tuple[int, bytes]]:
    def steps(s: smtplib.SMTP) -> tuple[int, bytes]:
        s.ehlo(helo)
        s.mail("<>")
        return s.rcpt(to)

    return steps


@pytest.mark.daemons
def test_live_role_script_runs_clean(live_mx: LiveMx) -> None:
    assert (live_mx.role_script.returncode, live_mx.role_script.stderr) == (0, "")


@pytest.mark.daemons
def test_live_unknown_recipient_is_rejected_at_rcpt(live_mx: LiveMx) -> None:
    code, text = live_mx.session(_rcpt("nobody@domain01.dom"))
    assert (code, text.decode()) == (
        554, "5.1.1 <nobody@domain01.dom>: Recipient address rejected: User unknown in relay recipient table",
    )  # fmt: skip


@pytest.mark.daemons
def test_live_directory_user_is_accepted(live_mx: LiveMx) -> None:
    assert live_mx.session(_rcpt("usuario01@domain01.dom")) == (250, b"2.1.5 Ok")


@pytest.mark.daemons
def test_live_distribution_list_is_accepted(live_mx: LiveMx) -> None:
    assert live_mx.session(_rcpt("ventas@domain01.dom")) == (250, b"2.1.5 Ok")


@pytest.mark.daemons
def test_live_relay_is_denied_although_the_lb_connects_from_a_trusted_address(live_mx: LiveMx) -> None:
    # The TCP peer is 127.0.0.1 (inside mynetworks); the PROXY header names the real client: no relay.
    code, text = live_mx.session(_rcpt("someone@example.org"))
    assert (code, text.decode()) == (554, "5.7.1 <someone@example.org>: Relay access denied")


def _forged_claims() -> dict[str, str]:
    """What a forged PROXY header may name: loopback, each platform subnet and the VIP subnet (only text)."""
    net = _sample.context(ROLE).platform.networks
    hosts = {f"{r.value} subnet": str(next(ipaddress.ip_network(c[0]).hosts())) for r, c in net.servers.items() if c}
    return {"loopback": "127.0.0.1", **hosts, "VIP subnet": str(next(ipaddress.ip_network(net.vip_subnet[0]).hosts()))}


@pytest.mark.daemons
@pytest.mark.parametrize("claim", sorted(_forged_claims()))
def test_live_forged_proxy_headers_relay_nothing(live_mx: LiveMx, claim: str) -> None:
    # Issue 9: anything that reaches a member's port 25 can send a PROXY header naming any address.
    code, text = live_mx.session(_rcpt("someone@example.org"), claim=_forged_claims()[claim])
    assert (code, text.decode()) == (554, "5.7.1 <someone@example.org>: Relay access denied")


@pytest.mark.daemons
def test_live_client_address_comes_from_the_proxy_header(live_mx: LiveMx) -> None:
    live_mx.session(_rcpt("nobody@domain01.dom", helo="proxy-check.example.net"))

    def logged() -> list[str]:
        return [ln for ln in live_mx.maillog.read_text().splitlines() if "helo=<proxy-check.example.net>" in ln]

    wait_for(lambda: bool(logged()), "the rejection in the maillog", timeout=10, interval=0.2)
    assert [m.group(1) for ln in logged() if (m := re.search(r"RCPT from (\S+):", ln))] == ["unknown[203.0.113.9]"]


@pytest.mark.daemons
def test_live_vrfy_is_disabled(live_mx: LiveMx) -> None:
    def steps(s: smtplib.SMTP) -> tuple[int, bytes]:
        s.ehlo("mail.example.net")
        return s.verify("usuario01@domain01.dom")

    assert live_mx.session(steps) == (502, b"5.5.1 VRFY command is disabled")


@pytest.mark.daemons
def test_live_mail_before_helo_is_refused(live_mx: LiveMx) -> None:
    assert live_mx.session(lambda s: s.mail("<>")) == (503, b"5.5.1 Error: send HELO/EHLO first")


@pytest.mark.daemons
def test_live_starttls_negotiates_tls_1_2_or_newer(live_mx: LiveMx) -> None:
    def steps(s: smtplib.SMTP) -> str | None:
        s.ehlo("mail.example.net")
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE  # the test certificate is self-signed, like the first-boot one
        s.starttls(context=tls)
        return s.sock.version() if isinstance(s.sock, ssl.SSLSocket) else None

    assert live_mx.session(steps) in ("TLSv1.2", "TLSv1.3")


# ---- live: amavisd + its clamd ------------------------------------------------------------------------

SINK = r"""
import socket, sys, threading
out = sys.argv[1]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 10025))
srv.listen(8)
def handle(conn):
    f = conn.makefile("rwb")
    def say(text):
        f.write(text.encode() + b"\r\n"); f.flush()
    say("220 sink ESMTP")
    while True:
        line = f.readline()
        if not line:
            break
        cmd = line.decode(errors="replace").strip().upper()
        if cmd.startswith(("EHLO", "HELO")):
            say("250-sink"); say("250 8BITMIME")
        elif cmd == "DATA":
            say("354 go ahead")
            data = []
            while True:
                part = f.readline()
                if part in (b".\r\n", b".\n", b""):
                    break
                data.append(part)
            with open(out, "ab") as o:
                o.write(b"".join(data) + b"\n--end--\n")
            say("250 2.0.0 Ok: queued as SINK")
        elif cmd == "QUIT":
            say("221 bye"); break
        else:
            say("250 2.0.0 Ok")
    conn.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
"""


@dataclasses.dataclass
class LiveAmavis:
    ns: str
    amavisd: subprocess.Popen[bytes]
    sink_file: Path
    log: Path

    def send(self, subject: str, body: str) -> tuple[int, bytes]:
        message = (
            f"From: sender@example.org\r\nTo: usuario01@domain01.dom\r\nSubject: {subject}\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@example.org>\r\n\r\n{body}\r\n"
        )
        script = (
            "import smtplib, sys\n"
            "s = smtplib.SMTP('127.0.0.1', 10024, timeout=120)\n"
            "s.ehlo('localhost'); s.mail('sender@example.org'); s.rcpt('usuario01@domain01.dom')\n"
            "code, text = s.data(sys.stdin.read().encode()); s.quit()\n"
            "print(code); print(text.decode())\n"
        )
        proc = subprocess.run(
            ["ip", "netns", "exec", self.ns, sys.executable, "-c", script],
            input=message,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert proc.returncode == 0, proc.stderr
        code, text = proc.stdout.splitlines()[:2]
        return int(code), text.encode()


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                kids.append(int(stat.parent.name))
    return kids


@pytest.fixture(scope="module")
def live_amavis() -> Iterator[LiveAmavis]:
    """clamd (one EICAR signature) + amavisd, relocated, and an SMTP sink standing in for Postfix on 10025."""
    requires("amavisd", "clamd", "ip", root=True)
    if not _user_exists("amavis"):
        unavailable("the amavis user does not exist", why="amavisd runs as amavis",
                    install="make deps-apt installs amavisd-new")
    with contextlib.ExitStack() as stack:
        root = stack.enter_context(scratch_dir("amavis"))
        ns = stack.enter_context(private_netns(f"mstest-av-{uuid.uuid4().hex[:6]}"))
        os_profile = _prepare_root(root / "srv", PROFILE, _sample.context(ROLE))
        p = os_profile.paths
        for d in (p.amavis_home, p.amavis_tmp_dir, p.amavis_db_dir, p.amavis_quarantine_dir, p.amavis_run_dir,
                  p.clamd_amavis_run_dir, str(Path(p.amavis_log).parent)):  # fmt: skip
            Path(d).mkdir(parents=True, exist_ok=True)
            shutil.chown(d, "amavis", "amavis")
        # Test-side: a one-signature database (no freshclam here), clamd in the foreground, an FQDN.
        db = Path(p.clamav_db_dir)
        db.mkdir(parents=True, exist_ok=True)
        (db / "mailstrata-test.ndb").write_text(f"Mailstrata.Test.EICAR:0:*:{EICAR.encode().hex()}\n")
        clamd_conf = Path(p.clamd_amavis_conf)
        clamd_conf.write_text(clamd_conf.read_text() + "Foreground yes\n")
        amavis_conf = Path(p.amavisd_conf)
        text = amavis_conf.read_text()
        end = text.rindex("1;")
        amavis_conf.write_text(
            text[:end] + "$myhostname = 'smtp-in-01.test';  # test-side: this host's name is short\n" + text[end:]
        )
        sink_file = root / "sink.eml"
        sink = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SINK, str(sink_file)])
        stack.callback(stop, sink, 20)
        clamd = subprocess.Popen(
            ["ip", "netns", "exec", ns, "clamd", f"--config-file={clamd_conf}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack.callback(stop, clamd, 20)
        wait_for(lambda: listening(ns, p.clamd_amavis_socket), "clamd listening", interval=0.2)
        amavisd = subprocess.Popen(
            ["ip", "netns", "exec", ns, "amavisd", "-c", str(amavis_conf), "foreground"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack.callback(stop, amavisd, 20)
        wait_for(lambda: listening(ns, "127.0.0.1:10024"), "amavisd listening", timeout=120, interval=0.2)
        wait_for(lambda: listening(ns, "127.0.0.1:10025"), "the sink listening", interval=0.2)
        yield LiveAmavis(ns=ns, amavisd=amavisd, sink_file=sink_file, log=Path(p.amavis_log))


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.mark.daemons
def test_live_amavisd_runs_as_many_children_as_smtp_amavis_processes(live_amavis: LiveAmavis) -> None:
    wait_for(lambda: len(_children(live_amavis.amavisd.pid)) >= 16, "16 amavisd children", timeout=60, interval=0.2)
    time.sleep(1)  # a 17th would show up now
    assert len(_children(live_amavis.amavisd.pid)) == 16


@pytest.mark.daemons
def test_live_virus_is_discarded_through_clamd_instream(live_amavis: LiveAmavis) -> None:
    code, text = live_amavis.send("eicar", EICAR)
    assert (code, re.sub(r"id=\S+ ", "id=X ", text.decode())) == (
        250, "2.7.0 Ok, discarded, id=X - INFECTED: Mailstrata.Test.EICAR.UNOFFICIAL",
    )  # fmt: skip


@pytest.mark.daemons
def test_live_spam_above_kill_level_is_discarded(live_amavis: LiveAmavis) -> None:
    code, text = live_amavis.send("gtube", GTUBE)
    assert (code, re.sub(r"id=\S+ ", "id=X ", text.decode())) == (250, "2.7.0 Ok, discarded, id=X - spam")


@pytest.mark.daemons
def test_live_clean_mail_is_reinjected_with_spam_headers(live_amavis: LiveAmavis) -> None:
    code, _ = live_amavis.send("hello", "A perfectly ordinary message.")
    last = live_amavis.sink_file.read_text().replace("\r\n", "\n").split("\n--end--\n")[-2]
    headers = last.split("\n\n", 1)[0]
    assert (code, "X-Spam-Flag: NO" in headers.splitlines()) == (250, True)
