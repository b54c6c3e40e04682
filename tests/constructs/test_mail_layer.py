"""MailLayer: N servers for one role, least-privilege security group, user-data, pool members."""

from __future__ import annotations

import json

import pytest

from mailstrata.constructs import (
    Affinity,
    LbaasVip,
    LbaasVipProps,
    ListenerProps,
    MailLayer,
    MailLayerProps,
    NfsShare,
    NfsShareProps,
    PoolProtocol,
    StorageMode,
)
from mailstrata.errors import ConfigError
from mailstrata.roles import Role
from tests.support.contexts import new_stack, of_type, platform_context, synth
from tests.support.ids import NETWORK, SUBNET, VIP_SUBNET


def smtp_in_vip(stack) -> LbaasVip:  # type: ignore[no-untyped-def]
    return LbaasVip(stack, "vip", props=LbaasVipProps(
        name="t-smtp-in", role=Role.SMTP_IN, vip_subnet_id=VIP_SUBNET,
        listeners=(ListenerProps(port=25, service="SMTP", pool_protocol=PoolProtocol.PROXY),),
    ))


def layer_props(stack, **overrides) -> MailLayerProps:  # type: ignore[no-untyped-def]
    base = dict(
        name_prefix="t", role=Role.SMTP_IN, platform=platform_context(), network_id=NETWORK, subnet_id=SUBNET,
        lb_source_cidrs=("10.20.0.0/24",), admin_cidrs=("10.99.0.0/24",), count=3,
        vips=(smtp_in_vip(stack),),
    )
    base.update(overrides)
    return MailLayerProps(**base)  # type: ignore[arg-type]


def test_count_servers_each_with_its_own_port() -> None:
    stack = new_stack()
    MailLayer(stack, "smtp-in", props=layer_props(stack))
    doc = synth(stack)
    assert [s["name"] for s in of_type(doc, "openstack_compute_instance_v2")] == ["t-smtp-in-01", "t-smtp-in-02",
                                                                                 "t-smtp-in-03"]
    assert len(of_type(doc, "openstack_networking_port_v2")) == 3


def test_server_group_is_anti_affinity_by_default() -> None:
    stack = new_stack()
    MailLayer(stack, "smtp-in", props=layer_props(stack))
    assert of_type(synth(stack), "openstack_compute_servergroup_v2")[0]["policies"] == ["anti-affinity"]


def test_soft_anti_affinity_is_selectable() -> None:
    stack = new_stack()
    MailLayer(stack, "smtp-in", props=layer_props(stack, affinity=Affinity.SOFT_ANTI_AFFINITY))
    assert of_type(synth(stack), "openstack_compute_servergroup_v2")[0]["policies"] == ["soft-anti-affinity"]


def test_security_group_opens_only_member_ports_to_the_lb_and_ssh_to_admins() -> None:
    stack = new_stack()
    MailLayer(stack, "smtp-in", props=layer_props(stack))
    rules = sorted((r["port_range_min"], r["port_range_max"], r["remote_ip_prefix"])
                   for r in of_type(synth(stack), "openstack_networking_secgroup_rule_v2"))
    assert rules == [(22, 22, "10.99.0.0/24"), (25, 25, "10.20.0.0/24")]


def test_every_server_is_a_member_of_every_pool_of_its_vip() -> None:
    stack = new_stack()
    MailLayer(stack, "smtp-in", props=layer_props(stack))
    members = of_type(synth(stack), "openstack_lb_members_v2")
    assert len(members) == 1
    assert [m["name"] for m in members[0]["member"]] == ["t-smtp-in-01", "t-smtp-in-02", "t-smtp-in-03"]
    assert {m["protocol_port"] for m in members[0]["member"]} == {25}


