"""Files and packages of the smtp_out layer: the platform's authenticated relay.

Mail flow: users submit on 587 (STARTTLS required, then SASL AUTH checked by saslauthd against the
directory); webmail and the mailstores' bounces arrive on 25 without AUTH, trusted by `mynetworks`
(the LB pools send the PROXY protocol on both ports, so Postfix sees the real client and `mynetworks`
means something behind the LB). Every message goes through clamav-milter (its own clamd) and OpenDKIM
(signing only, with the platform's one key for every served domain, the same on every server). Mail for
the platform's own domains goes to the mailstore (delivery) VIP through the transport map; everything
else goes to the Internet.

Choices where the issue is silent, each with its reason:
- SASL is Cyrus saslauthd with its LDAP backend (as the seed) rather than Dovecot's auth service: this
  layer has no Dovecot, and `testsaslauthd` checks the rendered LDAP settings on their own.
- Submission requires AUTH even from `mynetworks` (RFC 6409), and an authenticated user may only use
  an envelope sender whose directory entry is theirs (`smtpd_sender_login_maps`, LDAP, answers the
  login and the address, so both login forms work); port 25 offers no AUTH at all.
- `milter_default_action = tempfail`: if a milter is down, mail waits in the client's queue instead of
  leaving unscanned or unsigned (an unsigned message fails DMARC at the receiver, silently for the user).
  Postfix 2.10 has no per-milter action. clamav-milter keeps the seed's `OnFail Accept` for clamd
  errors and scan timeouts, which are transient and frequent (signature reloads, huge archives).
- One DKIM key for every mail domain (the seed: one per domain, and in fact one per server), as large
  providers do: the signature says d=<the sender's domain>, s=<selector>, and each domain's
  `<selector>._domainkey.<domain>` is a CNAME to the one TXT record the platform publishes in its own
  zone. A key per domain costs 2.2 KB of user-data per domain, which no compression removes: 30 domains
  went over Nova's 64 KB limit. With one key the user-data grows by a table line per domain. The KeyTable
  names the key once with the domain `%` (OpenDKIM's "the sender's domain"); the SigningTable, rendered by
  a loop over the served domains, decides which senders are signed.
- OpenDKIM runs `Mode s` (the seed: `sv`): this layer only sees mail leaving the platform, from our own
  users; verification belongs to SMTP-in, where SpamAssassin checks DKIM on inbound mail. It signs mail
  from `mynetworks` (InternalHosts) and everything submitted on 587 (MacroList daemon_name|ORIGINATING).
- saslauthd only accepts people with a mailbox in a served domain (the seed: any `sAMAccountName`), so
  service accounts such as the bind account cannot relay.
- Virus scanning (clamav-milter and its own clamd, on a unix socket; infected mail is refused with the
  virus name): its choices live with it, in `daemons/clamav.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mailstrata.directory import DirectorySettings, LdapTls
from mailstrata.errors import Problems
from mailstrata.roles import Role
from mailstrata.userdata.context import DkimKey, Limits, PlatformContext, TlsSource
from mailstrata.userdata.daemons import clamav
from mailstrata.userdata.profiles import OsProfile
from mailstrata.userdata.render import FileSpec

SMTP_PORT = 25
SUBMISSION_PORT = 587
LOOPBACK_V4 = "127.0.0.0/8"
# What the milters see first and in this order: the virus scan may reject, so nothing is signed in vain.
MILTER_ORDER = ("clamav", "opendkim")
SASL_MECHANISMS = ("PLAIN", "LOGIN")  # both need TLS (smtpd_tls_auth_only); LOGIN for old Outlook clients
SENDER_LOGIN_CHECK = True  # see the module docstring
ORIGINATING = "ORIGINATING"  # submission's milter_macro_daemon_name: OpenDKIM signs what comes from it


class MilterAction(StrEnum):
    """Postfix `milter_default_action`: what happens to a message when a milter is unavailable."""

    ACCEPT = "accept"  # the seed: mail leaves unscanned and unsigned
    TEMPFAIL = "tempfail"  # 4xx: the message stays in the client's queue until the milter is back
    REJECT = "reject"


MILTER_DEFAULT_ACTION = MilterAction.TEMPFAIL


# ---- typed contexts, one per daemon ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TlsFiles:
    cert_file: str
    key_file: str
    ca_bundle: str
    dh_params: str


@dataclass(frozen=True, kw_only=True)
class PostfixMain:
    inet_interfaces: str
    mynetworks: tuple[str, ...]
    limits: Limits
    tls: TlsFiles
    sasl_config_dir: str
    alias_maps: str
    transport_maps: str
    sender_login_maps: str | None
    smtpd_milters: tuple[str, ...]
    non_smtpd_milters: tuple[str, ...]
    milter_default_action: MilterAction
    compatibility_level: str | None  # None: the version has no compatibility_level


@dataclass(frozen=True, kw_only=True)
class PostfixService:
    """An `smtpd` listener in master.cf and its `-o` overrides, in order."""

    name: str
    port: int
    options: tuple[tuple[str, str], ...]


@dataclass(frozen=True, kw_only=True)
class PostfixMaster:
    listeners: tuple[PostfixService, ...]
    postlog: bool  # Postfix 3.4+ logs through postlogd when maillog_file is set


@dataclass(frozen=True, kw_only=True)
class TransportMap:
    routes: tuple[tuple[str, str], ...]  # (domain, next hop)


@dataclass(frozen=True, kw_only=True)
class LdapConnection:
    """How one daemon reaches the directory: URLs, TLS and the read-only bind."""

    urls: tuple[str, ...]
    start_tls: bool
    ca_file: str | None  # None: plain LDAP, nothing to verify
    base_dn: str
    bind_dn: str
    bind_password: str  # a Terraform reference; only ever written to 0600/0640 files


@dataclass(frozen=True, kw_only=True)
class PostfixLdapMap:
    ldap: LdapConnection
    query_filter: str
    result_attributes: tuple[str, ...]
    domains: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class SaslSmtpd:
    mech_list: tuple[str, ...]
    saslauthd_path: str


@dataclass(frozen=True, kw_only=True)
class Saslauthd:
    ldap: LdapConnection
    filter: str


@dataclass(frozen=True, kw_only=True)
class SaslauthdSysconfig:
    socket_dir: str
    config_file: str


@dataclass(frozen=True, kw_only=True)
class OpenDkim:
    socket: str
    user: str
    pid_file: str
    key_table: str
    signing_table: str
    trusted_hosts: str
    originating_daemon_name: str


@dataclass(frozen=True, kw_only=True)
class DkimTables:
    """KeyTable and SigningTable: the one key, named once; every served domain signs with it."""

    key_name: str
    selector: str
    key_file: str
    domains: tuple[str, ...]  # SigningTable: the From domains signed, each as d=itself


@dataclass(frozen=True, kw_only=True)
class TrustedHosts:
    hosts: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class RoleScript:
    postmap: str
    newaliases: str
    hash_maps: tuple[str, ...]
    aliases: str
    opendkim_keys_dir: str
    opendkim_user: str
    clamav_milter_user: str
    clamd_socket_group: str
    freshclam: str


# ---- helpers --------------------------------------------------------------------------------------


def postfix_milter(spec: str) -> str:
    """libmilter's `inet:PORT@HOST` (how milters name their socket) as Postfix writes it, `inet:HOST:PORT`."""
    if spec.startswith("inet:") and "@" in spec:
        port, host = spec[len("inet:") :].split("@", 1)
        return f"inet:{host}:{port}"
    if spec.startswith("local:"):
        return "unix:" + spec[len("local:") :]
    raise ValueError(f"milter socket: expected inet:PORT@HOST or local:/path, got {spec!r}")


