"""Files and packages of the smtp_in layer: the MX.

Mail flow on one server::

    Internet -> LB (PROXY pool) -> smtpd :25 (PROXY, STARTTLS; HELO/sender/recipient checks, LDAP
    recipient check, DNSBLs, SPF policy) -> queue -> smtp-amavis -> amavisd :10024 (SpamAssassin,
    ClamAV through its own clamd, INSTREAM) -> smtpd 127.0.0.1:10025 (re-injection) -> queue ->
    transport map -> smtp:[delivery VIP]:25

The values that must agree between daemons are computed once here: the smtp-amavis process limit and
amavisd's `$max_servers` both come from `spam.amavis_processes`; the re-injection address is both
amavisd's `$forward_method` and a master.cf service name; the ClamAV socket is both clamd's
`LocalSocket` and amavisd's scanner address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailstrata.directory import DirectorySettings, LdapTls
from mailstrata.errors import Problems
from mailstrata.userdata.context import Limits, PlatformContext, TlsSource
from mailstrata.userdata.daemons import amavis, clamav, policyd_spf, spamassassin
from mailstrata.userdata.daemons.amavis import AMAVIS_PORT, REINJECT_PORT
from mailstrata.userdata.profiles import OsProfile
from mailstrata.userdata.render import FileSpec

SMTP_PORT = 25
LOOPBACK = "127.0.0.1"
LOOPBACK_NET = "127.0.0.0/8"
AMAVIS_TRANSPORT = "smtp-amavis"
SPF_SERVICE = "policyd-spf"
# Modern floor for STARTTLS on the MX: TLS 1.2 and later (Postfix 2.10 knows every name listed here).
TLS_PROTOCOLS = ("!SSLv2", "!SSLv3", "!TLSv1", "!TLSv1.1")
# Reply filters for DNSBLs whose answers outside the listing range are errors, not listings. Spamhaus
# answers 127.255.255.x to queries through public or unregistered resolvers; without a filter Postfix
# would read that as "listed" and reject every client. A filter given in the config (`zone=...`) wins.
DNSBL_REPLY_FILTERS: dict[str, str] = {"zen.spamhaus.org": "127.0.0.[2..11]"}
_DNSBL = re.compile(
    r"^(?P<zone>[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+)"
    r"(=(?P<filter>(\d+|\[[\d.;]+\])(\.(\d+|\[[\d.;]+\])){3}))?$"
)


# ---- typed contexts ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LdapMap:
    """One Postfix ldap_table(5) file against the directory."""

    server_host: str  # the directory URLs, space-separated (Postfix tries them in order)
    start_tls: bool
    tls_ca_cert_file: str | None  # the CA that signed the directory certificate; None with plain LDAP
    uses_tls: bool
    search_base: str
    query_filter: str
    result_attribute: str
    bind_dn: str
    bind_pw: str
    domains: tuple[str, ...]  # only addresses in these domains are looked up


@dataclass(frozen=True, kw_only=True)
class MasterService:
    """One master.cf service line and its `-o` overrides (master(5))."""

    name: str
    type: str
    private: str = "-"
    unpriv: str = "-"
    chroot: str = "n"  # CentOS's master.cf runs nothing chrooted; the maps and sockets then need no copies
    wakeup: str = "-"
    maxproc: str = "-"
    command: str
    options: tuple[tuple[str, str], ...] = ()
    argv: str | None = None  # `user=... argv=...` of spawn/pipe services
    why: str | None = None  # a one-line comment above the service

    @property
    def line(self) -> str:
        return (
            f"{self.name:<10} {self.type:<5} {self.private:<7} {self.unpriv:<7} {self.chroot:<7} "
            f"{self.wakeup:<7} {self.maxproc:<7} {self.command}"
        ).rstrip()


@dataclass(frozen=True, kw_only=True)
class PostfixMain:
    """The settings main.cf.j2 writes; lists are in their final order."""

    relay_domains: tuple[str, ...]
    relay_recipient_maps: tuple[str, ...]
    transport_maps: str
    alias_maps: str
    mynetworks: tuple[str, ...]
    client_limit_exceptions: tuple[str, ...]  # smtpd_client_event_limit_exceptions
    proxy_protocol: bool  # port 25 expects the PROXY protocol (set in master.cf, reported here)
    relay_restrictions: tuple[str, ...]
    recipient_restrictions: tuple[str, ...]
    reject_codes: tuple[tuple[str, int, str], ...]  # (parameter, code, why)
    content_filter: str
    spf_service: str
    tls_cert_file: str
    tls_key_file: str
    tls_protocols: str
    limits: Limits
    postfix_version: str
    compatibility_level: str | None  # Postfix 3.0+ only; None on 2.x, which has no such parameter


# ---- computations ---------------------------------------------------------------------------------


def dnsbl_restrictions(dnsbls: tuple[str, ...]) -> tuple[str, ...]:
    """`reject_rbl_client` entries in the configured order, with known reply filters added."""
    out: list[str] = []
    for entry in dnsbls:
        zone = entry.split("=", 1)[0]
        spec = entry if "=" in entry or zone not in DNSBL_REPLY_FILTERS else f"{zone}={DNSBL_REPLY_FILTERS[zone]}"
        out.append(f"reject_rbl_client {spec}")
    return tuple(out)


def validate(ctx: PlatformContext) -> None:
    """Raise one ConfigError listing every smtp_in input the daemons would reject."""
    problems = Problems()
    if not ctx.domains:
        problems.add("domains", "must list at least one mail domain, got none; the MX relays only for these")
    amavis.check(ctx.spam, problems)
    policyd_spf.check(ctx.spam, problems)
    for i, entry in enumerate(ctx.spam.dnsbls):
        if not _DNSBL.match(entry):
            problems.add(
                f"spam.dnsbls[{i}]",
                f"must be a DNS zone, optionally with a reply filter (zone=127.0.0.[2..11]), got {entry!r}",
            )
    problems.raise_if_any()


def ldap_people_map(d: DirectorySettings, ca_file: str | None) -> LdapMap:
    """People with a mail address in a served domain: the MX's list of valid recipients."""
    return _ldap_map(d, ca_file, d.mail_filter("%s"), d.attributes.mail)


