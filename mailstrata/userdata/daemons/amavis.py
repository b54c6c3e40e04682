"""amavisd-new: the MX's content filter, between Postfix's smtp-amavis transport and the re-injection smtpd.

Mail flow on one server::

    smtpd :25 -> queue -> smtp-amavis -> amavisd 127.0.0.1:10024 (SpamAssassin, ClamAV through its own
    clamd, INSTREAM) -> smtpd 127.0.0.1:10025 (re-injection) -> queue

Agreements with Postfix, named here so that the Postfix side reads them instead of repeating them:
- `AMAVIS_PORT` on `LOOPBACK`: amavisd's SMTP listener, Postfix's `content_filter` next hop.
- `REINJECT_PORT` on `LOOPBACK`: where amavisd hands checked mail back (`$forward_method`), a master.cf
  smtpd service on that address.
- `processes(spam)`: both smtp-amavis's master.cf process limit and amavisd's `$max_servers`: more Postfix
  deliveries than amavisd children would queue up inside amavisd and time out.
And with ClamAV: amavisd's scanner address is its clamd instance's socket (`daemons/clamav.py`).

Viruses, banned attachments and spam above the kill level are discarded into the quarantine, never
bounced (their senders are forged); a cron job removes quarantined mail after `spam.quarantine_days`,
and the temporary directories that a crash or a killed child leaves behind.

Quarantine, not Junk: the SMTP client has had its 250, so what amavisd discards must stay retrievable.
Spam between tag2 and kill is already delivered and filed into Junk by the mailstore's sieve; what is
held back is what no mailbox should get unasked: viruses and banned attachments (a Junk folder would hand
them to the user) and spam scored far past any doubt (GTUBE-like scores would fill Junk and its quota).
The quarantine keeps each one as a file for `spam.quarantine_days`; an operator lists and releases them
with the quarantine tool (`quarantine_tool_file`, docs/operations.md). A release goes to the
re-injection smtpd, which does not filter again, so the released message is not quarantined anew.
And with amavisd-release: it has its socket path compiled in; `$unix_socketname` is that path
(the profile's `amavis_socket`), and the socket's policy bank speaks AM.PDP.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from mailstrata import contract
from mailstrata.errors import Problems
from mailstrata.userdata.context import LayerContext, SpamPolicy
from mailstrata.userdata.daemons.spamassassin import score
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile

LOOPBACK = contract.LOOPBACK  # amavisd and the re-injection smtpd listen here only
LOOPBACK_NET = contract.LOOPBACK_NET  # amavisd's @mynetworks: only Postfix on this server talks to it
AMAVIS_PORT = 10024  # amavisd's SMTP listener (the content filter)
REINJECT_PORT = 10025  # Postfix's re-injection smtpd, where amavisd hands back clean mail


def processes(spam: SpamPolicy) -> int:
    """amavisd's children, which is also the smtp-amavis transport's process limit in master.cf."""
    return spam.amavis_processes


def forward_method() -> str:
    """amavisd's `$forward_method`, `$notify_method` and `$release_method`: back to Postfix's re-injection
    smtpd, which has no content filter (released mail is not scanned, and so not quarantined, again)."""
    return f"smtp:[{LOOPBACK}]:{REINJECT_PORT}"


@dataclass(frozen=True, kw_only=True)
class Amavis:
    """amavisd.conf: one process count shared with master.cf, thresholds, destinies, paths."""

    version: str
    user: str
    group: str
    max_servers: int
    mydomain: str
    local_domains: tuple[str, ...]
    home: str
    tmp_dir: str
    db_dir: str
    quarantine_dir: str
    run_dir: str
    socket: str  # the AM.PDP socket amavisd-release talks to (where the OS's amavisd-release looks)
    release_command: str  # the OS's amavisd-release
    listen_address: str
    listen_port: int
    forward_method: str
    release_method: str
    mynetworks: tuple[str, ...]
    tag_level: float
    tag2_level: float
    kill_level: float
    dsn_cutoff_level: float
    quarantine_days: int  # the clean-up cron removes quarantined mail older than this
    quarantine_tool: str  # the operator's list/release script
    clamd_socket: str
    syslog: bool
    log_file: str
    search_path: str  # $path: where amavisd finds its decoders

    @property
    def socket_dir(self) -> str:
        """Where amavisd creates its release socket, after dropping root: the directory must be amavis's."""
        return posixpath.dirname(self.socket)


