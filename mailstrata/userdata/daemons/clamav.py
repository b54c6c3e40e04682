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
  every host that runs clamd gets freshclam's config and its schedule with it (`updater_files`), so no
  role can scan with the signatures its package shipped;
- logging goes to syslog's mail facility, with the mail logs, unless the OS profile logs to files.
The instances differ only as data (`ClamdInstance`): config file, socket, pid file, user, socket group.

freshclam (`updater_files`), on every ClamAV host:
- its config is written whole, at the OS's own path (so the first-boot run, the cron job and Debian's
  clamav-freshclam daemon all read it): the mirror is the platform's (`mail.antivirus`): ClamAV's CDN
  (`DatabaseMirror database.clamav.net`), another `DatabaseMirror`, or a `PrivateMirror` URL (a
  corporate mirror, e.g. one cvdupdate fills; freshclam 0.103 (EPEL 7) and 1.x (Debian 12) both know it);
  writing the whole file also drops EPEL's `Example` line, with which freshclam refuses to run;
- it logs to syslog's mail facility, with clamd; the database owner is the package's compiled-in one
  (EPEL's clamupdate, Debian's clamav);
- it runs from one cron job of ours, hourly (ClamAV asks for at most one check an hour; most runs are one
  DNS query, or one HTTP date check with a private mirror): EPEL ships its cron job (cron.d/clamav-update)
  disabled by /etc/sysconfig/freshclam's FRESHCLAM_DELAY and no running updater, and clamd's SelfCheck
  reloads what freshclam brings. Debian's clamav-freshclam package also runs freshclam as a daemon by
  default; both read the same config, and freshclam's lock on the database directory serialises them.

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

from mailstrata.userdata.context import AntivirusPolicy, Limits
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
    conf: str
    database_dir: str
    database_mirror: str
    private_mirror: str | None  # a URL; None: database_mirror
    syslog: bool  # False: freshclam's own log file, as the OS profile's clamd does


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


def updater(antivirus: AntivirusPolicy, os: OsProfile) -> Freshclam:
    return Freshclam(
        command=str(os.paths.freshclam),
        conf=str(os.paths.freshclam_conf),
        database_dir=str(os.paths.clamav_db_dir),
        database_mirror=antivirus.database_mirror,
        private_mirror=antivirus.private_mirror,
        syslog=bool(os.values.get("syslog", True)),
    )


UPDATER_TEMPLATES = ("clamav/etc/freshclam.conf.j2", "clamav/etc/cron.d/mailstrata-freshclam.j2")


def updater_files(antivirus: AntivirusPolicy, os: OsProfile) -> list[FileSpec]:
    """Every ClamAV host: freshclam's config (the platform's mirror) and the cron job that runs it."""
    f = updater(antivirus, os)
    conf, cron = UPDATER_TEMPLATES
    return [
        FileSpec(dest=f.conf, template=conf, context={"freshclam": f}),
        FileSpec(dest=str(os.paths.freshclam_cron), template=cron, context={"freshclam": f}),
    ]


def scanner_files(c: Clamd, antivirus: AntivirusPolicy, os: OsProfile) -> list[FileSpec]:
    """One clamd instance with what keeps its signatures fresh: what a role that scans mail writes."""
    return [clamd_file(c), *updater_files(antivirus, os)]


def milter_files(limits: Limits, antivirus: AntivirusPolicy, os: OsProfile) -> list[FileSpec]:
    """SMTP-out: clamd for clamav-milter (with freshclam's config and schedule), and the milter."""
    c = clamd(for_milter(os), limits, os)
    return [
        *scanner_files(c, antivirus, os),
        FileSpec(
            dest=str(os.paths.clamav_milter_conf),
            template="clamav/etc/mail/clamav-milter.conf.j2",
            context={"milter": clamav_milter(c, limits, os)},
        ),
    ]
