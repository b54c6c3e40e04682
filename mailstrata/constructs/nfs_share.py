"""`NfsShare`: the shared mailbox storage, as a Manila share, the seed's Cinder-backed NFS server, or
an existing NAS."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

from cdktf import Fn, Token
from cdktf_cdktf_provider_openstack.blockstorage_volume_v3 import BlockstorageVolumeV3
from cdktf_cdktf_provider_openstack.compute_instance_v2 import ComputeInstanceV2, ComputeInstanceV2Network
from cdktf_cdktf_provider_openstack.compute_volume_attach_v2 import ComputeVolumeAttachV2
from cdktf_cdktf_provider_openstack.networking_port_v2 import NetworkingPortV2, NetworkingPortV2FixedIp
from cdktf_cdktf_provider_openstack.networking_secgroup_rule_v2 import NetworkingSecgroupRuleV2
from cdktf_cdktf_provider_openstack.networking_secgroup_v2 import NetworkingSecgroupV2
from cdktf_cdktf_provider_openstack.sharedfilesystem_share_access_v2 import SharedfilesystemShareAccessV2
from cdktf_cdktf_provider_openstack.sharedfilesystem_share_v2 import SharedfilesystemShareV2
from constructs import Construct

from mailstrata import defaults as D
from mailstrata.constructs import _validate as v
from mailstrata.constructs._secgroup import allow_ssh_from_admins
from mailstrata.constructs._user_data import AttachedUserData, attach_user_data
from mailstrata.constructs._variables import declare_variables
from mailstrata.constructs.interfaces import IStorageClient
from mailstrata.errors import Problems
from mailstrata.policies.marker import format_marker
from mailstrata.roles import Role
from mailstrata.types import StorageMode
from mailstrata.userdata.context import LayerContext, NfsMount, NfsServer, Platform
from mailstrata.userdata.daemons.nfs import nlm_callbacks


def nfs_ports(s: NfsServer) -> tuple[tuple[str, int], ...]:
    """NFSv3 needs rpcbind and nfsd plus mountd, statd and lockd (Dovecot's fcntl locks), which the
    server's user-data pins to fixed ports so a security group can name them."""
    return (
        ("tcp", 111), ("udp", 111), ("tcp", 2049), ("udp", 2049),
        ("tcp", s.mountd_port), ("udp", s.mountd_port), ("tcp", s.statd_port), ("udp", s.statd_port),
        ("tcp", s.lockd_tcp_port), ("udp", s.lockd_udp_port),
    )


def callback_ports(m: NfsMount) -> tuple[tuple[str, int], ...]:
    """What an NFSv3 server calls back on its clients: rpcbind (111), to find the client's statd and lockd;
    lockd (NLM_GRANTED, for a lock that was blocked); statd (SM_NOTIFY, after the server rebooted). The
    client's user-data pins statd and lockd to these ports (daemons/nfs.py `client_files`). None for a mount
    without network locks (NFSv4: locking is part of the NFS protocol, on the client's own connection)."""
    if not nlm_callbacks(m):
        return ()
    return (
        ("tcp", 111), ("udp", 111), ("tcp", m.statd_port), ("udp", m.statd_port),
        ("tcp", m.lockd_tcp_port), ("udp", m.lockd_udp_port),
    )


def volume_names(volume_id: str) -> tuple[str, tuple[str, ...]]:
    """A Cinder volume's /dev/disk/by-id names, from its ID (Nova's disk serial) as udev's
    60-persistent-storage.rules makes them: virtio-blk's `virtio-<first 20>`; then virtio-scsi's
    `scsi-0QEMU_QEMU_HARDDISK_` and `scsi-SQEMU_QEMU_HARDDISK_` with the whole ID or its first 20 characters
    (QEMU versions differ); then VMware's `wwn-0x<ID without dashes>`. `volume_id` may be a token."""
    short = Token.as_string(Fn.substr(volume_id, 0, 20))
    by_id = "/dev/disk/by-id/"
    return by_id + "virtio-" + short, (
        by_id + "scsi-0QEMU_QEMU_HARDDISK_" + volume_id,
        by_id + "scsi-0QEMU_QEMU_HARDDISK_" + short,
        by_id + "scsi-SQEMU_QEMU_HARDDISK_" + volume_id,
        by_id + "scsi-SQEMU_QEMU_HARDDISK_" + short,
        by_id + "wwn-0x" + Token.as_string(Fn.replace(volume_id, "-", "")),
    )


@dataclass(frozen=True, kw_only=True)
class CinderServerProps:
    """The NFS server of `CINDER_SERVER` mode. `platform` feeds its user-data; `server` is the NFS server's
    own settings (filesystem, export path, pinned ports; the attached volume's device is set here)."""

    platform: Platform
    network_id: str
    subnet_id: str
    admin_cidrs: tuple[str, ...]
    flavor: str = D.FLAVOR
    image: str = D.IMAGE
    key_pair: str | None = None
    volume_type: str | None = None
    os: str = D.OS
    server: NfsServer = field(default_factory=NfsServer)


@dataclass(frozen=True, kw_only=True)
class NfsShareProps:
    """Mailbox storage. `size_gb` for Manila and Cinder; `export` ("host:/path") for an existing NAS;
    `server` for Cinder mode. Mount options default to the seed's NFSv3-over-TCP set."""

    name_prefix: str
    mode: StorageMode
    size_gb: int = D.STORAGE_SIZE_GB
    share_network_id: str | None = None
    share_type: str | None = None
    export: str | None = None
    server: CinderServerProps | None = None
    mount_point: str = D.MAILBOX_MOUNT_POINT
    # manila and existing: the networks the NFS server's lock callbacks come from (its own address or
    # subnet). Default: Manila's export address (/32; Manila's export locations are IPv4 addresses here), or
    # an existing NAS's when its export names an IPv4 address; a NAS named by host name gets none, and its
    # lock callbacks stay blocked (locks then wait for the client's poll) until they are given.
    server_cidrs: tuple[str, ...] = ()


def validate(props: NfsShareProps, path: str = "storage") -> Problems:
    p = Problems()
    if not isinstance(props.mode, StorageMode):
        p.add(f"{path}.mode", f"must be one of {', '.join(m.value for m in StorageMode)}, got {props.mode!r}")
        return p
    v.name_prefix(p, "props.name_prefix", props.name_prefix)
    v.at_least(p, f"{path}.size_gb", props.size_gb, 1)
    v.at_most(p, f"{path}.size_gb", props.size_gb, v.MAX_SIZE_GB)
    for name in ("share_network_id", "share_type"):
        v.non_empty(p, f"props.{name}", getattr(props, name), optional=True)
        if props.mode is not StorageMode.MANILA and getattr(props, name) is not None:
            p.add(f"props.{name}", f"is only used when mode is manila, got {getattr(props, name)!r}; remove it")
    v.openstack_id(p, "props.share_network_id", props.share_network_id, "share network")
    if props.server is not None:
        if props.mode is not StorageMode.CINDER_SERVER:
            p.add("props.server", f"is only used when mode is cinder_server, got mode {props.mode.value}; remove it")
        v.cidrs(p, "props.server.admin_cidrs", props.server.admin_cidrs)
        if not props.server.admin_cidrs:
            p.add("props.server.admin_cidrs", "must list at least one admin network for SSH")
        v.openstack_id(p, "props.server.network_id", props.server.network_id, "network")
        v.openstack_id(p, "props.server.subnet_id", props.server.subnet_id, "subnet")
        for name in ("flavor", "image", "key_pair", "volume_type", "network_id", "subnet_id"):
            v.non_empty(p, f"props.server.{name}", getattr(props.server, name),
                        optional=name in ("key_pair", "volume_type"))
    if not props.mount_point.startswith("/") or props.mount_point.rstrip("/") == "":
        p.add("props.mount_point", f"must be an absolute path other than /, got {props.mount_point!r}; use e.g. "
                                   "'/MAILBOXES'")
    if props.server_cidrs:
        v.cidrs(p, f"{path}.server_cidrs", props.server_cidrs)
        if props.mode is StorageMode.CINDER_SERVER:
            p.add(f"{path}.server_cidrs", f"is only used when mode is manila or existing, got {props.server_cidrs!r}"
                                          "; remove it (the NFS server's own security group is named instead)")
    if props.mode is StorageMode.EXISTING and not props.export:
        p.add(f"{path}.export", "is required when mode is existing; give the NAS export as host:/path")
    if props.mode is not StorageMode.EXISTING and props.export:
        p.add(f"{path}.export", f"is only used when mode is existing, got mode {props.mode.value}")
    if props.mode is StorageMode.CINDER_SERVER and props.server is None:
        p.add(f"{path}.server", "is required when mode is cinder_server")
    return p


class NfsShare(Construct):
    """The NFS export holding every mailbox. Attributes: `export_location` ("host:/path", a Terraform
    reference for Manila and Cinder modes), `mode`. `grant_mount(client)` lets any `IStorageClient` mount it
    (a `MailLayer` with `storage=` hands over its finished `storage_client` itself)."""

    def __init__(self, scope: Construct, id: str, *, props: NfsShareProps) -> None:
        v.check_props(v.unique_id(Problems(), scope, id), props, NfsShareProps).raise_if_any()
        validate(props).raise_if_any()
        super().__init__(scope, id)
        self.props = props
        self.mode = props.mode
        self.share: SharedfilesystemShareV2 | None = None
        self.security_group: NetworkingSecgroupV2 | None = None
        self.server: ComputeInstanceV2 | None = None
        self.user_data: AttachedUserData | None = None
        self.context: LayerContext | None = None
        self._granted: list[str] = []
        if props.mode is StorageMode.MANILA:
            self.share = SharedfilesystemShareV2(
                self,
                "share",
                name=f"{props.name_prefix}-mailboxes",
                share_proto="NFS",
                size=props.size_gb,
                share_network_id=props.share_network_id,
                share_type=props.share_type,
                description=format_marker(Role.MAILSTORE, "every mailbox of the platform"),
            )
            self.export_location = Token.as_string(self.share.export_locations.get(0).path)
        elif props.mode is StorageMode.CINDER_SERVER:
            assert props.server is not None
            self.export_location = self._cinder_server(props, props.server)
        else:
            assert props.export is not None
            self.export_location = props.export

    def _cinder_server(self, props: NfsShareProps, srv: CinderServerProps) -> str:
        name = f"{props.name_prefix}-nfs"
        self.security_group = NetworkingSecgroupV2(
            self, "sg", name=name, description=format_marker(Role.NFS_SERVER, "NFS server of the mailboxes")
        )
        allow_ssh_from_admins(self, self.security_group.id, Role.NFS_SERVER, srv.admin_cidrs)
        port = NetworkingPortV2(
            self,
            "port",
            name=name,
            network_id=srv.network_id,
            fixed_ip=[NetworkingPortV2FixedIp(subnet_id=srv.subnet_id)],
            security_group_ids=[self.security_group.id],
        )
        address = Token.as_string(Fn.element(port.all_fixed_ips, 0))
        volume = BlockstorageVolumeV3(
            self,
            "volume",
            name=f"{name}-data",
            size=props.size_gb,
            volume_type=srv.volume_type,
            description=format_marker(Role.NFS_SERVER, "mailbox volume, formatted once by the NFS server"),
        )
        # The volume by its ID, not /dev/vdb, which depends on attachment order, under the name of each disk
        # bus (roles/nfs_server.py): virtio-blk first, the usual one.
        device, aliases = volume_names(Token.as_string(volume.id))
        ctx = LayerContext(platform=srv.platform, role=Role.NFS_SERVER,
                           nfs_server=replace(srv.server, device=device, device_aliases=aliases))
        self.context = ctx
        self.user_data = attach_user_data(self, ctx, srv.os, props.name_prefix, "storage")
        declare_variables(self, self.user_data.rendered.body_text())
        self.server = ComputeInstanceV2(
            self,
            "server",
            name=name,
            image_name=srv.image,
            flavor_name=srv.flavor,
            key_pair=srv.key_pair,
            network=[ComputeInstanceV2Network(port=port.id)],
            user_data=self.user_data.expression(name),
            metadata={"mailstrata_role": Role.NFS_SERVER.value, "mailstrata_stack": props.name_prefix},
        )
        ComputeVolumeAttachV2(self, "attach", instance_id=self.server.id, volume_id=volume.id)
        return f"{address}:{ctx.nfs_server.export_path}"

    def grant_mount(self, client: IStorageClient) -> NfsMount:
        """Let `client`'s servers mount the share; returns how they mount it.

        `client` is any `IStorageClient`: a `MailLayer` with `storage=` calls this with its finished
        `storage_client`. Manila: one read-write IP access rule per address. Cinder server: NFS ports opened to
        the client's security group (the export itself is limited to the mailstore subnet). Existing NAS:
        nothing to do on the cloud side; the NAS must export to the client's subnet.
        In every mode, when the mount uses NFSv3 locks, the client's security group lets the NFS server's lock
        callbacks in (`callback_ports`: rpcbind, lockd, statd), from the NFS server's group (Cinder server)
        or `callback_sources()` (Manila, existing).
        """
        p = Problems()
        if not isinstance(client, IStorageClient):
            p.add("grant_mount.client", f"must be an IStorageClient (client_id, role, security_group_id, addresses), "
                                        f"got {v.describe(client)}; pass a MailLayer's storage_client, or a "
                                        "StorageClient(...)")
            p.raise_if_any()
        key = client.client_id
        if not isinstance(key, str) or not key:
            p.add("grant_mount.client.client_id", f"must be non-empty text, got {v.describe(key)}; name the client, "
                                                  "e.g. after its layer's construct id")
        elif key in self._granted:
            p.add("grant_mount.client", f"was already granted the share, got the client {key!r} again; call "
                                        "grant_mount once per client (a MailLayer with storage= calls it itself)")
        if not isinstance(client.role, Role):
            p.add("grant_mount.client.role", f"must be a Role, got {v.describe(client.role)}; use e.g. Role.MAILSTORE")
        if not isinstance(client.security_group_id, str):
            p.add("grant_mount.client.security_group_id", f"must be a security group ID (text), got "
                                                          f"{v.describe(client.security_group_id)}")
        if not isinstance(client.addresses, tuple) or not all(isinstance(a, str) for a in client.addresses):
            p.add("grant_mount.client.addresses", f"must be a tuple of text (str), got {v.describe(client.addresses)}"
                                                  "; write (address, ...)")
        p.raise_if_any()
        self._granted.append(key)
        if self.share is not None:
            for i, address in enumerate(client.addresses, start=1):
                SharedfilesystemShareAccessV2(
                    self,
                    f"access-{key}-{i:02d}",
                    share_id=self.share.id,
                    access_type="ip",
                    access_to=address,
                    access_level="rw",
                )
        if self.security_group is not None:
            slug = client.role.slug
            settings = self.context.nfs_server if self.context is not None else NfsServer()
            for proto, port in nfs_ports(settings):
                NetworkingSecgroupRuleV2(
                    self,
                    f"rule-{key}-{proto}{port}",
                    security_group_id=self.security_group.id,
                    direction="ingress",
                    ethertype="IPv4",
                    protocol=proto,
                    port_range_min=port,
                    port_range_max=port,
                    remote_group_id=client.security_group_id,
                    description=format_marker(Role.NFS_SERVER, f"NFS ({proto}) from the {slug} servers", port=port),
                )
        mount = NfsMount(source=self.export_location, mount_point=self.props.mount_point)
        self._open_callbacks(key, client, mount)
        return mount

    def callback_sources(self) -> tuple[str, ...]:
        """Where the NFS server's lock callbacks come from, as CIDRs (manila, existing); see `server_cidrs`."""
        if self.props.server_cidrs or self.mode is StorageMode.CINDER_SERVER:
            return self.props.server_cidrs
        host = self.export_location.rsplit(":", 1)[0]
        if self.share is not None:  # "address:/path", known after apply
            return (Token.as_string(Fn.join("", [Fn.element(Fn.split(":", self.export_location), 0), "/32"])),)
        try:
            return (f"{ipaddress.IPv4Address(host)}/32",)
        except ValueError:  # a host name: only the operator knows its address
            return ()

    def _open_callbacks(self, key: str, client: IStorageClient, mount: NfsMount) -> None:
        """NFSv3 locking: let the NFS server call back the client's rpcbind, lockd and statd (`callback_ports`),
        on the client's security group, from the NFS server's group (cinder_server) or its address."""
        sources: list[tuple[str, str | None, str | None]] = []  # (id part, remote group, remote CIDR)
        if self.security_group is not None:
            sources.append(("server", self.security_group.id, None))
        else:
            sources.extend((f"cidr{i}", None, cidr) for i, cidr in enumerate(self.callback_sources(), start=1))
        for name, group, cidr in sources:
            for proto, port in callback_ports(mount):
                NetworkingSecgroupRuleV2(
                    self,
                    f"callback-{key}-{name}-{proto}{port}",
                    security_group_id=client.security_group_id,
                    direction="ingress",
                    ethertype="IPv4",
                    protocol=proto,
                    port_range_min=port,
                    port_range_max=port,
                    description=format_marker(client.role, f"NFSv3 lock callbacks ({proto}) from the NFS server",
                                              port=port),
                    remote_group_id=group,
                    remote_ip_prefix=cidr,
                )
