"""Files and packages of the mailstore layer (the seed's POP-IMAP-LDA).

Mail flow: SMTP-in and SMTP-out hand mail to the delivery VIP on port 25; Postfix accepts it for the
served domains only (LDAP people map; AD groups expand to their members), and passes it over LMTP on a
unix socket to Dovecot, which runs the global sieve (spam into Junk) and the user's own, applies the
quota and writes the maildir under `/var/vmail`, a symlink into the NFS share that every mailstore
server mounts. IMAP, POP3 and ManageSieve reach Dovecot through the LB's PROXY-protocol pools.

Caveat (defect 12): Dovecot's NFS settings reduce, but do not remove, index races when two servers
serve one user at the same time. Per-user affinity (a Dovecot director or proxy tier in front of these
servers) is the robust answer; nothing here prevents adding it in front.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from mailstrata.directory import DirectorySettings, LdapTls
from mailstrata.errors import Problems
from mailstrata.roles import Role
from mailstrata.userdata.context import FtsBackend, OverQuota, PlatformContext
from mailstrata.userdata.profiles import OsProfile
from mailstrata.userdata.render import FileSpec

# Mozilla's "intermediate" TLS 1.2 suites (TLS 1.3 suites are configured apart by OpenSSL); the same
# names are understood by CentOS 7's OpenSSL 1.0.2 and by Debian's 3.0.
TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-GCM-SHA384",
    )
)
# Postfix's protocol exclusions for a TLS 1.2 floor (2.10 has no ">=TLSv1.2" syntax).
POSTFIX_TLS_PROTOCOLS = "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1"
LMTP_SOCKET = "private/dovecot-lmtp"  # relative to Postfix's queue directory, where its lmtp client runs
GLOBAL_SIEVE = "spam-to-junk.sieve"


@dataclass(frozen=True, kw_only=True)
class Listener:
    """One Dovecot inet_listener."""

    name: str
    port: int
    ssl: bool
    haproxy: bool  # the LB pool of this port sends the PROXY protocol


@dataclass(frozen=True, kw_only=True)
class LoginService:
    name: str  # imap-login, pop3-login, managesieve-login
    listeners: tuple[Listener, ...]


@dataclass(frozen=True, kw_only=True)
class Mailbox:
    name: str
    special_use: str


@dataclass(frozen=True, kw_only=True)
class DovecotConf:
    """Everything `dovecot.conf` needs; one value per setting, computed here."""

    base_dir: str
    state_dir: str
    log_path: str
    protocols: str
    vmail_uid: int
    ldap_conf: str
    ssl_cert: str
    ssl_key: str
    tls_floor_key: str  # ssl_min_protocol (2.3) or ssl_protocols (2.2)
    tls_floor_value: str
    cipher_list: str
    login_services: tuple[LoginService, ...]
    haproxy_trusted_networks: str  # empty when no listener is behind a PROXY pool
    lmtp_socket: str
    postfix_user: str
    postmaster_address: str
    mailboxes: tuple[Mailbox, ...]
    mail_plugins: str
    fts: str
    fts_key: str  # fts_lucene or fts_solr
    fts_value: str
    quota_rules: tuple[str, ...]
    quota_full_tempfail: bool
    acl_shared_dict: str
    sieve_before: str


@dataclass(frozen=True, kw_only=True)
class DovecotLdap:
    """`dovecot-ldap.conf.ext`: one file for passdb and userdb (auth binds are made on their own connection)."""

    uris: str
    starttls: bool
    ca_file: str | None
    bind_dn: str
    bind_password: str
    base: str
    login_filter: str
    user_attrs: str
    iterate_attrs: str
    iterate_filter: str


@dataclass(frozen=True, kw_only=True)
class PostfixLdapMap:
    """One Postfix `ldap:` table."""

    purpose: str
    server_host: str
    starttls: bool
    ca_file: str | None
    search_base: str
    bind_dn: str
    bind_password: str
    domains: str
    query_filter: str
    result_attribute: str
    special_result_attribute: str | None = None
    leaf_result_attribute: str | None = None


@dataclass(frozen=True, kw_only=True)
class PostfixMain:
    compatibility_level: str | None  # only Postfix 3 has it
    queue_directory: str
    data_directory: str
    aliases: str
    virtual_mailbox_domains: str
    virtual_mailbox_maps: str
    virtual_alias_maps: str
    virtual_transport: str
    relayhost: str
    mynetworks: str
    event_limit_exceptions: str
    tls_cert: str
    tls_key: str
    tls_protocols: str
    recipient_limit: int
    message_size_limit: int
    error_sleep_time: str
    soft_error_limit: int
    hard_error_limit: int
    client_connection_count_limit: int
    client_connection_rate_limit: int
    default_process_limit: int
    bounce_queue_lifetime: str
    maximal_queue_lifetime: str


@dataclass(frozen=True, kw_only=True)
class PostfixMaster:
    smtp_proxy_protocol: bool  # port 25's pool sends the PROXY protocol


@dataclass(frozen=True, kw_only=True)
class RoleScript:
    vmail_uid: int
    vmail_user: str
    vmail_home: str
    mount_point: str | None  # None: no NFS share, mail stays on the local disk
    share_dir: str | None  # <mount_point>/<vmail_subdir>
    mount_wait_seconds: int
    sievec: str
    sieve_scripts: tuple[str, ...]
    newaliases: str
    daemon_reload: str


# ---- helpers ----------------------------------------------------------------------------------------


def _ldap_ca_file(directory: DirectorySettings, os: OsProfile) -> str | None:
    """The CA bundle that verifies the directory: its own CA when given, else the system's."""
    if not directory.uses_tls:
        return None
    return str(os.paths.directory_ca) if directory.ca_cert_pem is not None else str(os.paths.ca_bundle)


