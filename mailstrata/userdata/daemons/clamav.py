"""ClamAV: clamd instances, clamav-milter and freshclam.

The platform runs clamd twice, each instance serving one client on its own server:
- on SMTP-in, an instance for amavisd only (EPEL's `clamd@amavisd`; Debian's one `clamav-daemon`), fed
  by amavisd's built-in clamd client;
- on SMTP-out, an instance for clamav-milter (EPEL's packaged `clamd@scan`; Debian's `clamav-daemon`),
  Postfix's first milter.

What every instance shares is written once, in `clamd()`:
- a unix socket only (the seed: TCP 3310): no TCP listener to protect; the client reaches it through the
  socket's group (`LocalSocketMode 660`), and a socket left over from a crash is removed at start;
- the client streams what it scans (INSTREAM), so clamd never needs read access to the client's files;
- `StreamMaxLength` is the platform's message size limit: clamd scans up to the largest message Postfix
  accepts (one decoded part of it, for amavisd), not only the first 25 MB;
- the signature database is the OS's one directory, kept fresh by freshclam; clamd reloads it by itself;
- logging goes to syslog's mail facility, with the mail logs, unless the OS profile logs to files.
The instances differ only as data (`ClamdInstance`): config file, socket, pid file, user, socket group.

clamav-milter (SMTP-out) refuses infected mail at SMTP time with the virus name, so nothing is queued
and the sender is told why. It keeps the seed's `OnFail Accept` for clamd errors and scan timeouts,
which are transient and frequent (signature reloads, huge archives); a milter that is down entirely
makes Postfix defer (`milter_default_action = tempfail`, Postfix's side). It adds no X-Virus-* headers:
nothing changes a message between the scan and the DKIM signature.

Agreements with the other daemons, named here so that they read them instead of repeating them:
- `Clamd.socket`: clamd's `LocalSocket`, amavisd's scanner address and clamav-milter's `ClamdSocket`.
- `milter_socket(os)`: where clamav-milter listens (libmilter's `inet:PORT@HOST`); Postfix names it in
  `smtpd_milters`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstrata.userdata.context import Limits
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile


@dataclass(frozen=True, kw_only=True)
class ClamdInstance:
    """What differs between the platform's clamd instances: the OS's files for it and who may connect."""

    name: str  # EPEL's instance name (clamd@<name>)
    client: str  # who scans through it, for the file's header
    conf: str  # where the instance reads its config
    socket: str
    pid_file: str
    user: str  # the user clamd runs as
    socket_group: str  # the client's group: members may connect to the socket
    log_file: str | None  # None: syslog's mail facility


@dataclass(frozen=True, kw_only=True)
class Clamd:
    """One clamd instance's config: its instance data plus what every instance shares."""

    instance: ClamdInstance
    database_dir: str
    stream_max_length: int

    @property
    def socket(self) -> str:
        return self.instance.socket


@dataclass(frozen=True, kw_only=True)
class ClamavMilter:
    milter_socket: str
    clamd_socket: str  # libclamav's `unix:/path`
    user: str
    pid_file: str
    max_file_size: int


@dataclass(frozen=True, kw_only=True)
class Freshclam:
    command: str


def for_amavis(os: OsProfile) -> ClamdInstance:
    """SMTP-in's instance for amavisd: amavisd's user runs it, so the socket and amavisd share a group."""
    return ClamdInstance(
        name="amavisd",
        client="amavisd (clamd@amavisd): it streams each decoded part of a message",
        conf=os.paths.clamd_amavis_conf,
        socket=os.paths.clamd_amavis_socket,
        pid_file=os.paths.clamd_amavis_pid,
        user=os.users.amavis,
        socket_group=os.users.amavis_group,
        log_file=None if os.values.syslog else os.paths.clamd_amavis_log,
    )


def for_milter(os: OsProfile) -> ClamdInstance:
    """SMTP-out's instance for clamav-milter: the package's scanner user; the milter user is in its socket group."""
    return ClamdInstance(
        name="scan",
        client="clamav-milter on this host: it streams each message",
        conf=str(os.paths.clamd_conf),
        socket=str(os.paths.clamd_socket),
        pid_file=str(os.paths.clamd_pid),
        user=str(os.users.clamd),
        socket_group=str(os.users.clamd_socket_group),
        log_file=None,  # with the mail logs, where the milter's rejections are
    )


def clamd(instance: ClamdInstance, limits: Limits, os: OsProfile) -> Clamd:
    return Clamd(
        instance=instance,
        database_dir=str(os.paths.clamav_db_dir),
        # The client streams whole messages (the milter) or their decoded parts (amavisd): none can be
        # larger than the largest message Postfix accepts.
        stream_max_length=limits.message_size_limit,
    )


def clamd_file(c: Clamd) -> FileSpec:
    return FileSpec(
        dest=c.instance.conf,
        template="clamav/etc/clamd.d/instance.conf.j2",
        context={"clamd": c},
    )


def milter_socket(os: OsProfile) -> str:
    """clamav-milter's socket in libmilter's syntax (`inet:PORT@HOST` or `local:/path`), as Postfix must name it."""
    return str(os.values.clamav_milter_socket)


def clamav_milter(c: Clamd, limits: Limits, os: OsProfile) -> ClamavMilter:
    return ClamavMilter(
        milter_socket=milter_socket(os),
        clamd_socket=f"unix:{c.socket}",
        user=str(os.users.clamav_milter),
        pid_file=str(os.paths.clamav_milter_pid),
        max_file_size=limits.message_size_limit,  # scan messages up to the platform's limit
    )


def milter_files(limits: Limits, os: OsProfile) -> list[FileSpec]:
    """SMTP-out: clamd for clamav-milter, the milter, and the cron job that keeps the signatures fresh."""
    c = clamd(for_milter(os), limits, os)
    return [
        clamd_file(c),
        FileSpec(
            dest=str(os.paths.clamav_milter_conf),
            template="clamav/etc/mail/clamav-milter.conf.j2",
            context={"milter": clamav_milter(c, limits, os)},
        ),
        FileSpec(
            dest=str(os.paths.freshclam_cron),
            template="clamav/etc/cron.d/mailstrata-freshclam.j2",
            context={"freshclam": Freshclam(command=str(os.paths.freshclam))},
        ),
    ]
