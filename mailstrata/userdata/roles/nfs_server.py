"""Files and packages of the nfs_server layer: the seed's own NFS server (`NfsShare` in Cinder mode).

At first boot the role script waits for the Cinder volume, formats it only if it is blank (never a
device that holds a filesystem or a partition table of any other kind), mounts it by UUID through
fstab, gives its root to vmail and exports it to the mailstore subnets only. The NFS server's own
files (the export, the pinned side-daemon ports, the unit drop-in) come from `daemons/nfs.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstrata.userdata.context import LayerContext
from mailstrata.userdata.daemons import nfs
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile


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


def role_script(ctx: LayerContext, os: OsProfile) -> RoleScript:
    s = ctx.nfs_server
    return RoleScript(
        device=s.device,
        filesystem=s.filesystem.value,
        export_path=s.export_path,
        device_wait_seconds=s.device_wait_seconds,
        fstab=str(os.paths.fstab),
        vmail_uid=ctx.platform.vmail_uid,
        blkid=str(os.commands.blkid),
        exportfs=str(os.commands.exportfs),
        daemon_reload=str(os.commands.daemon_reload),
    )


def files(ctx: LayerContext, os: OsProfile) -> list[FileSpec]:
    return [
        *nfs.files(ctx, os),
        FileSpec(
            dest=os.paths.role_script,
            template="nfs_server/usr/local/sbin/mailstrata-setup-role.j2",
            context={"script": role_script(ctx, os)},
            mode="0755",
        ),
    ]


def packages(ctx: LayerContext, os: OsProfile) -> list[str]:
    return []
