"""Composition: an org stack brings its own network and uses the constructs directly."""

from __future__ import annotations

from cdktf_cdktf_provider_openstack.networking_network_v2 import NetworkingNetworkV2
from cdktf_cdktf_provider_openstack.networking_subnet_v2 import NetworkingSubnetV2
from cdktf_cdktf_provider_openstack.provider import OpenstackProvider

from mailstrata.constructs import (
    LbaasVip,
    LbaasVipProps,
    ListenerProps,
    MailLayer,
    MailLayerProps,
    PoolProtocol,
)
from mailstrata.roles import Role
from tests.support.contexts import new_stack, of_type, platform_context, synth


def test_org_stack_supplies_its_own_network_and_an_smtp_in_layer() -> None:
    stack = new_stack("org")
    OpenstackProvider(stack, "openstack")
    net = NetworkingNetworkV2(stack, "mailnet", name="org-mail")
    subnet = NetworkingSubnetV2(stack, "mailsubnet", network_id=net.id, cidr="10.50.0.0/24")
    vip = LbaasVip(stack, "mx", props=LbaasVipProps(
        name="org-mx", role=Role.SMTP_IN, vip_subnet_id=subnet.id,
        listeners=(ListenerProps(port=25, service="SMTP", pool_protocol=PoolProtocol.PROXY),),
    ))
    MailLayer(stack, "mx-servers", props=MailLayerProps(
        name_prefix="org", role=Role.SMTP_IN, platform=platform_context(), network_id=net.id, subnet_id=subnet.id,
        lb_source_cidrs=("10.50.0.0/24",), admin_cidrs=("10.99.0.0/24",), count=2, vips=(vip,),
    ))
    doc = synth(stack)
    [lb] = of_type(doc, "openstack_lb_loadbalancer_v2")
    assert lb["vip_subnet_id"] == "${openstack_networking_subnet_v2.mailsubnet.id}"
    ports = of_type(doc, "openstack_networking_port_v2")
    assert {p["network_id"] for p in ports} == {"${openstack_networking_network_v2.mailnet.id}"}
    [members] = of_type(doc, "openstack_lb_members_v2")
    assert {m["subnet_id"] for m in members["member"]} == {"${openstack_networking_subnet_v2.mailsubnet.id}"}
