"""NfsShare in its three modes, and grant_mount."""

from __future__ import annotations

import pytest

from mailstrata.constructs import (
    CinderServerProps,
    MailLayer,
    MailLayerProps,
    NfsShare,
    NfsShareProps,
    StorageMode,
)
from mailstrata.errors import ConfigError
from mailstrata.roles import Role
from tests.support.contexts import new_stack, of_type, platform_context, synth
from tests.support.ids import NETWORK, SHARE_NETWORK, SUBNET


def mailstore(stack, share: NfsShare, count: int = 2) -> MailLayer:  # type: ignore[no-untyped-def]
    return MailLayer(stack, "mailstore", props=MailLayerProps(
        name_prefix="t", role=Role.MAILSTORE, platform=platform_context(), network_id=NETWORK, subnet_id=SUBNET,
        lb_source_cidrs=("10.20.0.0/24",), admin_cidrs=("10.99.0.0/24",), count=count, storage=share,
        spool_gb=None,  # the share's volumes only (the spool volumes: tests/constructs/test_mail_layer.py)
    ))


def test_manila_share_with_one_rw_access_rule_per_mailstore_server() -> None:
    stack = new_stack()
    share = NfsShare(stack, "storage", props=NfsShareProps(name_prefix="t", mode=StorageMode.MANILA, size_gb=500,
                                                           share_network_id=SHARE_NETWORK))
    mailstore(stack, share, count=3)
    doc = synth(stack)
    [s] = of_type(doc, "openstack_sharedfilesystem_share_v2")
    assert (s["share_proto"], s["size"], s["share_network_id"]) == ("NFS", 500, SHARE_NETWORK)
    rules = of_type(doc, "openstack_sharedfilesystem_share_access_v2")
    assert [(r["access_type"], r["access_level"]) for r in rules] == [("ip", "rw")] * 3
    assert all(r["access_to"].startswith("${element(openstack_networking_port_v2.mailstore_port-") for r in rules)


def test_manila_export_location_is_the_shares_first_path() -> None:
    stack = new_stack()
    share = NfsShare(stack, "storage", props=NfsShareProps(name_prefix="t", mode=StorageMode.MANILA))
    mailstore(stack, share)
    body = "\n".join(synth(stack)["locals"]["user_data_t_mailstore"])
    assert ".export_locations[0].path}" in body


def test_cinder_server_formats_its_own_volume_and_opens_nfs_to_the_mailstore_group() -> None:
    stack = new_stack()
    share = NfsShare(stack, "storage", props=NfsShareProps(
        name_prefix="t", mode=StorageMode.CINDER_SERVER, size_gb=2000,
        server=CinderServerProps(platform=platform_context(), network_id=NETWORK, subnet_id=SUBNET,
                                 admin_cidrs=("10.99.0.0/24",)),
    ))
    mailstore(stack, share)
    doc = synth(stack)
    assert of_type(doc, "openstack_blockstorage_volume_v3")[0]["size"] == 2000
    assert len(of_type(doc, "openstack_compute_volume_attach_v2")) == 1
    nfs = [r for r in of_type(doc, "openstack_networking_secgroup_rule_v2") if r["description"].startswith(
        "mailstrata/nfs_server/") and "/admin" not in r["description"]]
    assert sorted((r["protocol"], r["port_range_min"]) for r in nfs) == [
        ("tcp", 111), ("tcp", 662), ("tcp", 2049), ("tcp", 20048), ("tcp", 32803),
        ("udp", 111), ("udp", 662), ("udp", 2049), ("udp", 20048), ("udp", 32769)]
    assert all(r["remote_group_id"].startswith("${openstack_networking_secgroup_v2.mailstore_sg") for r in nfs)
    assert "user_data_t_nfs_server" in doc["locals"]
    body = "\n".join(doc["locals"]["user_data_t_nfs_server"])
    assert "/dev/disk/by-id/virtio-${substr(openstack_blockstorage_volume_v3.storage_volume_" in body


def test_existing_nas_creates_nothing_in_the_cloud() -> None:
    stack = new_stack()
    share = NfsShare(stack, "storage", props=NfsShareProps(name_prefix="t", mode=StorageMode.EXISTING,
                                                           export="nas.example.dom:/vol/mail"))
    assert share.export_location == "nas.example.dom:/vol/mail"
    mailstore(stack, share)
    doc = synth(stack)
    assert not of_type(doc, "openstack_sharedfilesystem_share_v2")
    assert not of_type(doc, "openstack_blockstorage_volume_v3")


def test_rejects_existing_mode_without_export() -> None:
    stack = new_stack()
    with pytest.raises(ConfigError) as exc:
        NfsShare(stack, "storage", props=NfsShareProps(name_prefix="t", mode=StorageMode.EXISTING))
    assert [str(p) for p in exc.value.problems] == [
        "storage.export: is required when mode is existing; give the NAS export as host:/path"
    ]


def test_rejects_cinder_mode_without_server_settings() -> None:
    stack = new_stack()
    with pytest.raises(ConfigError) as exc:
        NfsShare(stack, "storage", props=NfsShareProps(name_prefix="t", mode=StorageMode.CINDER_SERVER))
    assert [str(p) for p in exc.value.problems] == ["storage.server: is required when mode is cinder_server"]


# ---- NFSv3 lock callbacks: the NFS server calls the mailstores' rpcbind, lockd and statd ---------------

CALLBACKS = [("tcp", 111), ("tcp", 662), ("tcp", 32803), ("udp", 111), ("udp", 662), ("udp", 32769)]


