"""The twin enforces the synthesized security groups, and the amphorae sit where Octavia puts them (issue 10,
item 2 "The load balancers' own traffic is blocked").

The twin installs the `openstack_networking_secgroup_*` resources of cdk.tf.json as iptables rules in its
namespace (mailstrata/twin/firewall.py: stateful, ingress denied unless a rule allows it, remote groups as
their ports' addresses) and gives each load balancer's HAProxy an address on the subnet its members name, as
Octavia plugs an amphora into the member subnet (mailstrata/octavia.py). So a rule that admits the wrong
source shows up as members DOWN, as it would on OpenStack.

The last tests take the twin's own cdk.tf.json, put back the rule of before (the load-balancer ports open
to the VIP subnet only), and apply both rule sets with the real iptables in a private namespace: the
amphora's connection to a member is dropped by the old rule and admitted by the new one.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailstrata.config import load_config
from mailstrata.twin import firewall, netns
from mailstrata.twin.platform import address_plan, twin_config
from mailstrata.twin.twin import members_not_up
from mailstrata.userdata.daemons.amavis import REINJECT_PORT
from tests.support.netns import NetNs
from tests.twin.helpers import Platform

pytestmark = pytest.mark.twin

DROPPED = "dropped"
ROLES = ("smtp_in", "smtp_out", "mailstore", "webmail")
VIP_SUBNET_PROBE = "127.20.0.200"  # an address on the VIP subnet, where the rules of before admitted LB traffic
RELAY_PORT = 2525  # smtp-out's internal relay, open to the mailstores' security group only


def connect(source: str, host: str, port: int, timeout: float = 1.5) -> str:
    """'open', 'refused', or DROPPED (no answer at all: a security group drops silently)."""
    try:
        with socket.create_connection((host, port), timeout=timeout, source_address=(source, 0)):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return DROPPED


def in_twin(platform: Platform, source: str, host: str, port: int) -> str:
    return platform.run(connect, source, host, port)


def _twin_subnet(platform: Platform, role: str) -> ipaddress.IPv4Network:
    return ipaddress.ip_network(f"{platform.info.servers_of(role)[0].address}/24", strict=False)


# ---- on the running twin --------------------------------------------------------------------------------


def test_the_twins_namespace_holds_a_chain_for_every_server(platform: Platform) -> None:
    rules = subprocess.run(["ip", "netns", "exec", platform.info.netns, "iptables-save", "-t", "filter"],
                           capture_output=True, text=True, check=True).stdout
    guarded = {ln.split()[3].split("/")[0] for ln in rules.splitlines() if ln.startswith("-A INPUT -d ")}
    assert guarded == {s.address for s in platform.info.servers}


@pytest.mark.parametrize("role", ROLES)
def test_each_amphora_sits_on_its_members_subnet_not_on_the_vip_subnet(platform: Platform, role: str) -> None:
    amphora = ipaddress.ip_address(platform.amphora(role))
    assert (amphora in _twin_subnet(platform, role), amphora in ipaddress.ip_network("127.20.0.0/24"),
            platform.amphora(role) in {s.address for s in platform.info.servers}) == (True, False, False)


@pytest.mark.parametrize("role", ROLES)
def test_every_member_is_up_through_health_checks_from_the_amphoras_member_subnet_address(
    platform: Platform, role: str,
) -> None:
    assert members_not_up(platform.info.netns, platform.info.haproxy_sockets[role]) == []
    # and the checks came in through the rules that admit the member subnet (their packet counters moved)
    counted = subprocess.run(["ip", "netns", "exec", platform.info.netns, "iptables", "-L", "-v", "-n", "-x"],
                             capture_output=True, text=True, check=True).stdout
    subnet = str(_twin_subnet(platform, role))
    hits = [int(ln.split()[0]) for ln in counted.splitlines() if f" {subnet} " in ln and "-lb0" in ln]
    assert hits and all(n > 0 for n in hits), counted


def test_the_amphora_reaches_a_member_port_and_the_vip_subnet_no_longer_does(platform: Platform) -> None:
    server = platform.info.servers_of("smtp_in")[0].address
    assert (in_twin(platform, platform.amphora("smtp_in"), server, 25),
            in_twin(platform, VIP_SUBNET_PROBE, server, 25)) == ("open", DROPPED)


def test_a_port_no_rule_opens_is_unreachable_from_another_subnet(platform: Platform) -> None:
    # Postfix's re-injection smtpd listens on the smtp-in server's own address (its "localhost"), and no rule
    # opens it: the server itself reaches it, a mailstore server and the Internet do not.
    server = platform.info.servers_of("smtp_in")[0].address
    mailstore = platform.info.servers_of("mailstore")[0].address
    got = {src: in_twin(platform, src, server, REINJECT_PORT) for src in (server, mailstore, platform.internet)}
    assert got == {server: "open", mailstore: DROPPED, platform.internet: DROPPED}


def test_a_port_opened_to_a_remote_group_admits_that_groups_servers_only(platform: Platform) -> None:
    relay = platform.info.servers_of("smtp_out")[0].address
    allowed = {s.address for s in platform.info.servers_of("mailstore")}
    others = {s.address for r in ("smtp_in", "webmail") for s in platform.info.servers_of(r)}
    others |= {platform.amphora("smtp_out"), platform.corporate}
    got = {src: in_twin(platform, src, relay, RELAY_PORT) for src in sorted(allowed | others)}
    assert got == {src: "open" if src in allowed else DROPPED for src in got}


# ---- a deliberately wrong rule, with the real iptables in a private namespace ---------------------------


def _twin_doc(platform: Platform) -> dict[str, Any]:
    [path] = (Path(platform.info.root) / "synth" / "stacks").glob("*/cdk.tf.json")
    return json.loads(path.read_text())


def _vip_subnet_only(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` with every load-balancer rule back to the VIP subnet only (the stack's rule before issue 10)."""
    out = copy.deepcopy(doc)
    vip = load_config(None).network.vip_subnet_cidr
    rules = out["resource"]["openstack_networking_secgroup_rule_v2"]
    lb = [r for key, r in rules.items() if "-lb" in key]
    assert lb, "no load-balancer rules in cdk.tf.json"
    for r in lb:
        r["remote_ip_prefix"] = vip
    return out