def ldap_groups_map(d: DirectorySettings, ca_file: str | None) -> LdapMap:
    """AD groups with a mail address (distribution lists), which are valid recipients too."""
    a = d.attributes
    return _ldap_map(d, ca_file, f"(&(objectClass={a.group_class})({a.mail}=%s))", a.mail)


def _ldap_map(d: DirectorySettings, ca_file: str | None, query_filter: str, result: str) -> LdapMap:
    return LdapMap(
        server_host=" ".join(d.urls),
        start_tls=d.tls is LdapTls.STARTTLS,
        tls_ca_cert_file=ca_file,
        uses_tls=d.uses_tls,
        search_base=d.base_dn,
        query_filter=query_filter,
        result_attribute=result,
        bind_dn=d.bind_dn,
        bind_pw=d.bind_password,
        domains=d.domains,
    )


def master_services(ctx: PlatformContext, os: OsProfile) -> tuple[MasterService, ...]:
    """master.cf: CentOS 7's stock services plus the MX's own (PROXY on 25, amavis, re-injection, SPF)."""
    smtp_options: tuple[tuple[str, str], ...] = ()
    if SMTP_PORT in ctx.proxy_ports:
        smtp_options = (("smtpd_upstream_proxy_protocol", "haproxy"),)
    n = str(ctx.spam.amavis_processes)
    stock = (
        MasterService(
            name="smtp",
            type="inet",
            private="n",
            command="smtpd",
            options=smtp_options,
            why="port 25, behind the LB's PROXY pool: the real client address reaches every check"
            if smtp_options
            else "port 25; the LB pool sends no PROXY header",
        ),
        MasterService(name="pickup", type="unix", private="n", wakeup="60", maxproc="1", command="pickup"),
        MasterService(name="cleanup", type="unix", private="n", maxproc="0", command="cleanup"),
        MasterService(name="qmgr", type="unix", private="n", wakeup="300", maxproc="1", command="qmgr"),
        MasterService(name="tlsmgr", type="unix", wakeup="1000?", maxproc="1", command="tlsmgr"),
        MasterService(name="rewrite", type="unix", command="trivial-rewrite"),
        MasterService(name="bounce", type="unix", maxproc="0", command="bounce"),
        MasterService(name="defer", type="unix", maxproc="0", command="bounce"),
        MasterService(name="trace", type="unix", maxproc="0", command="bounce"),
        MasterService(name="verify", type="unix", maxproc="1", command="verify"),
        MasterService(name="flush", type="unix", private="n", wakeup="1000?", maxproc="0", command="flush"),
        MasterService(name="proxymap", type="unix", command="proxymap"),
        MasterService(name="proxywrite", type="unix", maxproc="1", command="proxymap"),
        MasterService(name="smtp", type="unix", command="smtp"),
        MasterService(name="relay", type="unix", command="smtp"),
        MasterService(name="showq", type="unix", private="n", command="showq"),
        MasterService(name="error", type="unix", command="error"),
        MasterService(name="retry", type="unix", command="error"),
        MasterService(name="discard", type="unix", command="discard"),
        MasterService(name="local", type="unix", unpriv="n", command="local"),
        MasterService(name="virtual", type="unix", unpriv="n", command="virtual"),
        MasterService(name="lmtp", type="unix", command="lmtp"),
        MasterService(name="anvil", type="unix", maxproc="1", command="anvil"),
        MasterService(name="scache", type="unix", maxproc="1", command="scache"),
    )
    own = (
        MasterService(
            name=AMAVIS_TRANSPORT,
            type="unix",
            maxproc=n,
            command="smtp",
            why=f"to amavisd; {n} processes = amavisd's $max_servers (both from spam.amavis_processes)",
            options=(
                ("smtp_data_done_timeout", "1200"),  # SpamAssassin may take long on a big message
                ("smtp_send_xforward_command", "yes"),  # amavisd learns the real client and passes it on
                ("smtp_tls_security_level", "none"),  # loopback: TLS adds nothing
                ("max_use", "20"),
            ),
        ),
        MasterService(
            name=f"{LOOPBACK}:{REINJECT_PORT}",
            type="inet",
            private="n",
            command="smtpd",
            why="re-injection from amavisd: loopback only, already checked, so no restrictions and no filter",
            options=(
                ("content_filter", ""),
                ("receive_override_options", "no_unknown_recipient_checks,no_header_body_checks"),
                ("smtpd_helo_required", "no"),
                ("smtpd_client_restrictions", ""),
                ("smtpd_helo_restrictions", ""),
                ("smtpd_sender_restrictions", ""),
                ("smtpd_relay_restrictions", "permit_mynetworks,reject"),
                ("smtpd_recipient_restrictions", "permit_mynetworks,reject"),
                ("smtpd_data_restrictions", ""),
                ("mynetworks", LOOPBACK_NET),
                ("smtpd_error_sleep_time", "0"),
                ("smtpd_soft_error_limit", "1001"),
                ("smtpd_hard_error_limit", "1000"),
                ("smtpd_client_connection_count_limit", "0"),
                ("smtpd_client_connection_rate_limit", "0"),
                ("smtpd_tls_security_level", "none"),
            ),
        ),
        MasterService(
            name=SPF_SERVICE,
            type="unix",
            unpriv="n",
            maxproc="0",
            command="spawn",
            why="SPF policy server, spawned per smtpd process",
            argv=f"user={os.users.policyd_spf} argv={os.paths.policyd_spf} {os.paths.policyd_spf_conf}",
        ),
    )
    return stock + own


