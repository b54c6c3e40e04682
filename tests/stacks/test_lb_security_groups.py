"""Issue 10, item 2: the load balancers' own traffic reaches the members.

Every pool member names its layer's subnet (`subnet_id`), so Octavia plugs the amphora into that subnet and
its HAProxy connects to the members, health checks included, from an address there (`mailstrata.octavia`).
The security groups must admit the load-balancer ports from that subnet, and the daemons must trust PROXY
headers from the same place: one model for both.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from cdktf import App

from mailstrata.config import load_config
from mailstrata.octavia import amphora_source_subnets
from mailstrata.roles import Role
from mailstrata.stacks import MailPlatformStack
from tests.support.synth import default_platform, resources

ROLES = (Role.SMTP_IN, Role.SMTP_OUT, Role.MAILSTORE, Role.WEBMAIL)


@cache
def subnet_cidrs() -> dict[str, str]:
    cfg = load_config(None)
    out = {cfg.network.subnet_id: cfg.network.subnet_cidr, cfg.network.vip_subnet_id: cfg.network.vip_subnet_cidr}
    out |= {lc.subnet_id: lc.subnet_cidr for _, lc in cfg.layers.items() if lc.subnet_id and lc.subnet_cidr}
    return out


def _group_of(doc: dict[str, Any], role: Role) -> str:
    [key] = [k for k, g in resources(doc, "openstack_networking_secgroup_v2").items()
             if g["name"] == f"mail-{role.slug}"]
    return f"${{openstack_networking_secgroup_v2.{key}.id}}"


def members_of(doc: dict[str, Any], role: Role) -> list[dict[str, Any]]:
    """Every pool member of `role`'s VIP (the pools' descriptions carry the role)."""
    pools = {k for k, p in resources(doc, "openstack_lb_pool_v2").items()
             if p["description"].startswith(f"mailstrata/{role.value}/")}
    return [m for r in resources(doc, "openstack_lb_members_v2").values()
            if r["pool_id"].split(".")[1] in pools for m in r["member"]]


def admitted(doc: dict[str, Any], role: Role, port: int) -> set[str]:
    """The CIDRs `role`'s security group admits on `port`."""
    group = _group_of(doc, role)
    return {r["remote_ip_prefix"] for r in resources(doc, "openstack_networking_secgroup_rule_v2").values()
            if r["security_group_id"] == group and r["direction"] == "ingress" and r.get("remote_ip_prefix")
            and r["port_range_min"] <= port <= r["port_range_max"]}


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value)
def test_given_the_default_platform_then_every_member_port_is_open_to_the_subnet_its_member_names(role: Role) -> None:
    doc = default_platform()
    members = members_of(doc, role)
    assert members, f"{role.value} has no pool members"
    missing = {(m["name"], m["protocol_port"], subnet_cidrs()[m["subnet_id"]]) for m in members
               if subnet_cidrs()[m["subnet_id"]] not in admitted(doc, role, m["protocol_port"])}
    assert missing == set()


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value)
def test_given_members_that_name_their_subnet_then_the_vip_subnet_is_not_admitted(role: Role) -> None:
    # Octavia reaches such members from its port on their subnet only; the VIP subnet would open the member
    # ports to every other amphora and VIP port there.
    doc = default_platform()
    vip_subnet = load_config(None).network.vip_subnet_cidr
    ports = {m["protocol_port"] for m in members_of(doc, role)}
    assert {p for p in ports if vip_subnet in admitted(doc, role, p)} == set()


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value)
def test_the_daemons_trust_proxy_headers_from_where_the_security_group_admits_the_amphorae(role: Role) -> None:
    cfg = load_config(None)
    stack = MailPlatformStack(App(), cfg.name, config=cfg)
    doc = default_platform()
    sources = stack.layers[role].context.proxy_sources()
    for member in members_of(doc, role):
        assert set(sources) <= admitted(doc, role, member["protocol_port"])
    expected = amphora_source_subnets(member_subnets=[subnet_cidrs()[m["subnet_id"]] for m in members_of(doc, role)],
                                      vip_subnets=(cfg.network.vip_subnet_cidr,))
    assert sources == expected