@pytest.fixture
def twin_plan() -> Iterator[Any]:
    yield address_plan(twin_config(None))


def _probe(doc: dict[str, Any], plan: Any, platform: Platform, role: str, port: int) -> str:
    """Apply `doc`'s security groups to a new namespace holding the twin's addresses for one member and its
    amphora, listen on the member's port, and connect from the amphora."""
    member = platform.info.servers_of(role)[0]
    amphora = platform.amphora(role)
    rules = firewall.rule_set(doc, port_address={member.name: member.address}.get, cidr=plan.cidr)
    with NetNs.create("ms-sg", addresses=()) as ns:
        for a in (member.address, amphora):
            ns.run(["ip", "addr", "add", f"{a}/32", "dev", "lo"], check=True)
        firewall.install(ns.name, rules)

        def go() -> str:
            with socket.create_server((member.address, port)):
                return connect(amphora, member.address, port)

        return netns.in_netns(ns.name, go)


@pytest.mark.parametrize(("role", "port"), [("smtp_in", 25), ("mailstore", 143), ("webmail", 443)])
def test_the_rule_of_before_drops_the_amphoras_connection_and_the_synthesized_one_admits_it(
    platform: Platform, twin_plan: Any, role: str, port: int,
) -> None:
    doc = _twin_doc(platform)
    assert (_probe(_vip_subnet_only(doc), twin_plan, platform, role, port),
            _probe(doc, twin_plan, platform, role, port)) == (DROPPED, "open")