def postfix_main(ctx: PlatformContext, os: OsProfile) -> PostfixMain:
    postfix_dir = os.paths.postfix_dir
    maps = (
        f"proxy:ldap:{postfix_dir}/ldap-people.cf",
        f"proxy:ldap:{postfix_dir}/ldap-groups.cf",
    )
    proxy = SMTP_PORT in ctx.proxy_ports
    recipient = (
        "reject_invalid_helo_hostname",
        "reject_unknown_sender_domain",
        "reject_unauth_pipelining",
        "permit_mynetworks",
        "reject_unlisted_recipient",
        *dnsbl_restrictions(ctx.spam.dnsbls),
        f"check_policy_service unix:private/{SPF_SERVICE}",
        "permit",
    )
    codes = (
        ("invalid_hostname_reject_code", 554, "reject_invalid_helo_hostname (default 501)"),
        ("unknown_address_reject_code", 554, "reject_unknown_sender_domain: NXDOMAIN is final (default 450)"),
        ("unknown_relay_recipient_reject_code", 554, "relay_recipient_maps: no such user (default 550)"),
        ("relay_domains_reject_code", 554, "reject_unauth_destination"),
        ("maps_rbl_reject_code", 554, "reject_rbl_client"),
        ("access_map_reject_code", 554, "REJECT from the SPF policy service"),
        ("reject_code", 554, "a plain reject"),
    )
    return PostfixMain(
        relay_domains=ctx.domains,
        relay_recipient_maps=maps,
        transport_maps=f"hash:{postfix_dir}/transport",
        alias_maps=f"hash:{os.paths.aliases}",
        mynetworks=(LOOPBACK_NET,),
        # Without PROXY every client has the LB's address: per-client limits would throttle the whole
        # Internet as one client, so the LB is exempt; with PROXY the limits apply to real clients.
        client_limit_exceptions=(LOOPBACK_NET,) if proxy else (LOOPBACK_NET, *ctx.networks.vip_subnet),
        proxy_protocol=proxy,
        relay_restrictions=("permit_mynetworks", "reject_unauth_destination"),
        recipient_restrictions=recipient,
        reject_codes=codes,
        content_filter=f"{AMAVIS_TRANSPORT}:[{LOOPBACK}]:{AMAVIS_PORT}",
        spf_service=SPF_SERVICE,
        tls_cert_file=f"{os.paths.tls_dir}/server.crt",
        tls_key_file=f"{os.paths.tls_dir}/server.key",
        tls_protocols=", ".join(TLS_PROTOCOLS),
        limits=ctx.limits,
        postfix_version=str(os.versions.postfix),
        compatibility_level=compatibility_level(os),
    )


