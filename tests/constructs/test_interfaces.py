"""The interfaces constructs take from each other: `LbaasVip.add_members` takes any `IMemberGroup`,
`NfsShare.grant_mount` any `IStorageClient`, and `MailLayer` hands out finished ones, never itself."""

from __future__ import annotations

import dataclasses

import pytest

from mailstrata.constructs import (
    CinderServerProps,
    IMemberGroup,
    IStorageClient,
    LbaasVip,
    LbaasVipProps,
    ListenerProps,
    MailLayer,
    MailLayerProps,
    Member,
    MemberGroup,
    NfsShare,
    NfsShareProps,
    StorageClient,
    StorageMode,
)
from mailstrata.errors import ConfigError
from mailstrata.roles import Role
from tests.support.contexts import new_stack, of_type, platform_context, synth
from tests.support.ids import NETWORK, SHARE_NETWORK, SUBNET, VIP_SUBNET

MEMBERS = (Member(name="mx-a", address="10.50.0.21"), Member(name="mx-b", address="10.50.0.22"))


def smtp_in_vip(stack):  # type: ignore[no-untyped-def]
    return LbaasVip(stack, "vip", props=LbaasVipProps(
        name="t-mx", role=Role.SMTP_IN, vip_subnet_id=VIP_SUBNET,
        listeners=(ListenerProps(port=25), ListenerProps(port=587)),
    ))


class OwnServers:
    """Servers made outside mailstrata: not a dataclass, not a construct, only the attributes."""

    group_id = "own"
    role = Role.SMTP_IN
    subnet_id = SUBNET
    members = MEMBERS


def rejection(call) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as caught:
        call()
    return [str(p) for p in caught.value.problems]


# ---- IMemberGroup: what a VIP needs from its members --------------------------------------------------


def test_given_a_member_group_when_added_to_a_vip_then_each_member_is_in_every_pool_on_its_subnet() -> None:
    stack = new_stack()
    vip = smtp_in_vip(stack)

    vip.add_members(MemberGroup(group_id="mx", role=Role.SMTP_IN, subnet_id=SUBNET, members=MEMBERS))

    sets = synth(stack)["resource"]["openstack_lb_members_v2"]
    assert [k.rsplit("_", 1)[0] for k in sorted(sets)] == ["vip_members-25-mx", "vip_members-587-mx"]
    for members in sets.values():
        assert [(m["name"], m["address"], m["subnet_id"]) for m in members["member"]] == [
            ("mx-a", "10.50.0.21", SUBNET), ("mx-b", "10.50.0.22", SUBNET)]
    assert sorted(m["member"][0]["protocol_port"] for m in sets.values()) == [25, 587]


def test_given_any_object_with_the_member_group_attributes_when_added_then_the_vip_takes_it() -> None:
    stack = new_stack()
    vip = smtp_in_vip(stack)
    assert isinstance(OwnServers(), IMemberGroup)

    vip.add_members(OwnServers())

    assert len(of_type(synth(stack), "openstack_lb_members_v2")) == 2


def test_given_a_member_group_of_another_role_when_added_then_the_role_is_refused() -> None:
    stack = new_stack()
    vip = smtp_in_vip(stack)
    group = MemberGroup(group_id="store", role=Role.MAILSTORE, subnet_id=SUBNET, members=MEMBERS)

    assert rejection(lambda: vip.add_members(group)) == [
        "add_members.group.role: must be this VIP's role Role.SMTP_IN, got Role.MAILSTORE; add the group to its own "
        "layer's VIP"]


def test_given_a_member_group_added_twice_when_added_again_then_the_group_id_is_refused() -> None:
    stack = new_stack()
    vip = smtp_in_vip(stack)
    group = MemberGroup(group_id="mx", role=Role.SMTP_IN, subnet_id=SUBNET, members=MEMBERS)
    vip.add_members(group)

    assert rejection(lambda: vip.add_members(group)) == [
        "add_members.group.group_id: was already added to this VIP, got 'mx'; add each group once, under its own "
        "group_id"]


def test_given_members_as_a_list_of_addresses_when_added_then_members_are_refused() -> None:
    stack = new_stack()
    vip = smtp_in_vip(stack)
    group = MemberGroup(group_id="mx", role=Role.SMTP_IN, subnet_id=SUBNET,
                        members=["10.50.0.21"])  # type: ignore[arg-type]

    assert rejection(lambda: vip.add_members(group)) == [
        "add_members.group.members: must be a tuple of Member, got a list; write (Member(name=..., address=...), "
        "...)"]