def test_user_data_is_a_shared_local_with_a_per_server_host_name() -> None:
    stack = new_stack()
    MailLayer(stack, "smtp-in", props=layer_props(stack))
    doc = synth(stack)
    first = of_type(doc, "openstack_compute_instance_v2")[0]["user_data"]
    assert first.startswith('${join("\\n", concat(["#cloud-config", "hostname: t-smtp-in-01", '
                            '"fqdn: t-smtp-in-01.cloud0.example.dom"')
    assert first.endswith("local.user_data_t_smtp_in))}")
    assert isinstance(doc["locals"]["user_data_t_smtp_in"], list)


def test_each_slot_has_its_own_spool_volume_named_in_its_own_head() -> None:
    """Issue 12: a queueing layer's slots keep their queues on volumes of their own, attached after the server is
    created; the slot's cloud-config head (not the shared body) names its volume."""
    stack = new_stack()
    layer = MailLayer(stack, "smtp-in", props=layer_props(stack, spool_gb=30))
    doc = synth(stack)
    volumes = doc["resource"]["openstack_blockstorage_volume_v3"]
    assert sorted(v["name"] for v in volumes.values()) == ["t-smtp-in-01-spool", "t-smtp-in-02-spool",
                                                           "t-smtp-in-03-spool"]
    assert {v["size"] for v in volumes.values()} == {30}
    attaches = doc["resource"]["openstack_compute_volume_attach_v2"]
    pairs = {(a["instance_id"].split(".")[1].split("_")[1], a["volume_id"].split(".")[1].split("_")[1])
             for a in attaches.values()}
    assert pairs == {("server-01", "spool-01"), ("server-02", "spool-02"), ("server-03", "spool-03")}
    servers = sorted(of_type(doc, "openstack_compute_instance_v2"), key=lambda s: s["name"])
    for n, server in enumerate(servers, 1):
        vol = next(k for k, v in volumes.items() if v["name"] == f"t-smtp-in-{n:02d}-spool")
        assert f"echo ${{openstack_blockstorage_volume_v3.{vol}.id}} > /run/mailstrata/spool-volume-id" in server[
            "user_data"]
    assert not [ln for ln in doc["locals"]["user_data_t_smtp_in"] if ln.startswith("bootcmd:")]  # the head's key
    assert layer.context.spool is not None and layer.context.spool.size_gb == 30


def test_webmail_and_a_layer_without_spool_have_no_volume() -> None:
    stack = new_stack()
    layer = MailLayer(stack, "smtp-in", props=layer_props(stack, spool_gb=None))
    doc = synth(stack)
    assert not of_type(doc, "openstack_blockstorage_volume_v3") and layer.context.spool is None
    assert "bootcmd" not in of_type(doc, "openstack_compute_instance_v2")[0]["user_data"]


def test_a_deploy_replaces_no_server_only_a_rollout_does() -> None:
    """The slot's shape (judged by real Terraform in tests/terraform/test_rollout_plan.py): what the provider
    replaces a server for is ignored by a deploy; the server is replaced when its rollout record is."""
    stack = new_stack()
    MailLayer(stack, "smtp-in", props=layer_props(stack, count=1))
    doc = synth(stack)
    data = doc["resource"]["terraform_data"]
    (server,) = doc["resource"]["openstack_compute_instance_v2"].values()
    revision = next(v for k, v in data.items() if "_revision-01" in k)
    rollout_key = next(k for k in data if "_rollout-01" in k)
    assert server["lifecycle"] == {"ignore_changes": ["user_data", "image_name", "flavor_name", "key_pair"],
                                   "replace_triggered_by": [f"terraform_data.{rollout_key}"]}
    assert revision["input"]["user_data_sha256"] == "${sha256(" + server["user_data"][2:-1] + ")}"
    assert data[rollout_key]["lifecycle"] == {"ignore_changes": ["input"]}
    drained = 'contains(var.mailstrata_drain, "t-smtp-in-01")'
    assert server["metadata"]["mailstrata_drain"] == f'${{{drained} ? "true" : "false"}}'
    member = next(iter(doc["resource"]["openstack_lb_members_v2"].values()))["member"][0]
    assert member["weight"] == f"${{{drained} ? 0 : 1}}"