def callback_rules(doc: dict) -> list[dict]:  # type: ignore[type-arg]
    return [r for r in of_type(doc, "openstack_networking_secgroup_rule_v2")
            if r["description"].startswith("mailstrata/mailstore/") and "lock callbacks" in r["description"]]


def cinder_share(stack) -> NfsShare:  # type: ignore[no-untyped-def]
    return NfsShare(stack, "storage", props=NfsShareProps(
        name_prefix="t", mode=StorageMode.CINDER_SERVER,
        server=CinderServerProps(platform=platform_context(), network_id=NETWORK, subnet_id=SUBNET,
                                 admin_cidrs=("10.99.0.0/24",)),
    ))


def test_given_a_cinder_server_when_mailstores_mount_then_their_group_admits_its_lock_callbacks() -> None:
    # GIVEN the Cinder NFS server WHEN the mailstore layer mounts its share
    stack = new_stack()
    mailstore(stack, cinder_share(stack))
    rules = callback_rules(synth(stack))
    # THEN the mailstores' group lets the NFS server's group reach rpcbind, statd and lockd, nothing else
    assert sorted((r["protocol"], r["port_range_min"]) for r in rules) == CALLBACKS
    assert all(r["port_range_min"] == r["port_range_max"] and r["direction"] == "ingress" for r in rules)
    assert all(r["security_group_id"].startswith("${openstack_networking_secgroup_v2.mailstore_sg") for r in rules)
    assert all(r["remote_group_id"].startswith("${openstack_networking_secgroup_v2.storage_sg") for r in rules)
    assert not any("remote_ip_prefix" in r for r in rules)


def test_given_a_manila_share_when_mailstores_mount_then_the_share_address_may_call_back() -> None:
    stack = new_stack()
    share = NfsShare(stack, "storage", props=NfsShareProps(name_prefix="t", mode=StorageMode.MANILA))
    mailstore(stack, share)
    rules = callback_rules(synth(stack))
    assert sorted((r["protocol"], r["port_range_min"]) for r in rules) == CALLBACKS
    # the address part of Manila's export location ("address:/path"), known after apply, as a /32
    [prefix] = {r["remote_ip_prefix"] for r in rules}
    assert prefix.startswith('${join("", [element(split(":", openstack_sharedfilesystem_share_v2.storage_share_')
    assert prefix.endswith('.export_locations[0].path), 0), "/32"])}')


def test_given_an_existing_nas_at_an_address_when_mailstores_mount_then_that_address_may_call_back() -> None:
    stack = new_stack()
    share = NfsShare(stack, "storage", props=NfsShareProps(name_prefix="t", mode=StorageMode.EXISTING,
                                                           export="10.30.0.5:/vol/mail"))
    mailstore(stack, share)
    rules = callback_rules(synth(stack))
    assert sorted((r["protocol"], r["port_range_min"], r["remote_ip_prefix"]) for r in rules) == [
        (proto, port, "10.30.0.5/32") for proto, port in CALLBACKS]


def test_given_an_existing_nas_by_name_when_mailstores_mount_then_only_given_networks_may_call_back() -> None:
    # GIVEN a NAS named by host name: its address is unknown until given
    stack = new_stack()
    share = NfsShare(stack, "storage", props=NfsShareProps(name_prefix="t", mode=StorageMode.EXISTING,
                                                           export="nas.example.dom:/vol/mail"))
    mailstore(stack, share)
    assert callback_rules(synth(stack)) == []
    # WHEN its network is given THEN it may call back from there
    stack = new_stack()
    share = NfsShare(stack, "storage", props=NfsShareProps(
        name_prefix="t", mode=StorageMode.EXISTING, export="nas.example.dom:/vol/mail",
        server_cidrs=("10.30.0.0/28", "10.31.0.0/28")))
    mailstore(stack, share)
    rules = callback_rules(synth(stack))
    assert sorted({r["remote_ip_prefix"] for r in rules}) == ["10.30.0.0/28", "10.31.0.0/28"]
    assert len(rules) == 2 * len(CALLBACKS)


def test_rejects_server_cidrs_in_cinder_mode() -> None:
    stack = new_stack()
    with pytest.raises(ConfigError) as exc:
        NfsShare(stack, "storage", props=NfsShareProps(
            name_prefix="t", mode=StorageMode.CINDER_SERVER, server_cidrs=("10.30.0.0/28",),
            server=CinderServerProps(platform=platform_context(), network_id=NETWORK, subnet_id=SUBNET,
                                     admin_cidrs=("10.99.0.0/24",)),
        ))
    assert [str(p) for p in exc.value.problems] == [
        "storage.server_cidrs: is only used when mode is manila or existing, got ('10.30.0.0/28',); remove it (the "
        "NFS server's own security group is named instead)"
    ]


def test_given_a_cinder_server_then_its_script_looks_for_the_volume_under_virtio_blk_and_virtio_scsi_names() -> None:
    stack = new_stack()
    mailstore(stack, cinder_share(stack))
    body = "\n".join(synth(stack)["locals"]["user_data_t_nfs_server"])
    volume = "openstack_blockstorage_volume_v3.storage_volume_"
    for name in ("virtio-${substr(" + volume, "scsi-0QEMU_QEMU_HARDDISK_${" + volume,
                 "scsi-0QEMU_QEMU_HARDDISK_${substr(" + volume, "scsi-SQEMU_QEMU_HARDDISK_${" + volume,
                 "wwn-0x${replace(" + volume):
        assert "/dev/disk/by-id/" + name in body, name
