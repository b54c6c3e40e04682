"""Files and packages of the smtp_out layer: the platform's authenticated relay.

Mail flow: users submit on 587 (STARTTLS required, then SASL AUTH checked by saslauthd against the
directory); webmail and the mailstores' bounces arrive on 25 without AUTH, trusted by `mynetworks`
(the LB pools send the PROXY protocol on both ports, so Postfix sees the real client and `mynetworks`
means something behind the LB). Every message goes through clamav-milter (its own clamd) and OpenDKIM
(signing only, with the platform's one key for every served domain, the same on every server). Mail for
the platform's own domains goes to the mailstore (delivery) VIP through the transport map; everything
else goes to the Internet.

Choices where the issue is silent, each with its reason:
- Submission requires AUTH even from `mynetworks` (RFC 6409), and an authenticated user may only use
  an envelope sender whose directory entry is theirs (`smtpd_sender_login_maps`, LDAP, answers the
  login and the address, so both login forms work); port 25 offers no AUTH at all.
- `milter_default_action = tempfail`: if a milter is down, mail waits in the client's queue instead of
  leaving unscanned or unsigned (an unsigned message fails DMARC at the receiver, silently for the user).
  Postfix 2.10 has no per-milter action. clamav-milter keeps the seed's `OnFail Accept` for clamd
  errors and scan timeouts, which are transient and frequent (signature reloads, huge archives).
- SASL (saslauthd, LDAP) and DKIM signing (OpenDKIM, one platform key for every served domain): their
  choices live with them, in `daemons/saslauthd.py` and `daemons/opendkim.py`. OpenDKIM signs mail from
  `mynetworks` (InternalHosts) and everything submitted on 587 (MacroList daemon_name|ORIGINATING).
- Virus scanning (clamav-milter and its own clamd, on a unix socket; infected mail is refused with the
  virus name): its choices live with it, in `daemons/clamav.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mailstrata.errors import Problems
from mailstrata.roles import Role
from mailstrata.userdata.context import Limits, PlatformContext, TlsSource
from mailstrata.userdata.daemons import clamav, opendkim, saslauthd
from mailstrata.userdata.daemons.ldap import LdapConnection
from mailstrata.userdata.profiles import OsProfile
from mailstrata.userdata.render import FileSpec

SMTP_PORT = 25
SUBMISSION_PORT = 587
LOOPBACK_V4 = "127.0.0.0/8"
# What the milters see first and in this order: the virus scan may reject, so nothing is signed in vain.
MILTER_ORDER = ("clamav", "opendkim")
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
class PostfixLdapMap:
    ldap: LdapConnection
    query_filter: str
    result_attributes: tuple[str, ...]
    domains: tuple[str, ...]


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


def internal_networks(ctx: PlatformContext) -> tuple[str, ...]:
    """Who may relay without AUTH, and whose mail OpenDKIM signs: this host, webmail and the mailstores.

    Never the VIP subnet: the LB sends PROXY, so the LB's own address is never the client.
    """
    return (LOOPBACK_V4, *ctx.networks.of(Role.WEBMAIL, Role.MAILSTORE))


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
    internal = internal_networks(ctx)

    transport = f"{pf}/transport"
    sender_login = f"{pf}/ldap-sender-login.cf"
    dh_params = f"{pf}/ffdhe2048.pem"
    milters = {"clamav": clamav.milter_socket(os), "opendkim": opendkim.milter_socket(os)}
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
        FileSpec(dest=dh_params, template="postfix/etc/postfix/ffdhe2048.pem.j2"),
        *saslauthd.files(ctx.directory, os),
        *clamav.milter_files(ctx.limits, os),
        *opendkim.files(ctx, os, internal_hosts=internal, originating_daemon_name=ORIGINATING),
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
                        ldap=LdapConnection.of(ctx.directory, os),
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
    specs.append(opendkim.key_file(ctx, os))
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
