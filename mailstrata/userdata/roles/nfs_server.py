"""Files and packages of the nfs_server layer: the seed's own NFS server (`NfsShare` in Cinder mode).

At first boot the role script waits for the Cinder volume under any of its names (a bounded wait, then a
clear error naming every name it looked for), formats it only if it is blank (never a
device that holds a filesystem or a partition table of any other kind), mounts it by UUID through
fstab, gives its root to vmail and exports it to the mailstore subnets only. The NFS server's own
files (the export, the pinned side-daemon ports, the unit drop-in) come from `daemons/nfs.py`.

The volume's names: Nova gives a Cinder volume its ID as the disk's serial, and udev's
60-persistent-storage.rules links it under /dev/disk/by-id/ after the bus. virtio-blk keeps the serial's
first 20 characters (`virtio-<20>`); virtio-scsi (hw_scsi_model=virtio-scsi, hw_disk_bus=scsi) goes through
scsi_id, which gives `scsi-0QEMU_QEMU_HARDDISK_<serial>` and `scsi-SQEMU_QEMU_HARDDISK_<serial>`, with the
whole ID on current QEMU and its first 20 characters on older ones (kubernetes/cloud-provider-openstack#852
lists both); VMware's driver gives `wwn-0x<ID without dashes>`. `NfsShare` passes them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstrata.userdata.context import LayerContext
from mailstrata.userdata.daemons import nfs
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile


@dataclass(frozen=True, kw_only=True)
class RoleScript:
    devices: tuple[str, ...]  # the volume's possible names, the first one preferred
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
        devices=tuple(dict.fromkeys((s.device, *s.device_aliases))),
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
