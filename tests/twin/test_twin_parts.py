"""The twin's parts that need no root: HAProxy from cdk.tf.json, the address plan, Terraform's evaluation,
the debian12 profile and the text rules. (The end-to-end behaviours are in the other modules.)"""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mailstrata.roles import Role
from mailstrata.terraform_eval import StandIns, TerraformEvalError
from mailstrata.twin import haproxy
from mailstrata.twin.addresses import AddressPlan
from mailstrata.twin.dns import dnsbl_name
from mailstrata.twin.render import localize
from mailstrata.twin.services import plist_pairs
from mailstrata.twin.terraform import UnresolvedReference, evaluate_stack
from mailstrata.userdata.profiles import load_profile
from tests.support.requires import requires
from tests.support.synth import default_platform

VIPS = {"mail-smtp-in": "127.20.0.10", "mail-smtp-out": "127.20.0.11", "mail-mailstore": "127.20.0.12",
        "mail-webmail": "127.20.0.13"}


def _plan() -> AddressPlan:
    return AddressPlan.build(
        server_cidrs={Role.NFS_SERVER: "10.10.5.0/24", Role.SMTP_IN: "10.10.1.0/24", Role.SMTP_OUT: "10.10.2.0/24",
                      Role.MAILSTORE: "10.10.3.0/24", Role.WEBMAIL: "10.10.4.0/24"},
        vip_cidr="10.20.0.0/24", client_cidrs=("10.0.0.0/8",), admin_cidrs=("10.99.0.0/24",),
    )


@pytest.fixture(scope="module")
def lbs() -> dict[str, haproxy.LoadBalancer]:
    plan = _plan()
    index = {"smtp-in": 11, "smtp-out": 21, "mailstore": 31, "webmail": 41}

    def member(name: str) -> str:
        role = name.removeprefix("mail-").rsplit("-", 1)[0]
        return f"127.10.0.{index[role] + int(name.rsplit('-', 1)[1]) - 1}"

    return haproxy.load_balancers(default_platform(), vip_of=VIPS.__getitem__, member_address=member,
                                  cidr=plan.cidr)


def _cfg(lbs: dict[str, haproxy.LoadBalancer], name: str) -> str:
    return haproxy.haproxy_cfg(lbs[name], stats_socket="/run/x.sock", pid_file="/run/x.pid")


def _section(cfg: str, header: str) -> list[str]:
    lines = cfg.splitlines()
    start = lines.index(header)
    end = next((i for i in range(start + 1, len(lines)) if lines[i] and not lines[i].startswith(" ")), len(lines))
    return [ln.strip() for ln in lines[start + 1:end] if ln.strip()]


# ---- HAProxy as Octavia's amphora -------------------------------------------------------------------------


def test_every_load_balancer_of_the_stack_gets_an_haproxy(lbs: dict[str, haproxy.LoadBalancer]) -> None:
    assert {name: [lst.port for lst in lb.listeners] for name, lb in lbs.items()} == {
        "mail-mailstore": [25, 110, 143, 993, 995, 4190], "mail-smtp-in": [25], "mail-smtp-out": [587],
        "mail-webmail": [80, 443]}


def test_smtp_in_frontend_is_open_to_the_internet(lbs: dict[str, haproxy.LoadBalancer]) -> None:
    assert _section(_cfg(lbs, "mail-smtp-in"), "frontend mail-smtp-in-25") == [
        "bind 127.20.0.10:25", "mode tcp", "timeout client 300000", "default_backend mail-smtp-in-25-pool"]


def test_smtp_in_pool_sends_proxy_with_least_connections_and_tcp_checks(lbs: dict[str, haproxy.LoadBalancer]) -> None:
    assert _section(_cfg(lbs, "mail-smtp-in"), "backend mail-smtp-in-25-pool") == [
        "mode tcp", "balance leastconn", "timeout check 4s", "option allbackups", "timeout server 300000",
        "server mail-smtp-in-01 127.10.0.11:25 weight 1 check inter 5s fall 3 rise 3 send-proxy",
        "server mail-smtp-in-02 127.10.0.12:25 weight 1 check inter 5s fall 3 rise 3 send-proxy"]