def _ldap(directory: DirectorySettings, os: OsProfile) -> LdapConnection:
    return LdapConnection(
        urls=directory.urls,
        start_tls=directory.tls is LdapTls.STARTTLS,
        ca_file=ldap_ca_file(directory, os) if directory.uses_tls else None,
        base_dn=directory.base_dn,
        bind_dn=directory.bind_dn,
        bind_password=directory.bind_password,
    )


def ldap_ca_file(directory: DirectorySettings, os: OsProfile) -> str:
    """The directory's CA when the config gives one (written by this layer), else the system bundle."""
    if directory.ca_cert_pem is not None:
        return str(os.paths.directory_ca)
    return str(os.paths.ca_bundle)


def mail_user_filter(directory: DirectorySettings, login: str) -> str:
    """A person whose login is `login` and who has a mailbox in a served domain.

    Narrower than the seed's `sAMAccountName=%U`: service accounts (the bind account itself) and
    users without a mailbox cannot relay mail.
    """
    a = directory.attributes
    mails = "".join(f"({a.mail}=*@{d})" for d in directory.domains)
    in_domains = f"(|{mails})" if len(directory.domains) > 1 else mails
    return f"(&(objectClass={a.person_class})({a.login}={login}){in_domains})"


def internal_networks(ctx: PlatformContext) -> tuple[str, ...]:
    """Who may relay without AUTH, and whose mail OpenDKIM signs: this host, webmail and the mailstores.

    Never the VIP subnet: the LB sends PROXY, so the LB's own address is never the client.
    """
    return (LOOPBACK_V4, *ctx.networks.of(Role.WEBMAIL, Role.MAILSTORE))


DKIM_KEY_NAME = "platform"  # the KeyTable's name for the one key