def test_given_a_mail_layer_itself_when_added_to_a_vip_then_it_is_refused_and_its_member_group_is_named() -> None:
    stack = new_stack()
    vip = smtp_in_vip(stack)
    layer = MailLayer(stack, "mx-servers", props=MailLayerProps(
        name_prefix="t", role=Role.SMTP_IN, platform=platform_context(), network_id=NETWORK, subnet_id=SUBNET,
        lb_source_cidrs=("10.20.0.0/24",), admin_cidrs=("10.99.0.0/24",)))

    assert rejection(lambda: vip.add_members(layer)) == [  # type: ignore[arg-type]
        "add_members.group: must be an IMemberGroup (group_id, role, subnet_id, members), got the MailLayer "
        "construct 'mx-servers'; pass a MailLayer's member_group, or a MemberGroup(...)"]


# ---- IStorageClient: what storage needs from the servers that mount it --------------------------------


def client(addresses: tuple[str, ...] = ("10.50.0.31", "10.50.0.32")) -> StorageClient:
    return StorageClient(client_id="archive", role=Role.MAILSTORE, security_group_id="${sg.archive.id}",
                         addresses=addresses)


def test_given_a_storage_client_when_granted_a_manila_share_then_each_address_gets_a_rw_rule() -> None:
    stack = new_stack()
    share = NfsShare(stack, "storage", props=NfsShareProps(name_prefix="t", mode=StorageMode.MANILA,
                                                           share_network_id=SHARE_NETWORK))

    mount = share.grant_mount(client())

    rules = of_type(synth(stack), "openstack_sharedfilesystem_share_access_v2")
    assert [(r["access_to"], r["access_level"]) for r in rules] == [("10.50.0.31", "rw"), ("10.50.0.32", "rw")]
    assert mount.mount_point == "/MAILBOXES"


def test_given_a_storage_client_when_granted_the_cinder_server_then_nfs_is_opened_to_its_security_group() -> None:
    stack = new_stack()
    share = NfsShare(stack, "storage", props=NfsShareProps(
        name_prefix="t", mode=StorageMode.CINDER_SERVER,
        server=CinderServerProps(platform=platform_context(), network_id=NETWORK, subnet_id=SUBNET,
                                 admin_cidrs=("10.99.0.0/24",))))

    share.grant_mount(client())

    nfs = [r for r in of_type(synth(stack), "openstack_networking_secgroup_rule_v2")
           if r["description"].startswith("mailstrata/nfs_server/2049")]
    assert [(r["protocol"], r["remote_group_id"]) for r in nfs] == [("tcp", "${sg.archive.id}"),
                                                                    ("udp", "${sg.archive.id}")]
    assert nfs[0]["description"] == "mailstrata/nfs_server/2049: NFS (tcp) from the mailstore servers"


def test_given_a_storage_client_granted_once_when_granted_again_then_it_is_refused() -> None:
    stack = new_stack()
    share = NfsShare(stack, "storage", props=NfsShareProps(name_prefix="t", mode=StorageMode.EXISTING,
                                                           export="nas.domain01.dom:/mail"))
    share.grant_mount(client())

    assert rejection(lambda: share.grant_mount(client())) == [
        "grant_mount.client: was already granted the share, got the client 'archive' again; call grant_mount once "
        "per client (a MailLayer with storage= calls it itself)"]


def test_given_addresses_as_a_list_when_granted_then_the_addresses_are_refused() -> None:
    stack = new_stack()
    share = NfsShare(stack, "storage", props=NfsShareProps(name_prefix="t", mode=StorageMode.EXISTING,
                                                           export="nas.domain01.dom:/mail"))

    assert rejection(lambda: share.grant_mount(client(["10.50.0.31"]))) == [  # type: ignore[arg-type]
        "grant_mount.client.addresses: must be a tuple of text (str), got a list; write (address, ...)"]


# ---- MailLayer hands out finished objects -------------------------------------------------------------


def test_given_a_mailstore_layer_when_built_then_it_hands_out_finished_frozen_interfaces() -> None:
    stack = new_stack()
    share = NfsShare(stack, "storage", props=NfsShareProps(name_prefix="t", mode=StorageMode.MANILA))
    layer = MailLayer(stack, "mailstore", props=MailLayerProps(
        name_prefix="t", role=Role.MAILSTORE, platform=platform_context(), network_id=NETWORK, subnet_id=SUBNET,
        lb_source_cidrs=("10.20.0.0/24",), admin_cidrs=("10.99.0.0/24",), count=3, storage=share))

    assert isinstance(layer.member_group, IMemberGroup)
    assert isinstance(layer.storage_client, IStorageClient)
    assert not isinstance(layer, IMemberGroup | IStorageClient)
    assert [m.name for m in layer.member_group.members] == ["t-mailstore-01", "t-mailstore-02", "t-mailstore-03"]
    assert [m.address for m in layer.member_group.members] == [s.address for s in layer.servers]
    assert layer.storage_client.addresses == tuple(layer.addresses)
    assert (layer.member_group.group_id, layer.storage_client.client_id) == ("mailstore", "mailstore")
    with pytest.raises(dataclasses.FrozenInstanceError):
        layer.member_group.members = ()  # type: ignore[misc]
