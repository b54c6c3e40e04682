"""The kernel NFS server (NFSv3): the export, the side daemons' fixed ports and the start condition.

NFSv3's side daemons (mountd, statd, lockd) pick random ports unless told; they are pinned to the ports
in `NfsServer`, so security groups can name them. mountd's and statd's ports go into a file whose format
the OS profile names (`values.nfs_format`):

- `sysconfig` (CentOS 7, nfs-utils 1.3): `/etc/sysconfig/nfs` (MOUNTD_PORT, STATD_PORT), which
  nfs-config.service turns into the daemons' options.
- `nfs_conf` (Debian 12, nfs-utils 2.6): an nfs.conf(5) drop-in in `/etc/nfs.conf.d/`. Under systemd the
  daemons read only /etc/nfs.conf and /etc/nfs.conf.d/*.conf; Debian ignores the command-line options in
  /etc/default/nfs-kernel-server since nfs-utils 1:2.6.1-1 (its NEWS.Debian).

lockd is the kernel's: its ports are module options (`/etc/modprobe.d/lockd.conf`) on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mailstrata.errors import Problems
from mailstrata.roles import Role
from mailstrata.userdata.context import LayerContext, NfsServer
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile

# rw: mailstores write mail; sync: a write is on disk before the server answers (Dovecot's fsyncs mean
# something); no_subtree_check: the export is a whole filesystem, and subtree checks break on renames
# (maildir renames constantly); root_squash: every mail file belongs to vmail (uid 5000) and is written
# as vmail, so root on a client never needs to write here and is mapped to nobody.
EXPORT_OPTIONS = "rw,sync,no_subtree_check,root_squash"


class Format(StrEnum):
    """The file format of the OS's mountd/statd port settings (`values.nfs_format` in the OS profile)."""

    SYSCONFIG = "sysconfig"  # shell variables read by nfs-config.service
    NFS_CONF = "nfs_conf"  # an nfs.conf(5) file: [section] and key=value


TEMPLATES = {
    Format.SYSCONFIG: "nfs/etc/sysconfig/nfs.j2",
    Format.NFS_CONF: "nfs/etc/nfs.conf.d/mailstrata.conf.j2",
}


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

    @classmethod
    def of(cls, server: NfsServer) -> Ports:
        return cls(
            mountd=server.mountd_port,
            statd=server.statd_port,
            lockd_tcp=server.lockd_tcp_port,
            lockd_udp=server.lockd_udp_port,
        )


def exports(ctx: LayerContext) -> Exports:
    """The mailbox volume, exported to the mailstore subnets only."""
    clients = ctx.platform.networks.of(Role.MAILSTORE)
    problems = Problems()
    if not clients:
        problems.add("networks.servers.mailstore", "the NFS export needs the mailstore subnets, got none")
    problems.raise_if_any()
    return Exports(path=ctx.nfs_server.export_path, clients=clients, options=EXPORT_OPTIONS)


def files(ctx: LayerContext, os: OsProfile) -> list[FileSpec]:
    """/etc/exports, the pinned ports (in the OS's format), lockd's module options and the unit drop-in."""
    s = ctx.nfs_server
    ports = Ports.of(s)
    return [
        FileSpec(dest=os.paths.exports, template="nfs/etc/exports.j2", context={"exports": exports(ctx)}),
        FileSpec(
            dest=os.paths.nfs_ports_conf, template=TEMPLATES[Format(os.values.nfs_format)], context={"ports": ports}
        ),
        FileSpec(
            dest=f"{os.paths.modprobe_dir}/lockd.conf",
            template="nfs/etc/modprobe.d/lockd.conf.j2",
            context={"ports": ports},
        ),
        # Never export the empty mount point: the NFS server starts only once the volume is mounted.
        FileSpec(
            dest=f"{os.paths.systemd_unit_dir}/nfs-server.service.d/mailstrata.conf",
            template="nfs/etc/systemd/system/nfs-server.service.d/mailstrata.conf.j2",
            context={"export_path": s.export_path},
        ),
    ]
