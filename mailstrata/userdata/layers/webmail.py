"""Files and packages of the webmail layer: SOGo behind nginx, with MariaDB and memcached.

Mail flow: a browser (or an ActiveSync device) reaches nginx on 443 through the webmail VIP; nginx
proxies `/SOGo` and `/Microsoft-Server-ActiveSync` to sogod on 127.0.0.1:20000. SOGo authenticates the
user against AD (an indirect bind: search by sAMAccountName, then bind as the user), then logs in to
the mailstore VIP with the same credentials over IMAPS 993 and ManageSieve 4190 (STARTTLS), and sends
through the smtp-out VIP on submission 587 (STARTTLS, AUTH PLAIN with the user's credentials). User
profiles, folder info and sessions live in MariaDB (local to each server by default), the session
cache in memcached on 127.0.0.1.

Client addresses: the webmail pool does not use the PROXY protocol by default, so with a TCP listener
every request seems to come from the load balancer's address. When the construct puts 443 (or 80) in
`ctx.proxy_ports`, nginx expects the PROXY header there and takes the client address from it, trusting
only the VIP subnet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailstrata.directory import DirectorySettings, LdapTls
from mailstrata.userdata.context import PlatformContext, Webmail
from mailstrata.userdata.profiles import OsProfile
from mailstrata.userdata.render import FileSpec

SOGO_LISTEN = "127.0.0.1:20000"  # sogod's own default; only nginx on the same host talks to it
MEMCACHED_HOST = "127.0.0.1"
MEMCACHED_PORT = 11211
MARIADB_PORT = 3306
IMAPS_PORT = 993
SIEVE_PORT = 4190
SUBMISSION_PORT = 587
HEALTH_PATH = "/healthz"
# The special-use folder names the mailstore creates (Dovecot namespace `inbox`, separator '/').
DRAFTS, SENT, TRASH, JUNK = "Drafts", "Sent", "Trash", "Junk"
# Mozilla "intermediate" (ECDHE only: no dhparam file to manage); OpenSSL skips suites it lacks.
TLS_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)
# ActiveSync keeps Ping/Sync requests open; nginx must wait at least as long as SOGo may hold one.
EAS_PROXY_TIMEOUT_S = 3600
HSTS_MAX_AGE_S = 31536000  # one year

_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]+$")


def _require_identifier(path: str, value: str) -> str:
    # A database or user name goes into a URL, an SQL statement and a shell heredoc unquoted.
    if not _IDENTIFIER.match(value):
        raise ValueError(f"{path}: must be letters, digits and '_' only, got {value!r}")
    return value


def _require_plist_safe(path: str, value: str) -> str:
    # Values sit inside "..." in sogo.conf; GNUstep would read a quote or backslash as syntax.
    if '"' in value or "\\" in value:
        raise ValueError(f"{path}: must not contain '\"' or '\\' (sogo.conf quoting), got {value!r}")
    return value


def _webmail(ctx: PlatformContext) -> Webmail:
    if ctx.webmail is None:
        raise ValueError("webmail: the webmail layer needs ctx.webmail (database, SOGo repository, time zone)")
    return ctx.webmail


# ---- SOGo ------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SogoLdapSource:
    """One `SOGoUserSources` entry: AD as login source and shared address book."""

    id: str
    display_name: str
    hostname: str  # space-separated LDAP URLs
    encryption: str | None  # "STARTTLS" for ldap:// URLs upgraded with StartTLS; None otherwise
    base_dn: str
    bind_dn: str
    bind_password: str  # a Terraform reference at synth time
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
    ldap: SogoLdapSource


def ldap_hostname(directory: DirectorySettings) -> tuple[str, str | None]:
    """SOGo's `hostname` (space-separated URLs) and `encryption` for the directory's TLS mode.

    LDAPS is in the URL scheme; StartTLS is SOGo's `encryption = STARTTLS` on ldap:// URLs, which
    makes sogod call ldap_start_tls_s before every bind and fail if it cannot.
    """
    urls = " ".join(u.rstrip("/") for u in directory.urls)
    for u in directory.urls:
        _require_plist_safe("directory.urls", u)
    if directory.tls is LdapTls.STARTTLS:
        return urls, "STARTTLS"
    return urls, None


def ldap_filter(directory: DirectorySettings) -> str:
    """An EOQualifier keeping SOGo to entries with an address in a served domain.

    SOPE turns `mail='*@d'` into the LDAP substring filter `(mail=*@d)`; SOGo ANDs it to its own
    lookups (login, address book search), so users of other domains can neither log in nor be listed.
    """
    mail = directory.attributes.mail
    alts = " OR ".join(f"{mail}='*@{d}'" for d in directory.domains)
    return f"({alts})"


def sogo_conf(ctx: PlatformContext, os: OsProfile) -> SogoConf:
    wm = _webmail(ctx)
    db = wm.database
    name = _require_identifier("webmail.database.name", db.name)
    user = _require_identifier("webmail.database.user", db.user)
    host = db.external_host if db.external_host is not None else "127.0.0.1"
    _require_plist_safe("webmail.database.external_host", host)
    base = f"mysql://{user}:{db.password.ref}@{host}:{MARIADB_PORT}/{name}"
    tables = (
        ("SOGoProfileURL", "sogo_user_profile"),
        ("OCSFolderInfoURL", "sogo_folder_info"),
        ("OCSSessionsFolderURL", "sogo_sessions_folder"),
        ("OCSEMailAlarmsFolderURL", "sogo_alarms_folder"),
    )
    d = ctx.directory
    a = d.attributes
    hostname, encryption = ldap_hostname(d)
    # The VIPs answer with each backend server's own certificate (self-signed by default, or one for
    # the public names), never one naming the VIP address SOGo connects to: verification would fail.
    # TLS still encrypts the users' passwords on the tenant network.
    internal_tls = "tlsVerifyMode=none"
    return SogoConf(
        listen=SOGO_LISTEN,
        workers=wm.prefork,
        vmem_limit_mb=wm.vmem_limit_mb,
        memcached=f"{MEMCACHED_HOST}:{MEMCACHED_PORT}",
        databases=tuple(SogoDatabaseUrl(key=k, url=f"{base}/{t}") for k, t in tables),
        email_alarms=False,
        time_zone=_require_plist_safe("webmail.timezone", wm.timezone),
        mail_domain=ctx.primary_domain,
        imap_server=f"imaps://{ctx.vips.mailstore}:{IMAPS_PORT}/?{internal_tls}",
        sieve_server=f"sieve://{ctx.vips.mailstore}:{SIEVE_PORT}/?tls=YES&{internal_tls}",
        smtp_server=f"smtp://{ctx.vips.smtp_out}:{SUBMISSION_PORT}/?tls=YES&{internal_tls}",
        smtp_auth_type="PLAIN",
        drafts=DRAFTS,
        sent=SENT,
        trash=TRASH,
        junk=JUNK,
        # Postfix's message_size_limit caps what can be sent; larger uploads would only fail later.
        max_upload_kb=ctx.limits.message_size_limit // 1024,
        ldap=SogoLdapSource(
            id="directory",
            display_name="Directory",
            hostname=hostname,
            encryption=encryption,
            base_dn=_require_plist_safe("directory.base_dn", d.base_dn),
            bind_dn=_require_plist_safe("directory.bind_dn", d.bind_dn),
            bind_password=d.bind_password,
            uid_field=a.login,
            id_field=a.login,
            cn_field="cn",
            mail_field=a.mail,
            bind_fields=(a.login,),
            filter=ldap_filter(d),
        ),
    )


@dataclass(frozen=True, kw_only=True)
class SogoSysconfig:
    prefork: int
    user: str
    ldap_ca_file: str


@dataclass(frozen=True, kw_only=True)
class SogoRepo:
    url: str
    gpg_key: str | None


@dataclass(frozen=True, kw_only=True)
class SogoCron:
    user: str
    sogo_tool: str
    session_minutes: int


# ---- nginx -----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class NginxConf:
    user: str
    pid: str
    error_log: str
    access_log: str
    mime_types: str
    http_listen: str
    https_listen: str
    real_ip_from: tuple[str, ...]  # empty: no PROXY protocol, the client address is the LB's
    certificate: str
    certificate_key: str
    ssl_protocols: str
    ssl_ciphers: str
    hsts_max_age: int
    sogo_upstream: str
    web_resources: str
    client_max_body_size: int
    eas_timeout: int
    health_path: str


def nginx_conf(ctx: PlatformContext, os: OsProfile) -> NginxConf:
    proxy = ctx.proxy_ports

    def listen(port: int, *flags: str) -> str:
        return " ".join((str(port), *flags, *(("proxy_protocol",) if port in proxy else ())))

    return NginxConf(
        user=os.users.nginx,
        pid=os.paths.nginx_pid,
        error_log=f"{os.paths.nginx_log_dir}/error.log",
        access_log=f"{os.paths.nginx_log_dir}/access.log",
        mime_types=os.paths.nginx_mime_types,
        http_listen=listen(80, "default_server"),
        https_listen=listen(443, "ssl", "http2", "default_server"),
        real_ip_from=ctx.networks.vip_subnet if proxy & {80, 443} else (),
        certificate=f"{os.paths.tls_dir}/server.crt",
        certificate_key=f"{os.paths.tls_dir}/server.key",
        ssl_protocols="TLSv1.2 TLSv1.3",
        ssl_ciphers=TLS_CIPHERS,
        hsts_max_age=HSTS_MAX_AGE_S,
        sogo_upstream=f"http://{SOGO_LISTEN}",
        web_resources=os.paths.sogo_web_resources,
        client_max_body_size=ctx.limits.message_size_limit,
        eas_timeout=EAS_PROXY_TIMEOUT_S,
        health_path=HEALTH_PATH,
    )


# ---- MariaDB, memcached ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MariadbConf:
    bind_address: str
    port: int
    charset: str
    collation: str
    max_allowed_packet: str


@dataclass(frozen=True, kw_only=True)
class DbCredentials:
    user: str
    password: str  # a Terraform reference at synth time
    host: str
    port: int
    database: str


@dataclass(frozen=True, kw_only=True)
class MemcachedSysconfig:
    port: int
    user: str
    max_connections: int
    cache_mb: int
    options: str


@dataclass(frozen=True, kw_only=True)
class RoleScript:
    sogo_packages: tuple[str, ...]
    sogo_repo_url: str | None
    sogo_service: str
    conflicting_services: tuple[str, ...]
    local_database: bool
    mariadb_service: str
    secure_mariadb_root: bool  # MariaDB before 10.4 lets root in without a password
    root_credentials: str
    db_credentials: str
    db_name: str
    db_user: str
    db_client_host: str  # the host part of the MariaDB account ('127.0.0.1' for the local database)
    db_charset: str
    db_collation: str
    mysql: str
    mysqladmin: str
    sogo_user: str
    sogo_conf: str


# ---- the layer -------------------------------------------------------------------------------------


def _local_database(ctx: PlatformContext) -> bool:
    return _webmail(ctx).database.external_host is None


def files(ctx: PlatformContext, os: OsProfile) -> list[FileSpec]:
    wm = _webmail(ctx)
    if not os.version_at_least("sogo", "5.0"):
        raise ValueError(f"{os.name}/webmail.versions.sogo: the templates need SOGo 5 or later, got {os.versions.sogo}")
    local = _local_database(ctx)
    sogo_user = os.users.sogo
    db = wm.database
    specs = [
        FileSpec(
            dest=os.paths.sogo_conf,
            template="webmail/etc/sogo/sogo.conf.j2",
            context={"sogo": sogo_conf(ctx, os)},
            owner=f"root:{sogo_user}",
            mode="0640",  # holds the AD bind password and the database password
            comment="//",
        ),
        FileSpec(
            dest=os.paths.sogo_sysconfig,
            template="webmail/etc/sysconfig/sogo.j2",
            context={
                "sysconfig": SogoSysconfig(
                    prefork=wm.prefork,
                    user=sogo_user,
                    ldap_ca_file=os.paths.directory_ca if ctx.directory.ca_cert_pem else os.paths.ca_bundle,
                )
            },
        ),
        FileSpec(
            dest=os.paths.sogo_cron,
            template="webmail/etc/cron.d/mailstrata-sogo.j2",
            context={"cron": SogoCron(user=sogo_user, sogo_tool=os.paths.sogo_tool, session_minutes=60)},
        ),
        FileSpec(
            dest=os.paths.sogo_db_credentials,
            template="webmail/etc/sogo/mailstrata-db.cnf.j2",
            context={
                "db": DbCredentials(
                    user=_require_identifier("webmail.database.user", db.user),
                    password=db.password.ref,
                    host=db.external_host or "127.0.0.1",
                    port=MARIADB_PORT,
                    database=_require_identifier("webmail.database.name", db.name),
                )
            },
            mode="0600",  # the database password; read by the role script only
        ),
        FileSpec(
            dest=os.paths.nginx_conf,
            template="webmail/etc/nginx/nginx.conf.j2",
            context={"nginx": nginx_conf(ctx, os)},
        ),
        FileSpec(
            dest=os.paths.memcached_sysconfig,
            template="webmail/etc/sysconfig/memcached.j2",
            context={
                "memcached": MemcachedSysconfig(
                    port=MEMCACHED_PORT,
                    user=os.users.memcached,
                    max_connections=1024,
                    cache_mb=64,
                    # loopback only, and no UDP: memcached 1.4 listens on every address and on UDP
                    # by default, which makes it an amplifier for reflection attacks.
                    options=f"-l {MEMCACHED_HOST} -U 0",
                )
            },
        ),
        FileSpec(
            dest=os.paths.role_script,
            template="webmail/usr/local/sbin/mailstrata-setup-role.j2",
            context={"ctx": ctx, "role": _role_script(ctx, os)},
            mode="0755",
        ),
    ]
    if local:
        specs.append(
            FileSpec(
                dest=os.paths.mariadb_conf,
                template="webmail/etc/my.cnf.d/mailstrata-sogo.cnf.j2",
                context={
                    "mariadb": MariadbConf(
                        bind_address="127.0.0.1",
                        port=MARIADB_PORT,
                        charset=os.values.db_charset,
                        collation=os.values.db_collation,
                        max_allowed_packet="64M",
                    )
                },
            )
        )
    if wm.sogo_repo_url is not None:
        specs.append(
            FileSpec(
                dest=os.paths.sogo_repo,
                template="webmail/etc/yum.repos.d/sogo.repo.j2",
                context={"repo": SogoRepo(url=wm.sogo_repo_url, gpg_key=wm.sogo_repo_gpg_key)},
            )
        )
    return specs


def _role_script(ctx: PlatformContext, os: OsProfile) -> RoleScript:
    wm = _webmail(ctx)
    db = wm.database
    return RoleScript(
        sogo_packages=tuple(os.values.sogo_packages),
        sogo_repo_url=wm.sogo_repo_url,
        sogo_service=os.values.sogo_service,
        conflicting_services=tuple(os.values.conflicting_services),
        local_database=_local_database(ctx),
        mariadb_service=os.values.mariadb_service,
        secure_mariadb_root=not os.version_at_least("mariadb", "10.4"),
        root_credentials=os.paths.mariadb_root_credentials,
        db_credentials=os.paths.sogo_db_credentials,
        db_name=_require_identifier("webmail.database.name", db.name),
        db_user=_require_identifier("webmail.database.user", db.user),
        db_client_host="127.0.0.1",
        db_charset=os.values.db_charset,
        db_collation=os.values.db_collation,
        mysql=os.commands.mysql,
        mysqladmin=os.commands.mysqladmin,
        sogo_user=os.users.sogo,
        sogo_conf=os.paths.sogo_conf,
    )


def packages(ctx: PlatformContext, os: OsProfile) -> list[str]:
    wm = _webmail(ctx)
    out: list[str] = []
    # Without a repository yum cannot find SOGo; the role script then stops with a message that names
    # webmail.sogo_repo_url (an image with SOGo preinstalled also passes that check).
    if wm.sogo_repo_url is not None:
        out.extend(os.values.sogo_packages)
    if _local_database(ctx):
        out.extend(os.values.mariadb_server_packages)
    return out
