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