def test_layer_learns_its_proxy_ports_from_its_vip() -> None:
    stack = new_stack()
    layer = MailLayer(stack, "smtp-in", props=layer_props(stack))
    assert layer.user_data.rendered.role is Role.SMTP_IN
    assert layer.props.vips[0].proxy_ports == frozenset({25})


def test_mailstore_mounts_the_share_it_is_given() -> None:
    stack = new_stack()
    share = NfsShare(stack, "storage", props=NfsShareProps(name_prefix="t", mode=StorageMode.EXISTING,
                                                           export="nas.example.dom:/vol/mail"))
    MailLayer(stack, "mailstore", props=layer_props(stack, role=Role.MAILSTORE, vips=(), storage=share))
    body = json.dumps(synth(stack)["locals"]["user_data_t_mailstore"])
    assert "nas.example.dom:/vol/mail" in body


def test_rejects_count_zero_and_world_ssh_at_once() -> None:
    stack = new_stack()
    with pytest.raises(ConfigError) as exc:
        MailLayer(stack, "smtp-in", props=layer_props(stack, count=0, admin_cidrs=("0.0.0.0/0",)))
    assert [str(p) for p in exc.value.problems] == [
        "layers.smtp_in.count: must be at least 1, got 0",
        "layers.smtp_in.admin_cidrs: opens SSH to the whole Internet, got '0.0.0.0/0'; list your admin networks",
    ]


def test_rejects_a_mailstore_without_storage() -> None:
    stack = new_stack()
    with pytest.raises(ConfigError) as exc:
        MailLayer(stack, "mailstore", props=layer_props(stack, role=Role.MAILSTORE, vips=()))
    assert [str(p) for p in exc.value.problems] == [
        "layers.mailstore.storage: a mailstore layer needs the NfsShare holding the mailboxes"
    ]


def test_rejects_the_vip_of_another_role() -> None:
    stack = new_stack()
    with pytest.raises(ConfigError) as exc:
        MailLayer(stack, "smtp-out", props=layer_props(stack, role=Role.SMTP_OUT))
    assert [str(p) for p in exc.value.problems] == [
        "layers.smtp_out.vips[0]: is the smtp_in VIP, not this layer's (smtp_out)"
    ]


# ---- a construct that needs a variable declares it ------------------------------------------------------


def test_a_layer_whose_platform_references_an_undeclared_variable_declares_it() -> None:
    stack = new_stack()
    MailLayer(stack, "smtp-in", props=layer_props(stack))  # platform_context() references var.ad_bind_password

    variables = synth(stack)["variable"]
    assert variables["ad_bind_password"] == {
        "description": "Secret referenced by mailstrata's user-data. Set TF_VAR_ad_bind_password.",
        "nullable": False, "sensitive": True, "type": "string",
    }
    # the rollout's two, declared once per stack
    assert set(variables) == {"ad_bind_password", "mailstrata_drain", "mailstrata_offline"}


def test_a_variable_the_ad_binding_declared_is_not_declared_again() -> None:
    from mailstrata.constructs import AdBinding, AdBindingProps

    stack = new_stack()
    ad = AdBinding(stack, "directory", props=AdBindingProps(
        urls=("ldaps://dc1.domain01.dom:636",), base_dn="dc=domain01,dc=dom",
        bind_dn="cn=correoapp,ou=mailapps,dc=domain01,dc=dom", domains=("domain01.dom", "domain02.dom")))
    MailLayer(stack, "smtp-in", props=layer_props(stack))

    variables = synth(stack)["variable"]
    assert sorted(variables) == ["ad_bind_password", "mailstrata_drain", "mailstrata_offline"]
    assert (list(variables)[:1], variables["ad_bind_password"]["description"]) == (
        ["ad_bind_password"], f"Password of {ad.props.bind_dn} (read-only bind account). Set TF_VAR_ad_bind_password."
    )
