"""Files and packages of the mailstore layer (the seed's POP-IMAP-LDA).

Mail flow: SMTP-in and SMTP-out hand mail to the delivery VIP on port 25; Postfix accepts it for the
served domains only (LDAP people map; AD groups expand to their members), and passes it over LMTP on a
unix socket to Dovecot, which runs the global sieve (spam into Junk) and the user's own, applies the
quota and writes the maildir under `/var/vmail`, a symlink into the NFS share that every mailstore
server mounts. IMAP, POP3 and ManageSieve reach Dovecot through the LB's PROXY-protocol pools.
Dovecot's settings (and the NFS caveat) live in `mailstrata.userdata.daemons.dovecot`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstrata.directory import DirectorySettings, LdapTls
from mailstrata.roles import Role
from mailstrata.userdata.context import PlatformContext
from mailstrata.userdata.daemons import dovecot
from mailstrata.userdata.profiles import OsProfile
from mailstrata.userdata.render import FileSpec

# Postfix's protocol exclusions for a TLS 1.2 floor (2.10 has no ">=TLSv1.2" syntax).
POSTFIX_TLS_PROTOCOLS = "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1"
LMTP_SOCKET = "private/dovecot-lmtp"  # relative to Postfix's queue directory, where its lmtp client runs


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


def _compatibility_level(os: OsProfile) -> str | None:
    # Postfix 3 warns about every changed default unless told which level the file was written for.
    if os.version_at_least("postfix", "3.6"):
        return "3.6"
    return "2" if os.version_at_least("postfix", "3.0") else None


# ---- per-file contexts ------------------------------------------------------------------------------


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
        sieve_scripts=(dovecot.global_sieve(os),),
        newaliases=str(os.commands.newaliases),
        daemon_reload=str(os.commands.daemon_reload),
    )


# ---- the layer --------------------------------------------------------------------------------------


def files(ctx: PlatformContext, os: OsProfile) -> list[FileSpec]:
    people, groups = postfix_ldap_maps(ctx, os)
    pf = str(os.paths.postfix_dir)
    specs = [
        # Postfix hands every accepted message to Dovecot over LMTP on this socket.
        *dovecot.files(ctx, os, lmtp_socket=LMTP_SOCKET),
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
        specs.append(dovecot.systemd_dropin(os, requires_mount=ctx.nfs.mount_point))
    return specs


def packages(ctx: PlatformContext, os: OsProfile) -> list[str]:
    return []