def test_allowed_cidrs_become_a_reject_rule_with_twin_networks(lbs: dict[str, haproxy.LoadBalancer]) -> None:
    lines = _section(_cfg(lbs, "mail-mailstore"), "frontend mail-mailstore-143")
    # the corporate clients and webmail (issue 9: no other layer reads mail)
    assert lines[3:5] == ["acl allowed-cidrs src 127.100.0.0/16 127.13.0.0/24",
                          "tcp-request connection reject unless allowed-cidrs"]


def test_source_ip_persistence_is_a_stick_table_on_src(lbs: dict[str, haproxy.LoadBalancer]) -> None:
    lines = _section(_cfg(lbs, "mail-mailstore"), "backend mail-mailstore-143-pool")
    assert lines[1:4] == ["balance leastconn", "stick-table type ip size 10k", "stick on src"]


def test_delivery_pool_is_round_robin(lbs: dict[str, haproxy.LoadBalancer]) -> None:
    assert "balance roundrobin" in _section(_cfg(lbs, "mail-mailstore"), "backend mail-mailstore-25-pool")


def test_https_monitor_checks_the_health_page_over_tls(lbs: dict[str, haproxy.LoadBalancer]) -> None:
    lines = _section(_cfg(lbs, "mail-webmail"), "backend mail-webmail-443-pool")
    assert (lines[5:7], lines[-1]) == (
        ["option httpchk GET /healthz", "http-check expect rstatus 200"],
        "server mail-webmail-02 127.10.0.42:443 weight 1 check check-ssl verify none inter 5s fall 3 rise 3 "
        "send-proxy")


def test_long_sessions_keep_their_timeouts(lbs: dict[str, haproxy.LoadBalancer]) -> None:
    cfg = _cfg(lbs, "mail-mailstore")
    assert ("timeout client 1860000" in _section(cfg, "frontend mail-mailstore-143"),
            "timeout server 1860000" in _section(cfg, "backend mail-mailstore-143-pool")) == (True, True)


def test_algorithm_without_haproxy_equivalent_is_an_error() -> None:
    doc: dict[str, Any] = {"resource": {
        "openstack_lb_loadbalancer_v2": {"lb": {"name": "x"}},
        "openstack_lb_listener_v2": {"l": {"name": "x-1", "loadbalancer_id": "${openstack_lb_loadbalancer_v2.lb.id}",
                                           "protocol": "TCP", "protocol_port": 1}},
        "openstack_lb_pool_v2": {"p": {"listener_id": "${openstack_lb_listener_v2.l.id}", "protocol": "TCP",
                                       "lb_method": "WEIGHTED_RANDOM"}}}}
    with pytest.raises(haproxy.LbConfigError, match="lb_method 'WEIGHTED_RANDOM' has no HAProxy equivalent"):
        haproxy.load_balancers(doc, vip_of=lambda n: "127.20.0.1", member_address=str, cidr=str)


@pytest.mark.daemons
def test_haproxy_accepts_every_generated_configuration(lbs: dict[str, haproxy.LoadBalancer], tmp_path: Path) -> None:
    requires("haproxy", why="to check the generated configurations")
    results = {}
    for name in lbs:
        path = tmp_path / f"{name}.cfg"
        path.write_text(_cfg(lbs, name))
        proc = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True)
        results[name] = (proc.returncode, "WARNING" in proc.stdout + proc.stderr)
    assert results == {name: (0, False) for name in lbs}


# ---- addresses, DNS test data, text rules -----------------------------------------------------------------


def test_every_twin_address_is_loopback() -> None:
    plan = _plan()
    addresses = plan.all_addresses([plan.server(r, 1) for r in (Role.SMTP_IN, Role.MAILSTORE)])
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network("127.0.0.0/8") for a in addresses)


def test_the_internet_is_outside_every_network_of_the_platform() -> None:
    plan = _plan()
    internet = ipaddress.ip_network(plan.internet)
    assert [t for t in plan.networks.values() if ipaddress.ip_network(t).overlaps(internet)] == []


