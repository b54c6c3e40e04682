"""SOGo (sogod): webmail, calendars and ActiveSync, with its settings, environment, cron job and repository.

SOGo authenticates the user against AD (an indirect bind: search by sAMAccountName, then bind as the
user), then logs in to the mailstore VIP with the same credentials over IMAPS 993 and ManageSieve 4190
(STARTTLS), and sends through the smtp-out VIP on submission 587 (STARTTLS, AUTH PLAIN with the user's
credentials). User profiles, folder info and sessions live in MariaDB, the session cache in memcached.

ActiveSync devices (phones, Outlook) reach the same sogod through nginx's `/Microsoft-Server-ActiveSync`, with
HTTP Basic auth checked against AD as above; the sogo-activesync package (`values.sogo_packages` of each OS
profile) provides the bundle that answers there. Without it SOGo answers that path as plain WebDAV.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstrata import contract
from mailstrata.directory import DirectorySettings
from mailstrata.userdata.context import LayerContext
from mailstrata.userdata.daemons.ldap import LdapConnection, directory_ca_file
from mailstrata.userdata.daemons.mariadb import Account
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile

LISTEN = "127.0.0.1:20000"  # sogod's own default; only nginx on the same host talks to it
MIN_MAJOR = 5  # the templates use SOGo 5's URL syntax (smtp://...?tls=YES, tlsVerifyMode)
IMAPS_PORT = contract.IMAPS
SIEVE_PORT = contract.MANAGESIEVE
SUBMISSION_PORT = contract.SUBMISSION
DRAFTS, SENT, TRASH, JUNK = contract.DRAFTS, contract.SENT, contract.TRASH, contract.JUNK  # the mailstore's
SESSION_MINUTES = 60  # web sessions idle longer are dropped by the cron job

# ActiveSync (the sogo-activesync bundle; SOGo's Installation Guide, "Microsoft Enterprise ActiveSync" and
# "... Tuning"). Phones "push" by holding a Ping (or Sync) request open until something changes; SOGo's
# defaults answer a Ping after 10 s and a Sync after 30 s, which the guide calls "similar to disable EAS push
# entirely". Each hop must let a request live longer than the one behind it:
#   SOGo's hold (+ one internal poll) < nginx's proxy_read_timeout = the webmail LB's data timeouts
#   (contract.WEBMAIL_SESSION_MS, 60 min) <= sogod's watchdog.
EAS_WINDOW_S = contract.WEBMAIL_SESSION_MS // 1000
# "slightly under 3600 seconds (say 3540 - or 59 minutes)": the answer leaves before any hop gives up.
EAS_MAX_HOLD_S = EAS_WINDOW_S - 60
# How often a held request looks for changes (IMAP, database); the guide's example for 100 users, 10 devices.
# It must stay under the holds ("must be lower than SOGoMaximumSyncInterval and SOGoMaximumPingInterval").
EAS_INTERNAL_SYNC_S = 30
# At most this many items per Sync answer (default: whatever the phone asks; the guide warns of "unexpected
# behaviour" above 512): a first sync of a large mailbox becomes many short requests, each holding a worker
# briefly. SOGoMaximumSyncResponseSize (KB) stays at its default, no cap: an item larger still goes alone.
EAS_SYNC_WINDOW = 100
# WOWatchDogRequestTimeout is in minutes (SOPE: "watchdog request timeout set to %d minutes"); the default 10
# would kill a worker holding a 59-minute Ping. The guide pairs a 3600 s proxy timeout with 60.
WATCHDOG_MINUTES = -(-EAS_WINDOW_S // 60)
# The MariaDB tables SOGo keeps its state in, by the sogo.conf key that names each one's URL.
TABLES = (
    ("SOGoProfileURL", "sogo_user_profile"),
    ("OCSFolderInfoURL", "sogo_folder_info"),
    ("OCSSessionsFolderURL", "sogo_sessions_folder"),
    ("OCSEMailAlarmsFolderURL", "sogo_alarms_folder"),
)


def require_plist_safe(path: str, value: str) -> str:
    # Values sit inside "..." in sogo.conf; GNUstep would read a quote or backslash as syntax.
    if '"' in value or "\\" in value:
        raise ValueError(f"{path}: must not contain '\"' or '\\' (sogo.conf quoting), got {value!r}")
    return value


def check_version(os: OsProfile) -> None:
    if not os.version_at_least("sogo", f"{MIN_MAJOR}.0"):
        raise ValueError(
            f"{os.name}/webmail.versions.sogo: the templates need SOGo {MIN_MAJOR} or later, got {os.versions.sogo}"
        )


@dataclass(frozen=True, kw_only=True)
class SogoLdapSource:
    """One `SOGoUserSources` entry: AD as login source and shared address book."""

    id: str
    display_name: str
    hostname: str  # space-separated LDAP URLs
    encryption: str | None  # "STARTTLS" for ldap:// URLs upgraded with StartTLS; None otherwise
    base_dn: str
    bind_dn: str
    bind_password: str  # a quoted property-list string; a Terraform expression inside at synth time
    uid_field: str
    id_field: str
    cn_field: str
    mail_field: str
    bind_fields: tuple[str, ...]
    filter: str  # an EOQualifier, not an LDAP filter


@dataclass(frozen=True, kw_only=True)
class SogoDatabaseUrl:
    key: str
    url: str


@dataclass(frozen=True, kw_only=True)
class SogoActiveSync:
    """sogo.conf's ActiveSync settings (the constants above say why each has its value)."""

    watchdog_minutes: int  # WOWatchDogRequestTimeout
    max_ping_s: int  # SOGoMaximumPingInterval
    max_sync_s: int  # SOGoMaximumSyncInterval
    internal_sync_s: int  # SOGoInternalSyncInterval
    sync_window: int  # SOGoMaximumSyncWindowSize