def dkim_tables(ctx: PlatformContext, os: OsProfile) -> DkimTables:
    """The platform key, signing mail from every served domain (d= the sender's domain)."""
    key = _dkim_key(ctx)
    return DkimTables(
        key_name=DKIM_KEY_NAME,
        selector=key.selector,
        key_file=f"{os.paths.opendkim_keys_dir}/{key.selector}.private",
        domains=ctx.domains,
    )


def _dkim_key(ctx: PlatformContext) -> DkimKey:
    if ctx.dkim is None:
        problems = Problems()
        problems.add("dkim", "smtp_out signs every served domain's mail with the platform's DKIM key, got none; "
                             "give the context a DkimKey")
        problems.raise_if_any()
    assert ctx.dkim is not None
    return ctx.dkim


def _listeners(ctx: PlatformContext) -> tuple[PostfixService, ...]:
    def proxy(port: int) -> tuple[tuple[str, str], ...]:
        # The LB pool for this port sends the PROXY protocol: without it every client is the LB.
        return (("smtpd_upstream_proxy_protocol", "haproxy"),) if port in ctx.proxy_ports else ()

    submission: list[tuple[str, str]] = [
        ("syslog_name", "postfix/submission"),
        ("smtpd_tls_security_level", "encrypt"),
        ("smtpd_sasl_auth_enable", "yes"),
        ("smtpd_tls_auth_only", "yes"),
        ("smtpd_client_restrictions", "permit_sasl_authenticated,reject"),
    ]
    if SENDER_LOGIN_CHECK:
        submission.append(("smtpd_sender_restrictions", "reject_authenticated_sender_login_mismatch"))
    submission.append(("milter_macro_daemon_name", ORIGINATING))
    return (
        PostfixService(name="smtp", port=SMTP_PORT, options=proxy(SMTP_PORT)),
        PostfixService(name="submission", port=SUBMISSION_PORT, options=(*submission, *proxy(SUBMISSION_PORT))),
    )


def _compatibility_level(os: OsProfile) -> str | None:
    if os.version_at_least("postfix", "3.6"):
        return "3.6"
    if os.version_at_least("postfix", "3.0"):
        return "2"
    return None


def _tpl(path: str) -> str:
    return f"smtp_out{path}.j2"


# ---- the layer ------------------------------------------------------------------------------------


