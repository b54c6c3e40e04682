"""Composition: an org stack brings its own network and uses the constructs directly."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cdktf_cdktf_provider_openstack.networking_network_v2 import NetworkingNetworkV2
from cdktf_cdktf_provider_openstack.networking_subnet_v2 import NetworkingSubnetV2
from cdktf_cdktf_provider_openstack.provider import OpenstackProvider

from mailstrata.compose import platform_context
from mailstrata.constructs import (
    AdBinding,
    AdBindingProps,
    LbaasVip,
    LbaasVipProps,
    ListenerProps,
    MailLayer,
    MailLayerProps,
    PoolProtocol,
)
from mailstrata.errors import ConfigError
from mailstrata.roles import Role
from mailstrata.userdata.context import DkimKey
from tests.support.contexts import new_stack, of_type, synth
from tests.support.contexts import platform_context as lab_platform_context
from tests.support.ids import NETWORK, SUBNET, VIP_SUBNET

ROOT = Path(__file__).resolve().parents[2]


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
        name_prefix="org", role=Role.SMTP_IN, platform=lab_platform_context(), network_id=net.id, subnet_id=subnet.id,
        lb_source_cidrs=("10.50.0.0/24",), admin_cidrs=("10.99.0.0/24",), count=2, vips=(vip,),
    ))
    doc = synth(stack)
    [lb] = of_type(doc, "openstack_lb_loadbalancer_v2")
    assert lb["vip_subnet_id"] == "${openstack_networking_subnet_v2.mailsubnet.id}"
    ports = of_type(doc, "openstack_networking_port_v2")
    assert {p["network_id"] for p in ports} == {"${openstack_networking_network_v2.mailnet.id}"}
    [members] = of_type(doc, "openstack_lb_members_v2")
    assert {m["subnet_id"] for m in members["member"]} == {"${openstack_networking_subnet_v2.mailsubnet.id}"}


# ---- platform_context: what `MailLayerProps.platform` needs, from constructs (issue 7, part 6) ---------


def _ad(stack) -> AdBinding:  # type: ignore[no-untyped-def]
    return AdBinding(stack, "ad", props=AdBindingProps(
        urls=("ldaps://dc1.example.com",), base_dn="dc=example,dc=com", bind_dn="cn=mail,ou=apps,dc=example,dc=com",
        domains=("example.com",)))


def _declared_and_used(doc: dict) -> tuple[set[str], set[str]]:  # type: ignore[type-arg]
    used = set(re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)", json.dumps(doc)))
    return set(doc.get("variable", {})), used


def test_given_an_ad_binding_when_an_smtp_in_layer_is_built_from_platform_context_then_every_variable_is_declared(
) -> None:
    stack = new_stack("org")
    OpenstackProvider(stack, "openstack")
    mx = LbaasVip(stack, "mx", props=LbaasVipProps(
        name="org-mx", role=Role.SMTP_IN, vip_subnet_id=VIP_SUBNET,
        listeners=(ListenerProps(port=25, service="SMTP", pool_protocol=PoolProtocol.PROXY),)))
    platform = platform_context(name="org", directory=_ad(stack), dns_zone="mail.example.com",
                                layers={Role.SMTP_IN: ("10.50.0.0/24",)}, vips={Role.SMTP_IN: mx,
                                                                                 Role.MAILSTORE: "10.20.0.12"},
                                vip_subnet_cidr="10.50.0.0/24", admin_cidrs=("10.99.0.0/24",))
    MailLayer(stack, "mx-servers", props=MailLayerProps(
        name_prefix="org", role=Role.SMTP_IN, platform=platform, network_id=NETWORK, subnet_id=SUBNET,
        lb_source_cidrs=("10.50.0.0/24",), admin_cidrs=("10.99.0.0/24",), count=1, vips=(mx,)))
    doc = synth(stack)
    declared, used = _declared_and_used(doc)
    assert "ad_bind_password" in used
    assert used <= declared
    assert doc["variable"]["ad_bind_password"]["sensitive"] is True
    assert platform.vips.mailstore == "10.20.0.12"
    assert platform.domains == ("example.com",)


def test_given_an_smtp_in_layer_without_the_mailstore_vip_when_platform_context_is_built_then_it_says_which() -> None:
    stack = new_stack("org")
    with pytest.raises(ConfigError) as err:
        platform_context(name="org", directory=_ad(stack), dns_zone="mail.example.com",
                         layers={Role.SMTP_IN: ("10.50.0.0/24",), Role.WEBMAIL: ("10.50.0.0/24",)},
                         vips={Role.SMTP_IN: "10.50.0.10"}, vip_subnet_cidr="10.50.0.0/24", admin_cidrs=())
    assert [str(p) for p in err.value.problems] == [
        "platform_context.vips: has no mailstore VIP, which the smtp_in layer talks to; add Role.MAILSTORE: "
        "<LbaasVip or its address>",
        "platform_context.vips: has no webmail VIP, which the webmail layer is served by; add Role.WEBMAIL: "
        "<LbaasVip or its address>",
        "platform_context.vips: has no mailstore VIP, which the webmail layer talks to; add Role.MAILSTORE: "
        "<LbaasVip or its address>",
        "platform_context.vips: has no smtp_out VIP, which the webmail layer talks to; add Role.SMTP_OUT: "
        "<LbaasVip or its address>",
        "platform_context.webmail: is required with a webmail layer; give Webmail(database=...)",
        "platform_context.admin_cidrs: must list at least one admin network for SSH",
    ]


def test_given_a_dkim_key_as_plain_text_when_platform_context_is_built_then_the_secret_is_refused_unshown() -> None:
    stack = new_stack("org")
    with pytest.raises(ConfigError) as err:
        platform_context(name="org", directory=_ad(stack), dns_zone="mail.example.com",
                         layers={Role.SMTP_OUT: ("10.50.0.0/24",)},
                         vips={Role.SMTP_OUT: "10.50.0.11", Role.MAILSTORE: "10.20.0.12"},
                         vip_subnet_cidr="10.50.0.0/24", admin_cidrs=("10.99.0.0/24",),
                         dkim=DkimKey(selector="mail", private_key="-----BEGIN RSA PRIVATE KEY-----"))  # type: ignore[arg-type]
    assert [str(p) for p in err.value.problems] == [
        "platform_context.dkim.private_key: must be a Secret, never a plain str, got a text (not shown); keep the "
        'value in a sensitive Terraform variable and write Secret(ref="${var.<name>}") (from mailstrata.types import '
        "Secret)"]
    assert "BEGIN RSA" not in str(err.value)


def test_given_the_org_stack_example_when_run_then_it_synthesizes_with_every_variable_declared(
        tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "examples/org_stack.py"), str(tmp_path / "out")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "out/stacks/org/cdk.tf.json").read_text())
    declared, used = _declared_and_used(doc)
    assert used <= declared
    assert "openstack" in doc["provider"]
    assert doc["terraform"]["backend"] == {"local": {"path": "../../../state/org.tfstate"}}
