"""The spool volume (issue 12): what a queueing server must not lose when it is replaced.

terraform-provider-openstack replaces a server when its user-data changes, and mail Postfix accepted but
had not delivered yet sits in the server's own queue. So each server slot of smtp-in, smtp-out and
mailstore has its own Cinder volume (`Spool`, made by `MailLayer`), kept when the server is replaced and
attached to the replacement. At first boot, before Postfix is configured or started, the setup script
(`templates/spool/usr/local/sbin/mailstrata-setup-spool.j2`):

- uses the spool mount point as it is when something is mounted there already (a rerun, or the twin);
- else reads the volume's ID from `Spool.id_file` (the slot's cloud-config head writes it at boot), finds
  the disk under the /dev/disk/by-id names a Cinder volume may have (the NFS server's rules,
  roles/nfs_server.py), waits a bounded time, formats it only when blank and mounts it by UUID (fstab),
  with the NFS server's shell (`templates/common/_volume.sh.j2`);
- bind-mounts (fstab) a directory of the volume onto each kept directory (`Kept`): Postfix's
  queue_directory, and on smtp-in amavisd's quarantine (issue 9: quarantined mail can be released). On
  the volume's first use the directory starts as a copy of the package-made one; a replacement finds the
  previous server's and uses it as is.

A systemd drop-in per kept directory (`RequiresMountsFor=`) keeps its daemon down when the volume is
missing after a reboot, instead of starting on an empty local directory. On CentOS 7 the files on the
volume get the labels of the paths they are used under (`equivalences` in the profile's `selinux:`,
userdata/selinux.py), applied by mailstrata-setup only where the layer has a spool volume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailstrata.userdata.context import LayerContext
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile

LABEL = "mailspool"  # the filesystem's label (XFS allows 12 characters)


@dataclass(frozen=True, kw_only=True)
class Kept:
    """A directory kept on the spool volume: `name` on the volume, bind-mounted on `path`, which the systemd
    `units` need (a drop-in each waits for the mount)."""

    name: str
    path: str
    units: tuple[str, ...]
    what: str  # for comments and logs


@dataclass(frozen=True, kw_only=True)
class SpoolScript:
    id_file: str
    filesystem: str
    label: str
    device_wait_seconds: int
    mount_point: str
    by_id_dir: str
    fstab: str
    blkid: str
    postfix: str
    postconf: str
    postfix_dir: str
    postfix_service: str
    queue_dir: str
    stop_service: str
    daemon_reload: str
    kept: tuple[Kept, ...]


def postfix_queue(os: OsProfile, *, also: tuple[str, ...] = ()) -> Kept:
    """Postfix's queue: every accepted message until it is delivered (on each queueing layer). `also`: other
    units that use it (the mailstore's Dovecot makes its LMTP socket in it)."""
    return Kept(name="postfix", path=str(os.paths.postfix_queue_dir), units=(str(os.values.postfix_unit), *also),
                what="Postfix's queue")


def amavis_quarantine(os: OsProfile) -> Kept:
    """amavisd's quarantine: the mail smtp-in discarded, kept for release (spam.quarantine_days)."""
    return Kept(name="amavis-quarantine", path=str(os.paths.amavis_quarantine_dir),
                units=(str(os.values.amavis_unit),), what="amavisd's quarantine")


def script(ctx: LayerContext, os: OsProfile, kept: Sequence[Kept]) -> SpoolScript | None:
    """The setup step's settings; None when the layer has no spool volume."""
    s = ctx.spool
    if s is None:
        return None
    return SpoolScript(
        id_file=s.id_file,
        filesystem=s.filesystem.value,
        label=LABEL,
        device_wait_seconds=s.device_wait_seconds,
        mount_point=str(os.paths.spool_dir),
        by_id_dir=str(os.paths.disk_by_id_dir),
        fstab=str(os.paths.fstab),
        blkid=str(os.commands.blkid),
        postfix=str(os.commands.postfix),
        postconf=str(os.commands.postconf),
        postfix_dir=str(os.paths.postfix_dir),
        postfix_service=str(os.values.postfix_service),
        queue_dir=str(os.paths.postfix_queue_dir),
        stop_service=str(os.commands.stop_service),
        daemon_reload=str(os.commands.daemon_reload),
        kept=tuple(kept),
    )


def files(ctx: LayerContext, os: OsProfile, kept: Sequence[Kept]) -> list[FileSpec]:
    """The setup step and a drop-in for each unit that uses a kept directory (Postfix's queue first).
    Nothing when the layer has no spool volume."""
    s = script(ctx, os, kept)
    if s is None:
        return []
    return [
        FileSpec(dest=os.paths.spool_script, template="spool/usr/local/sbin/mailstrata-setup-spool.j2",
                 context={"s": s}, mode="0755"),
        *(FileSpec(dest=f"{os.paths.systemd_unit_dir}/{unit}.service.d/mailstrata-spool.conf",
                   template="spool/etc/systemd/system/unit.service.d/mailstrata-spool.conf.j2",
                   context={"mount_point": s.mount_point, "paths": [k.path for k in kept if unit in k.units],
                            "what": " and ".join(k.what for k in kept if unit in k.units)})
          for unit in dict.fromkeys(u for k in kept for u in k.units)),
    ]
