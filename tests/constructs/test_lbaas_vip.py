"""LbaasVip: one Octavia load balancer, several listeners, each with its pool and monitor."""

from __future__ import annotations

import pytest

from mailstrata.constructs import (
    Algorithm,
    FloatingIpProps,
    LbaasVip,
    LbaasVipProps,
    ListenerProps,
    ListenerProtocol,
    Persistence,
    PoolProtocol,
)
from mailstrata.errors import ConfigError
from mailstrata.roles import Role
from tests.support.contexts import new_stack, of_type, synth
from tests.support.ids import VIP_SUBNET


def imap_vip(**overrides) -> LbaasVipProps:  # type: ignore[no-untyped-def]
    base = dict(
        name="t-mailstore",
        role=Role.MAILSTORE,
        vip_subnet_id=VIP_SUBNET,
        listeners=(
            ListenerProps(
                port=143,
                service="IMAP",
                pool_protocol=PoolProtocol.PROXY,
                persistence=Persistence.SOURCE_IP,
                timeout_client_data_ms=1860000,
                timeout_member_data_ms=1860000,
                allowed_cidrs=("10.0.0.0/8",),
            ),
            ListenerProps(port=25, service="SMTP delivery"),
        ),
    )
    base.update(overrides)
    return LbaasVipProps(**base)  # type: ignore[arg-type]


def test_one_vip_carries_a_listener_pool_and_monitor_per_port() -> None:
    stack = new_stack()
    LbaasVip(stack, "vip", props=imap_vip())
    doc = synth(stack)
    assert len(of_type(doc, "openstack_lb_loadbalancer_v2")) == 1
    assert sorted(x["protocol_port"] for x in of_type(doc, "openstack_lb_listener_v2")) == [25, 143]
    assert len(of_type(doc, "openstack_lb_pool_v2")) == 2
    assert len(of_type(doc, "openstack_lb_monitor_v2")) == 2


def test_listener_carries_timeouts_and_allowed_cidrs() -> None:
    stack = new_stack()
    LbaasVip(stack, "vip", props=imap_vip())
    imap = next(x for x in of_type(synth(stack), "openstack_lb_listener_v2") if x["protocol_port"] == 143)
    assert (imap["timeout_client_data"], imap["timeout_member_data"]) == (1860000, 1860000)
    assert imap["allowed_cidrs"] == ["10.0.0.0/8"]
    assert imap["description"] == "mailstrata/mailstore/143: IMAP listener"


def test_listener_without_allowed_cidrs_has_no_restriction_key() -> None:
    stack = new_stack()
    LbaasVip(stack, "vip", props=imap_vip())
    smtp = next(x for x in of_type(synth(stack), "openstack_lb_listener_v2") if x["protocol_port"] == 25)
    assert "allowed_cidrs" not in smtp


def test_pool_has_proxy_protocol_and_source_ip_persistence() -> None:
    stack = new_stack()
    LbaasVip(stack, "vip", props=imap_vip())
    pool = next(x for x in of_type(synth(stack), "openstack_lb_pool_v2") if "/143:" in x["description"])
    assert pool["protocol"] == "PROXY"
    assert pool["persistence"] == {"type": "SOURCE_IP"}


def test_proxy_ports_are_exposed_for_the_servers() -> None:
    stack = new_stack()
    vip = LbaasVip(stack, "vip", props=imap_vip())
    assert vip.proxy_ports == frozenset({25, 143})  # 25 too: the platform delivers to the mailstore with PROXY


def test_floating_ip_only_when_asked() -> None:
    stack = new_stack()
    LbaasVip(stack, "private", props=imap_vip())
    LbaasVip(
        stack,
        "public",
        props=imap_vip(name="t-in", role=Role.SMTP_IN, floating_ip=FloatingIpProps(external_network="public")),
    )
    fips = of_type(synth(stack), "openstack_networking_floatingip_v2")
    assert [f["description"] for f in fips] == ["mailstrata/smtp_in: public address of the smtp-in VIP"]
    assert fips[0]["pool"] == "public"


def test_rejects_a_pool_protocol_the_provider_would_accept() -> None:
    stack = new_stack()
    bad = imap_vip(listeners=(ListenerProps(port=25, service="SMTP", pool_protocol="PROXYV3"),))  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as exc:
        LbaasVip(stack, "vip", props=bad)
    assert [str(p) for p in exc.value.problems] == [
        "props.listeners[0].pool_protocol: must be a PoolProtocol, got the text 'PROXYV3'; use one of "
        "PoolProtocol.TCP, PoolProtocol.HTTP, PoolProtocol.PROXY"
    ]


