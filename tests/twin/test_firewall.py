"""mailstrata/twin/firewall.py: the default platform's security groups as the twin enforces them (no twin
needed; iptables-restore judges the generated rule set in a private namespace)."""

from __future__ import annotations

import copy
import subprocess
from typing import Any

import pytest

from mailstrata.twin import firewall
from mailstrata.twin.platform import address_plan, twin_config
from tests.support.netns import NetNs
from tests.support.requires import requires, requires_netns
from tests.support.synth import default_platform

PLAN = address_plan(twin_config(None))
SERVERS = {"mail-smtp-in-01": "127.10.0.11", "mail-smtp-out-01": "127.11.0.21", "mail-mailstore-01": "127.12.0.31",
           "mail-mailstore-02": "127.12.0.32", "mail-webmail-01": "127.13.0.41"}


def rules_for(doc: dict[str, Any]) -> firewall.RuleSet:
    return firewall.rule_set(doc, port_address=SERVERS.get, cidr=PLAN.cidr)


def port_rules(rs: firewall.RuleSet, name: str) -> set[tuple[str | None, int | None, tuple[str, ...] | None]]:
    [port] = [p for p in rs.ports if p.name == name]
    return {(r.protocol, r.port_min, r.sources) for r in rs.rules_of(port)}


def test_given_the_default_platform_then_only_the_servers_the_twin_runs_are_guarded() -> None:
    assert sorted(p.name for p in rules_for(default_platform()).ports) == sorted(SERVERS)


def test_given_the_default_platform_then_smtp_in_admits_25_from_its_members_subnet_and_ssh_from_admins() -> None:
    assert port_rules(rules_for(default_platform()), "mail-smtp-in-01") == {
        ("tcp", 25, ("127.10.0.0/24",)), ("tcp", 22, ("127.99.0.0/24",))}


def test_given_a_remote_group_rule_then_its_sources_are_that_groups_twin_addresses() -> None:
    relay = {r for r in port_rules(rules_for(default_platform()), "mail-smtp-out-01") if r[1] == 2525}
    assert relay == {("tcp", 2525, ("127.12.0.31/32", "127.12.0.32/32"))}


def test_given_a_group_without_default_egress_rules_then_it_is_refused() -> None:
    doc = copy.deepcopy(default_platform())
    key = next(iter(doc["resource"]["openstack_networking_secgroup_v2"]))
    doc["resource"]["openstack_networking_secgroup_v2"][key]["delete_default_rules"] = True
    with pytest.raises(firewall.FirewallError, match=rf"openstack_networking_secgroup_v2\.{key}: delete_default_rules"):
        rules_for(doc)


def test_given_a_rule_from_a_network_the_config_does_not_name_then_the_rule_is_named() -> None:
    doc = copy.deepcopy(default_platform())
    rules = doc["resource"]["openstack_networking_secgroup_rule_v2"]
    key = next(k for k, r in rules.items() if r.get("remote_ip_prefix"))
    rules[key]["remote_ip_prefix"] = "192.0.2.0/24"
    with pytest.raises(firewall.FirewallError, match=rf"secgroup_rule_v2\.{key}\.remote_ip_prefix: 192.0.2.0/24"):
        rules_for(doc)


def test_iptables_accepts_the_generated_rule_set() -> None:
    requires_netns("to load the rules into a namespace's own iptables")
    requires("iptables-restore", why="the twin enforces the security groups with it")
    with NetNs.create("ms-fw") as ns:
        proc = subprocess.run(ns.cmd(["iptables-restore", "--test"]), input=rules_for(default_platform()).iptables(),
                              capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (0, "")