ACTIVESYNC = SogoActiveSync(
    watchdog_minutes=WATCHDOG_MINUTES,
    max_ping_s=EAS_MAX_HOLD_S,
    max_sync_s=EAS_MAX_HOLD_S,
    internal_sync_s=EAS_INTERNAL_SYNC_S,
    sync_window=EAS_SYNC_WINDOW,
)


@dataclass(frozen=True, kw_only=True)
class SogoConf:
    listen: str
    workers: int
    vmem_limit_mb: int
    memcached: str
    databases: tuple[SogoDatabaseUrl, ...]
    email_alarms: bool
    time_zone: str
    mail_domain: str
    imap_server: str
    sieve_server: str
    smtp_server: str
    smtp_auth_type: str
    drafts: str
    sent: str
    trash: str
    junk: str
    max_upload_kb: int
    x_forward_header: bool  # SOGo's X-Forward header (the sender's address) in every message it sends
    ldap: SogoLdapSource
    activesync: SogoActiveSync


def ldap_hostname(conn: LdapConnection) -> tuple[str, str | None]:
    """SOGo's `hostname` (space-separated URLs) and `encryption` for the connection's TLS mode.

    SOGo's Installation Guide: `hostname` is "a space-delimited list of LDAP URLs or LDAP hostnames"; SOPE
    passes an LDAP URL list to libldap's `ldap_initialize`, which tries the URLs in order (failover).

    LDAPS is in the URL scheme; StartTLS is SOGo's `encryption = STARTTLS` on ldap:// URLs, which
    makes sogod call ldap_start_tls_s before every bind and fail if it cannot.
    """
    for u in conn.urls:
        require_plist_safe("directory.urls", u)
    urls = " ".join(u.rstrip("/") for u in conn.urls)
    return urls, "STARTTLS" if conn.start_tls else None


def ldap_filter(directory: DirectorySettings) -> str:
    """An EOQualifier keeping SOGo to entries with an address in a served domain.

    SOPE turns `mail='*@d'` into the LDAP substring filter `(mail=*@d)`; SOGo ANDs it to its own
    lookups (login, address book search), so users of other domains can neither log in nor be listed.
    """
    mail = directory.attributes.mail
    alts = " OR ".join(f"{mail}='*@{d}'" for d in directory.domains)
    return f"({alts})"


def ldap_source(directory: DirectorySettings, os: OsProfile) -> SogoLdapSource:
    conn = LdapConnection.of(directory, os)
    a = directory.attributes
    hostname, encryption = ldap_hostname(conn)
    return SogoLdapSource(
        id="directory",
        display_name="Directory",
        hostname=hostname,
        encryption=encryption,
        base_dn=require_plist_safe("directory.base_dn", conn.base_dn),
        bind_dn=require_plist_safe("directory.bind_dn", conn.bind_dn),
        bind_password=conn.bind_password_quoted,  # any character: " and \ are escaped
        uid_field=a.login,
        id_field=a.login,
        cn_field="cn",
        mail_field=a.mail,
        # Login by address (the canonical name everywhere else) or by account name. SOGo ORs these and ANDs
        # `filter`; it has no "@" guard like Filters.mail_user, which is harmless while account names hold
        # no "@" (AD's default) and addresses are unique.
        bind_fields=(a.login, a.mail),
        filter=ldap_filter(directory),
    )