def check(spam: SpamPolicy, problems: Problems) -> None:
    """Add a problem for every spam setting amavisd (or its clean-up job) cannot use."""
    if spam.amavis_processes < 1:
        problems.add(
            "spam.amavis_processes",
            f"must be at least 1, got {spam.amavis_processes}; it is both smtp-amavis's process limit "
            "and amavisd's $max_servers",
        )
    if spam.quarantine_days < 1:
        problems.add("spam.quarantine_days", f"must be at least 1, got {spam.quarantine_days}")


def settings(ctx: LayerContext, os: OsProfile, *, clamd_socket: str) -> Amavis:
    """amavisd's settings; `clamd_socket`: the socket of amavisd's own clamd instance."""
    return Amavis(
        version=str(os.versions.amavisd),
        user=os.users.amavis,
        group=os.users.amavis_group,
        max_servers=processes(ctx.platform.spam),
        mydomain=ctx.platform.primary_domain,
        local_domains=ctx.platform.domains,
        home=os.paths.amavis_home,
        tmp_dir=os.paths.amavis_tmp_dir,
        db_dir=os.paths.amavis_db_dir,
        quarantine_dir=os.paths.amavis_quarantine_dir,
        run_dir=os.paths.amavis_run_dir,
        socket=os.paths.amavis_socket,
        release_command=os.commands.amavisd_release,
        listen_address=LOOPBACK,
        listen_port=AMAVIS_PORT,
        forward_method=forward_method(),
        release_method=forward_method(),
        mynetworks=(LOOPBACK_NET,),
        tag_level=ctx.platform.spam.tag_level,
        tag2_level=ctx.platform.spam.tag2_level,
        kill_level=ctx.platform.spam.kill_level,
        dsn_cutoff_level=ctx.platform.spam.dsn_cutoff_level,
        quarantine_days=ctx.platform.spam.quarantine_days,
        quarantine_tool=os.paths.amavis_quarantine_tool,
        clamd_socket=clamd_socket,
        syslog=bool(os.values.syslog),
        log_file=os.paths.amavis_log,
        search_path=str(os.values.amavis_search_path),
    )


def conf_file(a: Amavis, os: OsProfile) -> FileSpec:
    """amavisd.conf, complete (nothing inherited from the packaged file); readable by amavisd's group only."""
    return FileSpec(
        dest=os.paths.amavisd_conf,
        template="amavis/etc/amavisd/amavisd.conf.j2",
        context={
            "a": a,
            "tag": score(a.tag_level),
            "tag2": score(a.tag2_level),
            "kill": score(a.kill_level),
            "dsn": score(a.dsn_cutoff_level),
        },
        owner=f"root:{a.group}",
        mode="0640",
    )


def cleanup_cron_file(a: Amavis, os: OsProfile) -> FileSpec:
    """The cron job that removes stale temporary directories and expired quarantined mail."""
    return FileSpec(
        dest=os.paths.amavis_cleanup_cron,
        template="amavis/etc/cron.d/mailstrata-amavis-cleanup.j2",
        context={"a": a},
    )


# Within Nova's `shutdown_timeout` (60 s by default): the time a guest gets to shut down cleanly before it is
# powered off, when the server is stopped before it is destroyed (stop_before_destroy, issue 12). A child
# scanning a large message finishes well within it.
STOP_TIMEOUT_SECONDS = 40


def stop_dropin_file(os: OsProfile) -> FileSpec:
    """amavisd's unit drop-in: it stops before Postfix, with Net::Server's slow shutdown (SIGQUIT to the parent
    only, `KillMode=mixed`), so a message in the filter is finished and handed back, not queued twice."""
    return FileSpec(
        dest=f"{os.paths.systemd_unit_dir}/{os.values.amavis_unit}.service.d/mailstrata-stop.conf",
        template="amavis/etc/systemd/system/unit.service.d/mailstrata-stop.conf.j2",
        context={"postfix_unit": os.values.postfix_daemon_unit, "timeout": STOP_TIMEOUT_SECONDS},
    )


def quarantine_tool_file(a: Amavis) -> FileSpec:
    """The operator's quarantine tool: `list`, `show ID`, `release ID [RECIPIENT...]` (docs/operations.md).

    It wraps the OS's amavisd-release, which exits 0 even when amavisd refuses the release: the tool
    checks amavisd's reply and exits 1 unless the re-injection smtpd took the message (a 2xx reply).
    Root only (0700): it reads quarantined viruses and hands mail past the filters.
    """
    return FileSpec(
        dest=a.quarantine_tool,
        template="amavis/usr/local/sbin/mailstrata-quarantine.j2",
        context={"a": a},
        mode="0700",
    )