def _trusted_proxies(ctx: PlatformContext) -> tuple[str, ...]:
    """Where PROXY headers may come from: Octavia's amphorae.

    An amphora talks to its members from its port on the member subnet (the mailstore subnet) when the
    pool member names a subnet, else from the VIP network: both are trusted, nothing else is. A /0
    would let any client forge its address, so it is refused.
    """
    nets = tuple(dict.fromkeys([*ctx.networks.vip_subnet, *ctx.networks.of(Role.MAILSTORE)]))
    problems = Problems()
    for n in nets:
        if ipaddress.ip_network(n, strict=False).prefixlen == 0:
            where = "networks.vip_subnet" if n in ctx.networks.vip_subnet else "networks.servers.mailstore"
            problems.add(where, f"a PROXY-protocol source must not be the whole Internet, got {n}; name the LB subnets")
    problems.raise_if_any()
    return nets


def _dovecot_tls_floor(os: OsProfile) -> tuple[str, str]:
    # Dovecot 2.3 replaced ssl_protocols by ssl_min_protocol; 2.2 only knows the exclusion list.
    if os.version_at_least("dovecot", "2.3"):
        return "ssl_min_protocol", "TLSv1.2"
    return "ssl_protocols", "!SSLv2 !SSLv3 !TLSv1 !TLSv1.1"


def _login_services(ctx: PlatformContext) -> tuple[LoginService, ...]:
    def listener(name: str, port: int, ssl: bool) -> Listener:
        return Listener(name=name, port=port, ssl=ssl, haproxy=port in ctx.proxy_ports)

    return (
        LoginService(name="imap-login", listeners=(listener("imap", 143, False), listener("imaps", 993, True))),
        LoginService(name="pop3-login", listeners=(listener("pop3", 110, False), listener("pop3s", 995, True))),
        LoginService(name="managesieve-login", listeners=(listener("sieve", 4190, False),)),
    )


def _solr_url(url: str) -> str:
    # Dovecot appends "select?..." and "update" to the URL as given.
    return url if url.endswith("/") else url + "/"


def _compatibility_level(os: OsProfile) -> str | None:
    # Postfix 3 warns about every changed default unless told which level the file was written for.
    if os.version_at_least("postfix", "3.6"):
        return "3.6"
    return "2" if os.version_at_least("postfix", "3.0") else None


def quota_rules(ctx: PlatformContext) -> tuple[str, ...]:
    q = ctx.quota
    return (f"*:storage={q.default_storage}:messages={q.default_messages}", f"Trash:storage=+{q.trash_extra}")


# ---- per-file contexts ------------------------------------------------------------------------------