def test_rejects_proxy_pool_behind_an_http_listener() -> None:
    stack = new_stack()
    bad = imap_vip(
        listeners=(
            ListenerProps(port=80, service="HTTP", protocol=ListenerProtocol.HTTP, pool_protocol=PoolProtocol.PROXY),
        )
    )
    with pytest.raises(ConfigError) as exc:
        LbaasVip(stack, "vip", props=bad)
    assert [str(p) for p in exc.value.problems] == [
        "listeners[0].pool_protocol: PROXY pools need a TCP listener, got HTTP"
    ]


def test_rejects_terminated_https_without_a_container() -> None:
    stack = new_stack()
    bad = imap_vip(
        listeners=(
            ListenerProps(
                port=443, service="HTTPS", protocol=ListenerProtocol.TERMINATED_HTTPS, pool_protocol=PoolProtocol.HTTP
            ),
        )
    )
    with pytest.raises(ConfigError) as exc:
        LbaasVip(stack, "vip", props=bad)
    assert [str(p) for p in exc.value.problems] == [
        "listeners[0].tls_container_ref: is required for TERMINATED_HTTPS; give the Barbican container ref"
    ]


def test_reports_every_listener_problem_at_once() -> None:
    stack = new_stack()
    bad = imap_vip(
        listeners=(
            ListenerProps(port=0, service="x"),
            ListenerProps(port=0, service="y", allowed_cidrs=("10.0.0.1/8",)),
        )
    )
    with pytest.raises(ConfigError) as exc:
        LbaasVip(stack, "vip", props=bad)
    assert [str(p) for p in exc.value.problems] == [
        "listeners[0].port: must be a TCP port between 1 and 65535, got 0",
        "listeners[1].port: must be a TCP port between 1 and 65535, got 0",
        "listeners[1].port: port 0 is already used by listeners[0] on this VIP",
        "listeners[1].allowed_cidrs[0]: must be a CIDR such as 10.0.0.0/24, got '10.0.0.1/8'",
    ]


# ---- defaults are the platform's ------------------------------------------------------------------------


def test_a_mailstore_vip_from_the_defaults_carries_the_platforms_listeners_and_passes_ckv_mailstrata_5() -> None:
    from mailstrata.policies.checks.ckv_mailstrata_5_mailstore_data_timeouts import check

    stack = new_stack()
    LbaasVip(stack, "vip", props=LbaasVipProps(name="t-mailstore", role=Role.MAILSTORE, vip_subnet_id=VIP_SUBNET))
    listeners = of_type(synth(stack), "openstack_lb_listener_v2")

    assert {x["protocol_port"]: check.scan_resource_conf(x).name for x in listeners} == {
        25: "UNKNOWN", 110: "PASSED", 143: "PASSED", 993: "PASSED", 995: "PASSED", 4190: "PASSED"
    }


def test_a_listener_given_only_its_port_takes_the_platforms_settings_for_it() -> None:
    stack = new_stack()
    vip = LbaasVip(stack, "vip", props=LbaasVipProps(name="t-mailstore", role=Role.MAILSTORE,
                                                     vip_subnet_id=VIP_SUBNET, listeners=(ListenerProps(port=143),)))
    imap = vip.listeners[143]

    assert (imap.service, imap.pool_protocol, imap.persistence, imap.timeout_client_data_ms,
            imap.timeout_member_data_ms) == ("IMAP", PoolProtocol.PROXY, Persistence.SOURCE_IP, 1860000, 1860000)


def test_an_explicit_none_persistence_turns_the_platforms_persistence_off() -> None:
    stack = new_stack()
    LbaasVip(stack, "vip", props=LbaasVipProps(name="t-mailstore", role=Role.MAILSTORE, vip_subnet_id=VIP_SUBNET,
                                               listeners=(ListenerProps(port=143, persistence=None),)))
    [pool] = of_type(synth(stack), "openstack_lb_pool_v2")

    assert "persistence" not in pool


def test_a_port_the_platform_has_no_default_for_gets_tcp_least_connections_and_five_minutes() -> None:
    stack = new_stack()
    vip = LbaasVip(stack, "vip", props=LbaasVipProps(name="t-web", role=Role.WEBMAIL, vip_subnet_id=VIP_SUBNET,
                                                     listeners=(ListenerProps(port=8443),)))
    extra = vip.listeners[8443]

    assert (extra.service, extra.protocol, extra.algorithm, extra.persistence, extra.timeout_client_data_ms) == (
        "port 8443", ListenerProtocol.TCP, Algorithm.LEAST_CONNECTIONS, None, 300000
    )
