"""Files and packages of the nfs_server layer: the seed's own NFS server (`NfsShare` in Cinder mode).

At first boot the role script waits for the Cinder volume, formats it only if it is blank (never a
device that holds a filesystem or a partition table of any other kind), mounts it by UUID through
fstab, gives its root to vmail and exports it to the mailstore subnets only. NFSv3's side daemons
(mountd, statd, lockd) are pinned to the ports in `NfsServer`, so security groups can name them.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstrata.errors import Problems
from mailstrata.roles import Role
from mailstrata.userdata.context import PlatformContext
from mailstrata.userdata.profiles import OsProfile
from mailstrata.userdata.render import FileSpec

# rw: mailstores write mail; sync: a write is on disk before the server answers (Dovecot's fsyncs mean
# something); no_subtree_check: the export is a whole filesystem, and subtree checks break on renames
# (maildir renames constantly); root_squash: every mail file belongs to vmail (uid 5000) and is written
# as vmail, so root on a client never needs to write here and is mapped to nobody.
EXPORT_OPTIONS = "rw,sync,no_subtree_check,root_squash"


@dataclass(frozen=True, kw_only=True)
class Exports:
    path: str
    clients: tuple[str, ...]
    options: str

    @property
    def entries(self) -> str:
        return " ".join(f"{c}({self.options})" for c in self.clients)


@dataclass(frozen=True, kw_only=True)
class Ports:
    mountd: int
    statd: int
    lockd_tcp: int
    lockd_udp: int


@dataclass(frozen=True, kw_only=True)
class RoleScript:
    device: str
    filesystem: str
    export_path: str
    device_wait_seconds: int
    fstab: str
    vmail_uid: int
    blkid: str
    exportfs: str
    daemon_reload: str


def exports(ctx: PlatformContext) -> Exports:
    clients = ctx.networks.of(Role.MAILSTORE)
    problems = Problems()
    if not clients:
        problems.add("networks.servers.mailstore", "the NFS export needs the mailstore subnets, got none")
    problems.raise_if_any()
    return Exports(path=ctx.nfs_server.export_path, clients=clients, options=EXPORT_OPTIONS)


def role_script(ctx: PlatformContext, os: OsProfile) -> RoleScript:
    s = ctx.nfs_server
    return RoleScript(
        device=s.device,
        filesystem=s.filesystem.value,
        export_path=s.export_path,
        device_wait_seconds=s.device_wait_seconds,
        fstab=str(os.paths.fstab),
        vmail_uid=ctx.vmail_uid,
        blkid=str(os.commands.blkid),
        exportfs=str(os.commands.exportfs),
        daemon_reload=str(os.commands.daemon_reload),
    )


def files(ctx: PlatformContext, os: OsProfile) -> list[FileSpec]:
    s = ctx.nfs_server
    ports = Ports(mountd=s.mountd_port, statd=s.statd_port, lockd_tcp=s.lockd_tcp_port, lockd_udp=s.lockd_udp_port)
    return [
        FileSpec(dest=os.paths.exports, template="nfs_server/etc/exports.j2", context={"exports": exports(ctx)}),
        FileSpec(dest=os.paths.nfs_sysconfig, template="nfs_server/etc/sysconfig/nfs.j2", context={"ports": ports}),
        FileSpec(
            dest=f"{os.paths.modprobe_dir}/lockd.conf",
            template="nfs_server/etc/modprobe.d/lockd.conf.j2",
            context={"ports": ports},
        ),
        FileSpec(
            dest=f"{os.paths.systemd_unit_dir}/nfs-server.service.d/mailstrata.conf",
            template="nfs_server/etc/systemd/system/nfs-server.service.d/mailstrata.conf.j2",
            context={"export_path": s.export_path},
        ),
        FileSpec(
            dest=os.paths.role_script,
            template="nfs_server/usr/local/sbin/mailstrata-setup-role.j2",
            context={"script": role_script(ctx, os)},
            mode="0755",
        ),
    ]


def packages(ctx: PlatformContext, os: OsProfile) -> list[str]:
    return []