def dovecot_conf(ctx: PlatformContext, os: OsProfile) -> DovecotConf:
    services = _login_services(ctx)
    proxied = any(lst.haproxy for s in services for lst in s.listeners)
    floor_key, floor_value = _dovecot_tls_floor(os)
    vmail = str(os.paths.vmail_home)
    if ctx.fts is FtsBackend.SOLR:
        fts_plugin, fts_key, fts_value = "fts_solr", "fts_solr", f"url={_solr_url(ctx.solr_url)}"
    else:
        # "@" and "." split words too, so a search for a part of an address finds it (the seed's choice).
        fts_plugin, fts_key, fts_value = "fts_lucene", "fts_lucene", "whitespace_chars=@."
    return DovecotConf(
        base_dir=str(os.paths.dovecot_base_dir),
        state_dir=str(os.paths.dovecot_state_dir),
        log_path=str(os.paths.dovecot_log),
        protocols="imap pop3 lmtp sieve",
        vmail_uid=ctx.vmail_uid,
        ldap_conf=f"{os.paths.dovecot_dir}/dovecot-ldap.conf.ext",
        ssl_cert=f"{os.paths.tls_dir}/server.crt",
        ssl_key=f"{os.paths.tls_dir}/server.key",
        tls_floor_key=floor_key,
        tls_floor_value=floor_value,
        cipher_list=TLS12_CIPHERS,
        login_services=services,
        haproxy_trusted_networks=" ".join(_trusted_proxies(ctx)) if proxied else "",
        lmtp_socket=f"{os.paths.postfix_queue_dir}/{LMTP_SOCKET}",
        postfix_user=str(os.users.postfix),
        postmaster_address=f"postmaster@{ctx.primary_domain}",
        mailboxes=(
            Mailbox(name="Drafts", special_use="\\Drafts"),
            Mailbox(name="Junk", special_use="\\Junk"),
            Mailbox(name="Trash", special_use="\\Trash"),
            Mailbox(name="Sent", special_use="\\Sent"),
            Mailbox(name="Sent Messages", special_use="\\Sent"),
        ),
        mail_plugins=f"acl quota fts {fts_plugin}",
        fts=ctx.fts.value,
        fts_key=fts_key,
        fts_value=fts_value,
        quota_rules=quota_rules(ctx),
        quota_full_tempfail=ctx.quota.over_quota is OverQuota.DEFER,
        acl_shared_dict=f"file:{vmail}/shared-mailboxes.db",
        sieve_before=f"{os.paths.sieve_global_dir}/{GLOBAL_SIEVE}",
    )


def dovecot_ldap(ctx: PlatformContext, os: OsProfile) -> DovecotLdap:
    d = ctx.directory
    a = d.attributes
    vmail = str(os.paths.vmail_home)
    mail_in_domains = "".join(f"({a.mail}=*@{dom})" for dom in d.domains)
    return DovecotLdap(
        uris=" ".join(d.urls),
        starttls=d.tls is LdapTls.STARTTLS,
        ca_file=_ldap_ca_file(d, os),
        bind_dn=d.bind_dn,
        bind_password=d.bind_password,
        base=d.base_dn,
        login_filter=d.login_filter("%n"),
        # The quota attribute holds bytes. It uses the `attribute=field=template` form on purpose: that
        # field is left out when the attribute is absent, so the default rule applies, whereas
        # `=quota_rule=*:bytes=%{ldap:...}` gives such a user "*:bytes=", which fails every login.
        user_attrs=f"=home={vmail}/%1Mn/%2.1Mn/%n, {a.quota}=quota_rule=*:bytes=%$",
        iterate_attrs=f"{a.login}=user",
        iterate_filter=f"(&(objectClass={a.person_class})(|{mail_in_domains}))"
        if len(d.domains) > 1
        else f"(&(objectClass={a.person_class}){mail_in_domains})",
    )


def postfix_ldap_maps(ctx: PlatformContext, os: OsProfile) -> tuple[PostfixLdapMap, PostfixLdapMap]:
    d = ctx.directory
    a = d.attributes
    common = {
        "server_host": " ".join(d.urls),
        "starttls": d.tls is LdapTls.STARTTLS,
        "ca_file": _ldap_ca_file(d, os),
        "search_base": d.base_dn,
        "bind_dn": d.bind_dn,
        "bind_password": d.bind_password,
        "domains": ", ".join(ctx.domains),
    }
    people = PostfixLdapMap(
        purpose="people: the mailboxes Postfix accepts mail for",
        query_filter=d.mail_filter("%s"),
        result_attribute=a.mail,
        **common,  # type: ignore[arg-type]
    )
    groups = PostfixLdapMap(
        purpose="groups: an AD group with a mail address expands to its members' addresses",
        query_filter=f"(&(objectClass={a.group_class})({a.mail}=%s))",
        # The group's own address is not a result: only its members (recursively) are.
        result_attribute="",
        special_result_attribute=a.member,
        leaf_result_attribute=a.mail,
        **common,  # type: ignore[arg-type]
    )
    return people, groups