def files(ctx: PlatformContext, os: OsProfile) -> list[FileSpec]:
    p, u, v = os.paths, os.users, os.values
    pf = str(p.postfix_dir)
    ldap = _ldap(ctx.directory, os)
    tables = dkim_tables(ctx, os)
    internal = internal_networks(ctx)

    transport = f"{pf}/transport"
    sender_login = f"{pf}/ldap-sender-login.cf"
    dh_params = f"{pf}/ffdhe2048.pem"
    milters = {"clamav": clamav.milter_socket(os), "opendkim": str(v.opendkim_socket)}
    main = PostfixMain(
        inet_interfaces=str(v.inet_interfaces),
        mynetworks=internal,
        limits=ctx.limits,
        tls=TlsFiles(
            cert_file=f"{p.tls_dir}/server.crt",
            key_file=f"{p.tls_dir}/server.key",
            ca_bundle=str(p.ca_bundle),
            dh_params=dh_params,
        ),
        sasl_config_dir=str(p.sasl_config_dir),
        alias_maps=f"hash:{p.aliases}",
        transport_maps=f"hash:{transport}",
        sender_login_maps=f"ldap:{sender_login}" if SENDER_LOGIN_CHECK else None,
        smtpd_milters=tuple(postfix_milter(milters[m]) for m in MILTER_ORDER),
        non_smtpd_milters=(postfix_milter(milters["opendkim"]),),
        milter_default_action=MILTER_DEFAULT_ACTION,
        compatibility_level=_compatibility_level(os),
    )
    master = PostfixMaster(listeners=_listeners(ctx), postlog=os.version_at_least("postfix", "3.4"))
    opendkim_dir = str(p.opendkim_dir)
    opendkim = OpenDkim(
        socket=str(v.opendkim_socket),
        user=str(u.opendkim),
        pid_file=str(p.opendkim_pid),
        key_table=f"{opendkim_dir}/KeyTable",
        signing_table=f"{opendkim_dir}/SigningTable",
        trusted_hosts=f"{opendkim_dir}/TrustedHosts",
        originating_daemon_name=ORIGINATING,
    )
    postfix_group = str(u.postfix_group)

    specs: list[FileSpec] = [
        FileSpec(dest=f"{pf}/main.cf", template=_tpl("/etc/postfix/main.cf"), context={"main": main}),
        FileSpec(dest=f"{pf}/master.cf", template=_tpl("/etc/postfix/master.cf"), context={"master": master}),
        FileSpec(
            dest=transport,
            template=_tpl("/etc/postfix/transport"),
            context={
                "transport": TransportMap(routes=tuple((d, f"smtp:[{ctx.vips.mailstore}]:25") for d in ctx.domains))
            },
        ),
        FileSpec(dest=dh_params, template=_tpl("/etc/postfix/ffdhe2048.pem")),
        FileSpec(
            dest=f"{p.sasl_config_dir}/smtpd.conf",
            template=_tpl("/etc/sasl2/smtpd.conf"),
            context={"sasl": SaslSmtpd(mech_list=SASL_MECHANISMS, saslauthd_path=f"{p.saslauthd_run_dir}/mux")},
        ),
        FileSpec(
            dest=str(p.saslauthd_conf),
            template=_tpl("/etc/saslauthd.conf"),
            context={"saslauthd": Saslauthd(ldap=ldap, filter=mail_user_filter(ctx.directory, "%U"))},
            mode="0600",  # holds the bind password; saslauthd runs as root
        ),
        FileSpec(
            # The service's environment file: its place and its variable names are the OS's (the
            # template mirrors the profile's path: /etc/sysconfig/saslauthd or /etc/default/saslauthd).
            dest=str(p.saslauthd_sysconfig),
            template=_tpl(str(p.saslauthd_sysconfig).removeprefix(os.root)),
            context={
                "sysconfig": SaslauthdSysconfig(socket_dir=str(p.saslauthd_run_dir), config_file=str(p.saslauthd_conf))
            },
        ),
        *clamav.milter_files(ctx.limits, os),
        FileSpec(dest=str(p.opendkim_conf), template=_tpl("/etc/opendkim.conf"), context={"dkim": opendkim}),
        FileSpec(dest=opendkim.key_table, template=_tpl("/etc/opendkim/KeyTable"), context={"tables": tables}),
        FileSpec(dest=opendkim.signing_table, template=_tpl("/etc/opendkim/SigningTable"), context={"tables": tables}),
        FileSpec(
            dest=opendkim.trusted_hosts,
            template=_tpl("/etc/opendkim/TrustedHosts"),
            context={"trusted": TrustedHosts(hosts=(*internal, "::1"))},
        ),
        FileSpec(
            dest=os.paths.role_script,
            template=_tpl("/usr/local/sbin/mailstrata-setup-role"),
            context={
                "role": RoleScript(
                    postmap=str(os.commands.postmap),
                    newaliases=str(os.commands.newaliases),
                    hash_maps=(transport,),
                    aliases=str(p.aliases),
                    opendkim_keys_dir=str(p.opendkim_keys_dir),
                    opendkim_user=str(u.opendkim),
                    clamav_milter_user=str(u.clamav_milter),
                    clamd_socket_group=str(u.clamd_socket_group),
                    freshclam=str(p.freshclam),
                )
            },
            mode="0755",
        ),
    ]
    if SENDER_LOGIN_CHECK:
        specs.append(
            FileSpec(
                dest=sender_login,
                template=_tpl("/etc/postfix/ldap-sender-login.cf"),
                context={
                    "map": PostfixLdapMap(
                        ldap=ldap,
                        query_filter=ctx.directory.mail_filter("%s"),
                        # both the login and the address: a user may log in as either
                        result_attributes=(ctx.directory.attributes.login, ctx.directory.attributes.mail),
                        domains=ctx.domains,
                    )
                },
                owner=f"root:{postfix_group}",
                mode="0640",  # holds the bind password; smtpd reads it as the postfix user
            )
        )
    # One key for every domain, the same on every server: Terraform makes it, cloud-init writes it (base64).
    specs.append(FileSpec(dest=tables.key_file, secret=_dkim_key(ctx).private_key,
                          owner=f"{u.opendkim}:{u.opendkim}", mode="0600"))
    specs.extend(_provided_tls(ctx, main.tls))
    return specs


def _provided_tls(ctx: PlatformContext, tls: TlsFiles) -> list[FileSpec]:
    """The configured certificate and key (Postfix reads the key as root); none when self-signed at boot."""
    if ctx.tls.source is not TlsSource.PROVIDED:
        return []
    if ctx.tls.certificate is None or ctx.tls.private_key is None:
        problems = Problems()
        problems.add("tls", "source is provided, but the certificate or the private key is missing; give both")
        problems.raise_if_any()
    assert ctx.tls.certificate is not None and ctx.tls.private_key is not None
    return [
        FileSpec(dest=tls.cert_file, secret=ctx.tls.certificate, mode="0644"),
        FileSpec(dest=tls.key_file, secret=ctx.tls.private_key, mode="0600"),
    ]


def packages(ctx: PlatformContext, os: OsProfile) -> list[str]:
    return []