def test_host_loopback_becomes_the_servers_own_loopback() -> None:
    assert localize("mynetworks = 127.0.0.0/8 10.10.0.0/24\nskip_addresses = 127.0.0.0/8,::1\nx 127.0.0.0/80") == (
        "mynetworks = 127.0.0.1/32 10.10.0.0/24\nskip_addresses = 127.0.0.1/32,::1\nx 127.0.0.0/80")


def test_dnsbl_names_reverse_the_client_address() -> None:
    assert dnsbl_name("127.200.0.66", "zen.spamhaus.org") == "66.0.200.127.zen.spamhaus.org"


# ---- Terraform's part -------------------------------------------------------------------------------------


_DKIM_RECORD = ('"v=DKIM1; k=rsa; p=${replace(replace(replace(tls_private_key.k.public_key_pem, '
                '\"-----BEGIN PUBLIC KEY-----\", \"\"), \"-----END PUBLIC KEY-----\", \"\"), \"\\n\", \"\")}"')
_DOC: dict[str, Any] = {
    "variable": {"p": {"type": "string", "sensitive": True}},
    "resource": {"tls_private_key": {"k": {}}, "openstack_networking_port_v2": {"a": {}}},
    "locals": {"body": ["pw=${var.p} ip=${element(openstack_networking_port_v2.a.all_fixed_ips, 0)} sh=$${HOME}"]},
    "output": {"dns_records": {"value": [{"name": "k._domainkey.d.", "type": "TXT", "value": _DKIM_RECORD}]}},
}
_STANDINS = StandIns(
    attributes={"tls_private_key.k.public_key_pem": "-----BEGIN PUBLIC KEY-----\nAB\nCD\n-----END PUBLIC KEY-----\n",
                "openstack_networking_port_v2.a.all_fixed_ips": ["127.10.0.11"]},
    variables={"p": "s3cret"},
)


def test_terraform_evaluates_the_dkim_record_with_the_twins_key(tmp_path: Path) -> None:
    values = evaluate_stack(_DOC, _STANDINS, outputs=["dns_records"], workdir=tmp_path)
    [record] = values.output("dns_records")
    assert record == {"name": "k._domainkey.d.", "type": "TXT", "value": '"v=DKIM1; k=rsa; p=ABCD"'}


def test_substitute_puts_terraforms_values_in_place_of_references_only(tmp_path: Path) -> None:
    values = evaluate_stack(_DOC, _STANDINS, workdir=tmp_path)
    token = "${TfToken[TOKEN.1]}"
    resolve = {token: "${element(openstack_networking_port_v2.a.all_fixed_ips, 0)}"}.get
    text = "pw=${var.p} ip=" + token + " sh=${HOME} d=%{ldap:x}"
    assert values.substitute(text, lambda s: resolve(s) or s) == "pw=s3cret ip=127.10.0.11 sh=${HOME} d=%{ldap:x}"


def test_a_reference_without_stand_in_is_an_error_naming_it(tmp_path: Path) -> None:
    values = evaluate_stack(_DOC, _STANDINS, workdir=tmp_path)
    with pytest.raises(TerraformEvalError, match="no stand-in value for tls_private_key.k.private_key_pem"):
        values.substitute("k=${base64encode(tls_private_key.k.private_key_pem)}")
    with pytest.raises(UnresolvedReference, match="var.nope"):
        values.lookup("var.nope")


# ---- the debian12 profile and SOGo's settings -------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.SMTP_IN, Role.SMTP_OUT, Role.MAILSTORE, Role.WEBMAIL, Role.NFS_SERVER])
def test_debian12_profile_has_the_same_keys_as_centos7(role: Role) -> None:
    deb, cen = load_profile("debian12", role), load_profile("centos7", role)
    sections = ("versions", "paths", "users", "commands", "values")
    assert {s: sorted(getattr(deb, s)) for s in sections} == {s: sorted(getattr(cen, s)) for s in sections}


def test_sogo_settings_keep_urls_with_slashes() -> None:
    text = '{\n  // a comment\n  A = "ldaps://dc1:636"; /* another */ B = (x, "y;z");\n  C = { d = 1; };\n}\n'
    assert plist_pairs(text) == [("A", '"ldaps://dc1:636"'), ("B", '(x, "y;z")'), ("C", "{ d = 1; }")]