def postfix_main(ctx: PlatformContext, os: OsProfile) -> PostfixMain:
    lim = ctx.limits
    pf = str(os.paths.postfix_dir)
    # Our own MTAs reach port 25 directly or through the delivery LB (whose amphorae use the VIP or the
    # member subnet): they are exempt from per-client limits, which would otherwise throttle every
    # delivery as one client. Exemption grants no relaying.
    internal = tuple(
        dict.fromkeys(
            [
                "127.0.0.0/8",
                *ctx.networks.vip_subnet,
                *ctx.networks.of(Role.SMTP_IN, Role.SMTP_OUT, Role.MAILSTORE),
            ]
        )
    )
    return PostfixMain(
        compatibility_level=_compatibility_level(os),
        queue_directory=str(os.paths.postfix_queue_dir),
        data_directory=str(os.paths.postfix_data_dir),
        aliases=str(os.paths.aliases),
        virtual_mailbox_domains=", ".join(ctx.domains),
        virtual_mailbox_maps=f"proxy:ldap:{pf}/ldap-people.cf",
        virtual_alias_maps=f"proxy:ldap:{pf}/ldap-groups.cf",
        virtual_transport=f"lmtp:unix:{LMTP_SOCKET}",
        relayhost=f"[{ctx.vips.smtp_out}]:25",
        mynetworks="127.0.0.0/8",
        event_limit_exceptions=", ".join(internal),
        tls_cert=f"{os.paths.tls_dir}/server.crt",
        tls_key=f"{os.paths.tls_dir}/server.key",
        tls_protocols=POSTFIX_TLS_PROTOCOLS,
        recipient_limit=lim.recipient_limit,
        message_size_limit=lim.message_size_limit,
        error_sleep_time=lim.error_sleep_time,
        soft_error_limit=lim.soft_error_limit,
        hard_error_limit=lim.hard_error_limit,
        client_connection_count_limit=lim.client_connection_count_limit,
        client_connection_rate_limit=lim.client_connection_rate_limit,
        default_process_limit=lim.default_process_limit,
        bounce_queue_lifetime=lim.bounce_queue_lifetime,
        maximal_queue_lifetime=lim.maximal_queue_lifetime,
    )


def role_script(ctx: PlatformContext, os: OsProfile) -> RoleScript:
    nfs = ctx.nfs
    return RoleScript(
        vmail_uid=ctx.vmail_uid,
        vmail_user=str(os.users.vmail),
        vmail_home=str(os.paths.vmail_home),
        mount_point=nfs.mount_point if nfs else None,
        share_dir=f"{nfs.mount_point.rstrip('/')}/{nfs.vmail_subdir}" if nfs else None,
        mount_wait_seconds=int(os.values.nfs_mount_wait_seconds),
        sievec=str(os.commands.sievec),
        sieve_scripts=(f"{os.paths.sieve_global_dir}/{GLOBAL_SIEVE}",),
        newaliases=str(os.commands.newaliases),
        daemon_reload=str(os.commands.daemon_reload),
    )


# ---- the layer --------------------------------------------------------------------------------------


def files(ctx: PlatformContext, os: OsProfile) -> list[FileSpec]:
    dovecot = dovecot_conf(ctx, os)
    people, groups = postfix_ldap_maps(ctx, os)
    dv, pf = str(os.paths.dovecot_dir), str(os.paths.postfix_dir)
    specs = [
        FileSpec(
            dest=f"{dv}/dovecot.conf",
            template="mailstore/etc/dovecot/dovecot.conf.j2",
            context={"dovecot": dovecot},
        ),
        # The bind password is inline: Dovecot reads this file as root before dropping privileges
        # (upstream's own advice is 0600 root), so no group needs to read it.
        FileSpec(
            dest=dovecot.ldap_conf,
            template="mailstore/etc/dovecot/dovecot-ldap.conf.ext.j2",
            context={"ldap": dovecot_ldap(ctx, os)},
            mode="0600",
        ),
        FileSpec(
            dest=dovecot.sieve_before,
            template=f"mailstore/etc/dovecot/sieve/{GLOBAL_SIEVE}.j2",
        ),
        FileSpec(
            dest=f"{pf}/main.cf",
            template="mailstore/etc/postfix/main.cf.j2",
            context={"main": postfix_main(ctx, os)},
        ),
        FileSpec(
            dest=f"{pf}/master.cf",
            template="mailstore/etc/postfix/master.cf.j2",
            context={"master": PostfixMaster(smtp_proxy_protocol=25 in ctx.proxy_ports)},
        ),
        # proxymap reads the LDAP tables as the postfix user; they hold the bind password.
        *(
            FileSpec(
                dest=f"{pf}/ldap-{name}.cf",
                template="mailstore/etc/postfix/ldap-map.cf.j2",
                context={"map": m},
                owner=f"root:{os.users.postfix}",
                mode="0640",
            )
            for name, m in (("people", people), ("groups", groups))
        ),
        FileSpec(
            dest=os.paths.role_script,
            template="mailstore/usr/local/sbin/mailstrata-setup-role.j2",
            context={"ctx": ctx, "script": role_script(ctx, os)},
            mode="0755",
        ),
    ]
    if ctx.nfs is not None:
        specs.append(
            FileSpec(
                dest=f"{os.paths.systemd_unit_dir}/dovecot.service.d/mailstrata.conf",
                template="mailstore/etc/systemd/system/dovecot.service.d/mailstrata.conf.j2",
                context={"mount_point": ctx.nfs.mount_point},
            )
        )
    return specs


def packages(ctx: PlatformContext, os: OsProfile) -> list[str]:
    return []