def compatibility_level(os: OsProfile) -> str | None:
    """The newest compatibility level the profile's Postfix knows; Postfix 2.x has no such setting."""
    if os.version_at_least("postfix", "3.6"):
        return "3.6"
    if os.version_at_least("postfix", "3.0"):
        return "2"
    return None


def transport_entries(ctx: PlatformContext) -> tuple[tuple[str, str], ...]:
    """Every served domain goes to the delivery VIP (the mailstore layer's Postfix)."""
    return tuple((d, f"smtp:[{ctx.vips.mailstore}]:{SMTP_PORT}") for d in ctx.domains)


# ---- the layer ------------------------------------------------------------------------------------


def files(ctx: PlatformContext, os: OsProfile) -> list[FileSpec]:
    validate(ctx)
    d = ctx.directory
    ca_file = os.paths.directory_ca if d.ca_cert_pem else (os.paths.ca_bundle if d.uses_tls else None)
    postfix_group = os.users.postfix_group
    pdir = os.paths.postfix_dir
    scanner = clamav.clamd(clamav.for_amavis(os), ctx.limits, os)
    amavis_ctx = amavis.settings(ctx, os, clamd_socket=scanner.socket)
    specs = [
        FileSpec(
            dest=f"{pdir}/main.cf",
            template="smtp_in/etc/postfix/main.cf.j2",
            context={"main": postfix_main(ctx, os)},
        ),
        FileSpec(
            dest=f"{pdir}/master.cf",
            template="smtp_in/etc/postfix/master.cf.j2",
            context={"services": master_services(ctx, os)},
        ),
        FileSpec(
            dest=f"{pdir}/transport",
            template="smtp_in/etc/postfix/transport.j2",
            context={"entries": transport_entries(ctx)},
        ),
        # The bind password is inside: readable by Postfix's group only.
        FileSpec(
            dest=f"{pdir}/ldap-people.cf",
            template="smtp_in/etc/postfix/ldap-people.cf.j2",
            context={"m": ldap_people_map(d, ca_file), "what": "people with a mail address in a served domain"},
            owner=f"root:{postfix_group}",
            mode="0640",
        ),
        FileSpec(
            dest=f"{pdir}/ldap-groups.cf",
            template="smtp_in/etc/postfix/ldap-groups.cf.j2",
            context={"m": ldap_groups_map(d, ca_file), "what": "groups with a mail address (distribution lists)"},
            owner=f"root:{postfix_group}",
            mode="0640",
        ),
        *policyd_spf.files(ctx.spam, os),
        amavis.conf_file(amavis_ctx, os),
        clamav.clamd_file(scanner),
        *spamassassin.files(ctx.spam, os),
        amavis.cleanup_cron_file(amavis_ctx, os),
        FileSpec(
            dest=os.paths.role_script,
            template="smtp_in/usr/local/sbin/mailstrata-setup-role.j2",
            context={"ctx": ctx, "a": amavis_ctx, "transport": f"{pdir}/transport"},
            mode="0755",
        ),
    ]
    if ctx.tls.source is TlsSource.PROVIDED and ctx.tls.certificate and ctx.tls.private_key:
        specs.append(FileSpec(dest=f"{os.paths.tls_dir}/server.crt", secret=ctx.tls.certificate, mode="0644"))
        specs.append(FileSpec(dest=f"{os.paths.tls_dir}/server.key", secret=ctx.tls.private_key, mode="0600"))
    return specs


def packages(ctx: PlatformContext, os: OsProfile) -> list[str]:
    return []