def sogo_conf(ctx: LayerContext, os: OsProfile, *, database: Account, memcached: str) -> SogoConf:
    """sogo.conf's settings: SOGo's state in `database`, its cache at `memcached` (host:port)."""
    wm = ctx.platform.webmail
    if wm is None:
        raise ValueError("webmail: the webmail layer needs ctx.platform.webmail (database, SOGo repository, time zone)")
    require_plist_safe("webmail.database.external_host", database.host)
    ldap = ldap_source(ctx.platform.directory, os)
    base = f"mysql://{database.user}:{database.password}@{database.host}:{database.port}/{database.database}"
    # The VIPs answer with each backend server's own certificate (self-signed by default, or one for
    # the public names), never one naming the VIP address SOGo connects to: verification would fail.
    # TLS still encrypts the users' passwords on the tenant network.
    internal_tls = "tlsVerifyMode=none"
    return SogoConf(
        listen=LISTEN,
        workers=wm.prefork,
        vmem_limit_mb=wm.vmem_limit_mb,
        memcached=memcached,
        databases=tuple(SogoDatabaseUrl(key=k, url=f"{base}/{t}") for k, t in TABLES),
        # The alarms table exists, but e-mail reminders stay off: sogo-ealarms-notify sends without a
        # user's credentials and the submission port only relays after AUTH.
        email_alarms=False,
        time_zone=require_plist_safe("webmail.timezone", wm.timezone),
        mail_domain=ctx.platform.primary_domain,
        imap_server=f"imaps://{ctx.platform.vips.mailstore}:{IMAPS_PORT}/?{internal_tls}",
        sieve_server=f"sieve://{ctx.platform.vips.mailstore}:{SIEVE_PORT}/?tls=YES&{internal_tls}",
        smtp_server=f"smtp://{ctx.platform.vips.smtp_out}:{SUBMISSION_PORT}/?tls=YES&{internal_tls}",
        smtp_auth_type="PLAIN",
        drafts=DRAFTS,
        sent=SENT,
        trash=TRASH,
        junk=JUNK,
        # Postfix's message_size_limit caps what can be sent; larger uploads would only fail later.
        max_upload_kb=ctx.platform.limits.message_size_limit // 1024,
        # nginx gives SOGo the browser's real address (PROXY protocol on the webmail pool); SOGo would write
        # it into an X-Forward header of every message it sends, telling each recipient where the user sits.
        # SOGo's log keeps it for the operator ("successful login from ...").
        x_forward_header=False,
        ldap=ldap,
        activesync=ACTIVESYNC,
    )


@dataclass(frozen=True, kw_only=True)
class SogoSysconfig:
    prefork: int
    user: str
    ldap_ca_file: str | None  # None: plain LDAP, nothing for libldap to verify


@dataclass(frozen=True, kw_only=True)
class SogoRepo:
    url: str
    gpg_key: str | None


@dataclass(frozen=True, kw_only=True)
class SogoCron:
    user: str
    sogo_tool: str
    session_minutes: int


def conf_file(ctx: LayerContext, os: OsProfile, *, database: Account, memcached: str) -> FileSpec:
    return FileSpec(
        dest=os.paths.sogo_conf,
        template="sogo/etc/sogo/sogo.conf.j2",
        context={"sogo": sogo_conf(ctx, os, database=database, memcached=memcached)},
        owner=f"root:{os.users.sogo}",
        mode="0640",  # holds the AD bind password and the database password
        comment="//",
    )


def sysconfig_file(ctx: LayerContext, os: OsProfile, *, prefork: int) -> FileSpec:
    """The unit's environment file (CentOS: /etc/sysconfig/sogo, Debian: /etc/default/sogo; same format)."""
    return FileSpec(
        dest=os.paths.sogo_sysconfig,
        template="sogo/etc/sysconfig/sogo.j2",
        context={
            "sysconfig": SogoSysconfig(
                prefork=prefork, user=os.users.sogo, ldap_ca_file=directory_ca_file(ctx.platform.directory, os)
            )
        },
    )


def cron_file(os: OsProfile) -> FileSpec:
    return FileSpec(
        dest=os.paths.sogo_cron,
        template="sogo/etc/cron.d/mailstrata-sogo.j2",
        context={"cron": SogoCron(user=os.users.sogo, sogo_tool=os.paths.sogo_tool, session_minutes=SESSION_MINUTES)},
    )


def repo_file(os: OsProfile, *, url: str, gpg_key: str | None) -> FileSpec:
    """The package repository SOGo comes from, where the OS has none (RHEL 7 packages are not free)."""
    return FileSpec(
        dest=os.paths.sogo_repo,
        template="sogo/etc/yum.repos.d/sogo.repo.j2",
        context={"repo": SogoRepo(url=url, gpg_key=gpg_key)},
    )
