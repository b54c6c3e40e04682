"""The kernel NFS server (NFSv3): the export, the side daemons' fixed ports and the start condition.

NFSv3's side daemons (mountd, statd, lockd) pick random ports unless told; they are pinned to the ports
in `NfsServer`, so security groups can name them. mountd's and statd's ports go into a file whose format
the OS profile names (`values.nfs_format`):

- `sysconfig` (CentOS 7, nfs-utils 1.3): `/etc/sysconfig/nfs` (MOUNTD_PORT, STATD_PORT), which
  nfs-config.service turns into the daemons' options.
- `nfs_conf` (Debian 12, nfs-utils 2.6): an nfs.conf(5) drop-in in `/etc/nfs.conf.d/`. Under systemd the
  daemons read only /etc/nfs.conf and /etc/nfs.conf.d/*.conf; Debian ignores the command-line options in
  /etc/default/nfs-kernel-server since nfs-utils 1:2.6.1-1 (its NEWS.Debian).

lockd is the kernel's: its ports are module options (`/etc/modprobe.d/lockd.conf`) on both, and also in
the ports file (`[lockd] port/udp-port`, which rpc.statd writes to /proc/sys/fs/nfs, rpc.statd(8);
CentOS 7's LOCKD_TCPPORT/LOCKD_UDPPORT, which nfs-config.service's nfs-utils_env.sh sets with sysctl),
so a lockd module loaded before the file was written still gets them.

The mailstores (NFS clients, `client_files`) pin statd and lockd too: NFSv3 locks call back. A lock that
was blocked is granted by the server's lockd calling the client's lockd (NLM_GRANTED), and after a reboot
the server's statd tells the client's statd (SM_NOTIFY), each found through the client's rpcbind (111).
Without these, a blocked fcntl lock of Dovecot's on the share waits for the client's own retry (every 30 s,
the kernel's NLMCLNT_POLL_TIMEOUT) and the client never reclaims its locks after the server rebooted.
NFSv4 has no side protocol (locking is in the NFS protocol itself, on 2049): a mount with `vers=4`,
`nolock` or `local_lock=all` needs none of this (`nlm_callbacks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mailstrata.errors import Problems
from mailstrata.roles import Role
from mailstrata.userdata.context import LayerContext, NfsMount, NfsServer
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
    mountd: int | None  # None: a client, which runs no mountd
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


    @classmethod
    def of_client(cls, mount: NfsMount) -> Ports:
        return cls(mountd=None, statd=mount.statd_port, lockd_tcp=mount.lockd_tcp_port,
                   lockd_udp=mount.lockd_udp_port)


def mount_version(options: str) -> int:
    """The NFS major version a mount's options ask for (`vers=`/`nfsvers=`); 3 when they name none, as the
    platform's mounts always do (mount.nfs alone would negotiate 4 first)."""
    for opt in options.split(","):
        key, _, value = opt.partition("=")
        if key in ("vers", "nfsvers") and value:
            return int(value.split(".")[0])
    return 3


def nlm_callbacks(mount: NfsMount) -> bool:
    """Whether the server calls this client back for locks: NFSv3 (or 2) with network locking (not `nolock`,
    nor `local_lock=all`, which keep every lock on the client; `posix` or `flock` keep only one kind)."""
    opts = {o.partition("=")[0]: o.partition("=")[2] for o in mount.options.split(",")}
    return mount_version(mount.options) < 4 and "nolock" not in opts and opts.get("local_lock") != "all"


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
        *_port_files(ports, os),
        # Never export the empty mount point: the NFS server starts only once the volume is mounted.
        FileSpec(
            dest=f"{os.paths.systemd_unit_dir}/nfs-server.service.d/mailstrata.conf",
            template="nfs/etc/systemd/system/nfs-server.service.d/mailstrata.conf.j2",
            context={"export_path": s.export_path},
        ),
    ]


def client_files(ctx: LayerContext, os: OsProfile) -> list[FileSpec]:
    """A mailstore: statd's and lockd's pinned ports, so the NFS server's lock callbacks can be let in
    (NfsShare.grant_mount opens them); nothing without a share or when the mount needs no callbacks."""
    if ctx.nfs is None or not nlm_callbacks(ctx.nfs):
        return []
    return _port_files(Ports.of_client(ctx.nfs), os)


def _port_files(ports: Ports, os: OsProfile) -> list[FileSpec]:
    """The pinned ports in the OS's format, and lockd's module options (the kernel's lockd reads only these)."""
    return [
        FileSpec(
            dest=os.paths.nfs_ports_conf, template=TEMPLATES[Format(os.values.nfs_format)], context={"ports": ports}
        ),
        FileSpec(dest=f"{os.paths.modprobe_dir}/lockd.conf", template="nfs/etc/modprobe.d/lockd.conf.j2",
                 context={"ports": ports}),
    ]
