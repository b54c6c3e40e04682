"""Postfix: every setting the platform writes, for the three roles that run it.

One `main.cf` model (sections of settings, each with its reason), one `master.cf` renderer over the stock
services, one `ldap_table(5)` renderer, one transport table, one TLS policy and one set of limits. The three
roles differ only in data, built here by `mx` (SMTP-in), `relay` (SMTP-out) and `delivery` (the mailstore):

- SMTP-in relays the served domains to the delivery VIP, after the directory, DNSBL and SPF checks and
  amavisd's content filter; it trusts only loopback.
- SMTP-out relays for authenticated users (submission) and for the platform's own servers, through the
  ClamAV and OpenDKIM milters; mail for the served domains goes to the delivery VIP.
- The mailstore accepts mail for the served domains (virtual domains, users from the directory) and hands
  it to Dovecot over LMTP; bounces leave through SMTP-out.

What other daemons must agree on (the amavis ports, the milter sockets, Dovecot's LMTP socket) is read from
their modules or from `mailstrata.contract`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from mailstrata import contract
from mailstrata.directory import DirectorySettings
from mailstrata.errors import Problems
from mailstrata.roles import Role
from mailstrata.userdata.context import LayerContext, Limits, Tls, TlsSource
from mailstrata.userdata.daemons.ldap import Filters, LdapConnection
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile

SMTP_PORT = contract.SMTP
SUBMISSION_PORT = contract.SUBMISSION
RELAY_PORT = contract.RELAY
LOOPBACK = contract.LOOPBACK
LOOPBACK_NET = contract.LOOPBACK_NET
# The platform's TLS floor in Postfix 2.10's exclusion syntax (it knows every name listed here).
TLS_FLOOR = tuple(f"!{p}" for p in contract.TLS_BELOW_FLOOR)
# Towards the Internet (SMTP-out's opportunistic client): refusing old TLS there only makes those
# deliveries fall back to cleartext, so only SSL is refused.
INTERNET_CLIENT_PROTOCOLS = ("!SSLv2", "!SSLv3")
PROXY_OPTION = ("smtpd_upstream_proxy_protocol", "haproxy")  # Postfix 2.10 speaks PROXY v1 only
# Postfix checks only the syntax of a PROXY header: whoever reaches the member's port directly can name any
# client, 127.0.0.1 included. So a PROXY listener trusts no address at all (mynetworks empty): relaying
# needs AUTH, or a served domain as the recipient.
PROXY_TRUSTS_NOBODY = ("mynetworks", "")
DH_PARAMS_FILE = "ffdhe2048.pem"


# ---- main.cf -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One `main.cf` parameter, its value, and why it differs from Postfix's default."""

    name: str
    value: str | tuple[str, ...]  # a tuple is a list, joined with ", " (or one item per line: `lines`)
    why: str = ""
    lines: bool = False

    @property
    def why_lines(self) -> tuple[str, ...]:
        return tuple(self.why.split("\n")) if self.why else ()

    @property
    def text(self) -> str:
        if isinstance(self.value, str):
            return f"{self.name} = {self.value}".rstrip()
        if self.lines:
            return "\n".join([f"{self.name} =", *(f"    {v}{',' if i < len(self.value) - 1 else ''}"
                                                   for i, v in enumerate(self.value))])
        return f"{self.name} = {', '.join(self.value)}".rstrip()


@dataclass(frozen=True)
class Section:
    title: str
    settings: tuple[Setting, ...]

    @property
    def rule(self) -> str:
        return f"# ---- {self.title} ".ljust(100, "-")


@dataclass(frozen=True, kw_only=True)
class MainCf:
    summary: tuple[str, ...]  # the comment at the top: what this server does with mail
    sections: tuple[Section, ...]

    def get(self, name: str) -> str | tuple[str, ...]:
        for section in self.sections:
            for s in section.settings:
                if s.name == name:
                    return s.value
        raise KeyError(name)


# ---- master.cf -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MasterService:
    """One master.cf service line and its `-o` overrides (master(5))."""

    name: str
    type: str
    private: str = "-"
    unpriv: str = "-"
    chroot: str = "n"  # nothing runs chrooted: smtpd reaches LDAP, saslauthd and milters outside any chroot
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


def stock_services(os: OsProfile) -> tuple[MasterService, ...]:
    """The services every Postfix needs, as the distributions ship them (without chroot)."""
    s = MasterService
    stock: tuple[MasterService, ...] = (
        s(name="pickup", type="unix", private="n", wakeup="60", maxproc="1", command="pickup"),
        s(name="cleanup", type="unix", private="n", maxproc="0", command="cleanup"),
        s(name="qmgr", type="unix", private="n", wakeup="300", maxproc="1", command="qmgr"),
        s(name="tlsmgr", type="unix", wakeup="1000?", maxproc="1", command="tlsmgr"),
        s(name="rewrite", type="unix", command="trivial-rewrite"),
        s(name="bounce", type="unix", maxproc="0", command="bounce"),
        s(name="defer", type="unix", maxproc="0", command="bounce"),
        s(name="trace", type="unix", maxproc="0", command="bounce"),
        s(name="verify", type="unix", maxproc="1", command="verify"),
        s(name="flush", type="unix", private="n", wakeup="1000?", maxproc="0", command="flush"),
        s(name="proxymap", type="unix", command="proxymap"),
        s(name="proxywrite", type="unix", maxproc="1", command="proxymap"),
        s(name="smtp", type="unix", command="smtp"),
        s(name="relay", type="unix", command="smtp"),
        s(name="showq", type="unix", private="n", command="showq"),
        s(name="error", type="unix", command="error"),
        s(name="retry", type="unix", command="error"),
        s(name="discard", type="unix", command="discard"),
        s(name="local", type="unix", unpriv="n", command="local"),
        s(name="virtual", type="unix", unpriv="n", command="virtual"),
        s(name="lmtp", type="unix", command="lmtp"),
        s(name="anvil", type="unix", maxproc="1", command="anvil"),
        s(name="scache", type="unix", maxproc="1", command="scache"),
    )
    if os.version_at_least("postfix", "3.4"):
        # Postfix 3.4+ logs through postlogd when maillog_file is set (its stock master.cf has it too).
        stock += (s(name="postlog", type="unix-dgram", private="n", maxproc="1", command="postlogd"),)
    return stock


def smtpd_listener(name: str, port: int, ctx: LayerContext, *, options: Sequence[tuple[str, str]] = (),
                   why: str, direct: bool = False) -> MasterService:
    """An `smtpd` on `port`; when the port's LB pool sends the PROXY protocol, the listener expects it.
    `direct`: no LB in front at all (smtp-out's internal relay)."""
    proxy = port in ctx.proxy_ports
    if direct:
        note = "no LB in between: the client address is the client's own"
    elif proxy:
        note = ("behind the LB's PROXY pool: the real client address reaches every check, and no address is "
                "trusted (empty mynetworks)")
    else:
        note = "the LB pool sends no PROXY header"
    extra = (PROXY_OPTION, PROXY_TRUSTS_NOBODY) if proxy else ()
    return MasterService(name=name, type="inet", private="n", command="smtpd", options=(*options, *extra),
                         why=f"port {port}, {why}; {note}")


# ---- tables ----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LdapTable:
    """One Postfix `ldap_table(5)` file against the directory."""

    purpose: str
    ldap: LdapConnection
    domains: tuple[str, ...]  # only addresses in these domains are looked up
    query_filter: str
    result_attributes: tuple[str, ...]  # empty: no result of the entry itself (see special_result_attribute)
    special_result_attribute: str | None = None  # DN-valued attribute whose entries are looked up in turn
    leaf_result_attribute: str | None = None


@dataclass(frozen=True, kw_only=True)
class Table:
    """A file of `key value` lines (hash: tables), compiled by postmap in the setup script."""

    purpose: str
    entries: tuple[tuple[str, str], ...]


# ---- the TLS policy ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TlsPaths:
    cert_file: str
    key_file: str
    dh_params: str
    ca_bundle: str

    @classmethod
    def of(cls, os: OsProfile) -> TlsPaths:
        return cls(cert_file=f"{os.paths.tls_dir}/server.crt", key_file=f"{os.paths.tls_dir}/server.key",
                   dh_params=f"{os.paths.postfix_dir}/{DH_PARAMS_FILE}", ca_bundle=str(os.paths.ca_bundle))


def tls_sections(paths: TlsPaths, *, server_why: str, client_why: str, internet_client: bool) -> tuple[Section, ...]:
    floor = ", ".join(TLS_FLOOR)
    server = (
        Setting("smtpd_tls_security_level", "may", server_why),
        Setting("smtpd_tls_cert_file", paths.cert_file),
        Setting("smtpd_tls_key_file", paths.key_file),
        Setting("smtpd_tls_protocols", floor, "Floors: TLS 1.2 and strong ciphers only."),
        Setting("smtpd_tls_mandatory_protocols", floor),
        Setting("smtpd_tls_ciphers", "high"),
        Setting("smtpd_tls_mandatory_ciphers", "high"),
        Setting("smtpd_tls_exclude_ciphers", contract.EXCLUDED_CIPHERS),
        Setting("tls_preempt_cipherlist", "yes"),
        Setting("smtpd_tls_dh1024_param_file", paths.dh_params,
                "RFC 7919 ffdhe2048 instead of the 1024-bit group Postfix 2.10 has built in (Logjam)."),
        Setting("smtpd_tls_session_cache_database", "btree:$data_directory/smtpd_scache"),
        Setting("smtpd_tls_received_header", "yes", "Record the TLS session in the Received header and the log."),
        Setting("smtpd_tls_loglevel", "1"),
    )
    client_protocols = ", ".join(INTERNET_CLIENT_PROTOCOLS) if internet_client else floor
    client = (
        Setting("smtp_tls_security_level", "may", client_why),
        Setting("smtp_tls_protocols", client_protocols,
                "Towards the Internet, refusing old TLS would make deliveries fall back to cleartext."
                if internet_client else "The platform's own hop: the same floor as the servers."),
        Setting("smtp_tls_mandatory_protocols", floor, "Destinations that require TLS get at least 1.2."),
        Setting("smtp_tls_ciphers", "high"),
        Setting("smtp_tls_CAfile", paths.ca_bundle, "Logs whether each peer's certificate is trusted."),
        Setting("smtp_tls_session_cache_database", "btree:$data_directory/smtp_scache"),
        Setting("smtp_tls_loglevel", "1"),
    )
    return Section("TLS (server side)", server), Section("TLS (client side)", client)


def tls_files(ctx: LayerContext, os: OsProfile) -> list[FileSpec]:
    """The DH parameters, and the configured certificate and key (read by Postfix as root); without a
    provided certificate the setup script makes a self-signed one at first boot."""
    paths = TlsPaths.of(os)
    specs = [FileSpec(dest=paths.dh_params, template="postfix/etc/postfix/ffdhe2048.pem.j2")]
    return specs + provided_tls(ctx.platform.tls, paths.cert_file, paths.key_file)


def provided_tls(tls: Tls, cert_file: str, key_file: str) -> list[FileSpec]:
    """The configured certificate (0644) and key (0600); none when self-signed at boot."""
    if tls.source is not TlsSource.PROVIDED:
        return []
    if tls.certificate is None or tls.private_key is None:
        problems = Problems()
        problems.add("tls", "source is provided, but the certificate or the private key is missing; give both")
        problems.raise_if_any()
    assert tls.certificate is not None and tls.private_key is not None
    return [FileSpec(dest=cert_file, secret=tls.certificate, mode="0644"),
            FileSpec(dest=key_file, secret=tls.private_key, mode="0600")]


# ---- shared sections ----------------------------------------------------------------------------


def compatibility_level(os: OsProfile) -> str | None:
    """The newest compatibility level the profile's Postfix knows; Postfix 2.x has no such setting.

    Postfix 3 warns about every changed default unless told which level the file was written for.
    """
    if os.version_at_least("postfix", "3.6"):
        return "3.6"
    if os.version_at_least("postfix", "3.0"):
        return "2"
    return None


def _head(os: OsProfile) -> tuple[Setting, ...]:
    level = compatibility_level(os)
    head = (Setting("compatibility_level", level, "Postfix 3: this version's current defaults for the rest."),) \
        if level else ()
    return (
        *head,
        Setting("inet_interfaces", str(os.values.inet_interfaces)),
        Setting("inet_protocols", "ipv4", "The platform's networks are IPv4; no IPv6 listener that mynetworks "
                                          "would have to cover."),
        Setting("alias_maps", f"hash:{os.paths.aliases}", "Only the local aliases file: Postfix 2.10's "
                                                          "default also queries NIS."),
        Setting("alias_database", f"hash:{os.paths.aliases}"),
        Setting("smtpd_helo_required", "yes", "Clients must greet, and cannot probe addresses."),
        Setting("disable_vrfy_command", "yes"),
    )


def limits_section(lim: Limits, exceptions: tuple[str, ...], why_exceptions: str) -> Section:
    return Section("limits (the platform's, the same on every Postfix layer)", (
        Setting("smtpd_recipient_limit", str(lim.recipient_limit)),
        Setting("message_size_limit", str(lim.message_size_limit)),
        Setting("smtpd_error_sleep_time", lim.error_sleep_time),
        Setting("smtpd_soft_error_limit", str(lim.soft_error_limit)),
        Setting("smtpd_hard_error_limit", str(lim.hard_error_limit)),
        Setting("smtpd_client_connection_count_limit", str(lim.client_connection_count_limit)),
        Setting("smtpd_client_connection_rate_limit", str(lim.client_connection_rate_limit)),
        Setting("smtpd_client_event_limit_exceptions", exceptions, why_exceptions),
        Setting("default_process_limit", str(lim.default_process_limit)),
        Setting("bounce_queue_lifetime", lim.bounce_queue_lifetime),
        Setting("maximal_queue_lifetime", lim.maximal_queue_lifetime),
    ))


# ---- the files ----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Postfix:
    """Everything one role's Postfix writes."""

    main: MainCf
    services: tuple[MasterService, ...]  # the role's own services, before the stock ones
    ldap_tables: dict[str, LdapTable] = field(default_factory=dict)  # file name in postfix_dir -> table
    tables: dict[str, Table] = field(default_factory=dict)  # hash tables: file name -> entries

    def files(self, ctx: LayerContext, os: OsProfile) -> list[FileSpec]:
        pdir = str(os.paths.postfix_dir)
        specs = [
            FileSpec(dest=f"{pdir}/main.cf", template="postfix/etc/postfix/main.cf.j2", context={"main": self.main}),
            FileSpec(dest=f"{pdir}/master.cf", template="postfix/etc/postfix/master.cf.j2",
                     context={"services": (*self.services, *stock_services(os))}),
        ]
        for name, table in self.tables.items():
            specs.append(FileSpec(dest=f"{pdir}/{name}", template="postfix/etc/postfix/table.j2",
                                  context={"table": table}))
        for name, ldap in self.ldap_tables.items():
            # The bind password is inside: readable by Postfix's group only.
            specs.append(FileSpec(dest=f"{pdir}/{name}", template="postfix/etc/postfix/ldap-table.cf.j2",
                                  context={"t": ldap}, owner=f"root:{os.users.postfix_group}", mode="0640"))
        return specs + tls_files(ctx, os)


def _routes_to_delivery(ctx: LayerContext) -> Table:
    return Table(purpose="every served domain goes to the delivery (mailstore) VIP, never out to the Internet "
                         "(brackets: no MX lookup)",
                 entries=tuple((d, f"smtp:[{ctx.platform.vips.mailstore}]:{SMTP_PORT}") for d in ctx.platform.domains))


def _people_and_groups(d: DirectorySettings, os: OsProfile, *, groups_expand: bool) -> dict[str, LdapTable]:
    """The people table (mailboxes: a person's primary address) and the aliases table (a group's address, or
    a person's alias from proxyAddresses). Where aliases are expanded (the mailstore's virtual_alias_maps)
    a group answers its members' addresses and an alias its owner's primary address, so the mail reaches
    the owner's one mailbox; elsewhere (SMTP-in's recipient check) the table only says the address exists."""
    ldap, f, a = LdapConnection.of(d, os), Filters(d), d.attributes
    people = LdapTable(purpose="people with a mail address in a served domain (their primary address)", ldap=ldap,
                       domains=d.domains, query_filter=f.mailbox("%s"), result_attributes=(a.mail,))
    if groups_expand:
        # A person has no member attribute, so the leaf attribute (mail) is their answer: alias -> primary.
        groups = LdapTable(purpose="aliases: an AD group with a mail address expands to its members' addresses, "
                                   "a person's alias (proxyAddresses smtp:) to their primary address",
                           ldap=ldap, domains=d.domains, query_filter=f.alias("%s"), result_attributes=(),
                           special_result_attribute=a.member, leaf_result_attribute=a.mail)
    else:
        groups = LdapTable(purpose="aliases: groups with a mail address (distribution lists) and people's aliases "
                                   "(proxyAddresses smtp:)", ldap=ldap, domains=d.domains,
                           query_filter=f.alias("%s"), result_attributes=(a.mail,))
    return {"ldap-people.cf": people, "ldap-groups.cf": groups}


# ---- SMTP-in: the MX ----------------------------------------------------------------------------------

# Reply filters for DNSBLs whose answers outside the listing range are errors, not listings. Spamhaus
# answers 127.255.255.x to queries through public or unregistered resolvers; without a filter Postfix
# would read that as "listed" and reject every client. A filter given in the config (`zone=...`) wins.
DNSBL_REPLY_FILTERS: dict[str, str] = {"zen.spamhaus.org": "127.0.0.[2..11]"}
# Every rejection is final (the seed's "every *_reject_code set to 554").
REJECT_CODES: tuple[tuple[str, str], ...] = (
    ("invalid_hostname_reject_code", "reject_invalid_helo_hostname (default 501)"),
    ("unknown_address_reject_code", "reject_unknown_sender_domain: NXDOMAIN is final (default 450)"),
    ("unknown_relay_recipient_reject_code", "relay_recipient_maps: no such user (default 550)"),
    ("relay_domains_reject_code", "reject_unauth_destination"),
    ("maps_rbl_reject_code", "reject_rbl_client"),
    ("access_map_reject_code", "REJECT from the SPF policy service"),
    ("reject_code", "a plain reject"),
)


_DNSBL = re.compile(
    r"^(?P<zone>[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+)"
    r"(=(?P<filter>(\d+|\[[\d.;]+\])(\.(\d+|\[[\d.;]+\])){3}))?$"
)


def check_dnsbls(dnsbls: tuple[str, ...], problems: Problems) -> None:
    """Each DNSBL is a zone `reject_rbl_client` accepts, optionally with a reply filter."""
    for i, entry in enumerate(dnsbls):
        if not _DNSBL.match(entry):
            problems.add(f"spam.dnsbls[{i}]",
                         f"must be a DNS zone, optionally with a reply filter (zone=127.0.0.[2..11]), got {entry!r}")


def dnsbl_restrictions(dnsbls: tuple[str, ...]) -> tuple[str, ...]:
    """`reject_rbl_client` entries in the configured order, with known reply filters added."""
    out: list[str] = []
    for entry in dnsbls:
        zone = entry.split("=", 1)[0]
        spec = entry if "=" in entry or zone not in DNSBL_REPLY_FILTERS else f"{zone}={DNSBL_REPLY_FILTERS[zone]}"
        out.append(f"reject_rbl_client {spec}")
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class ContentFilter:
    """amavisd as Postfix sees it: where mail goes to be checked, where it comes back, how many at once."""

    transport: str  # the master.cf service that talks to amavisd
    port: int  # amavisd's listener
    reinject_port: int  # Postfix's re-injection smtpd
    processes: int  # = amavisd's $max_servers


@dataclass(frozen=True, kw_only=True)
class Spawned:
    """A policy server Postfix spawns per smtpd (policyd-spf)."""

    service: str
    spawn: str  # the spawn service's `user=... argv=...`


def mx(ctx: LayerContext, os: OsProfile, *, content_filter: ContentFilter, spf: Spawned) -> Postfix:
    """SMTP-in's Postfix: accepts mail for the served domains only, checks it, hands it to amavisd and
    forwards what survives to the delivery VIP."""
    pdir = str(os.paths.postfix_dir)
    proxy = SMTP_PORT in ctx.proxy_ports
    tables = _people_and_groups(ctx.platform.directory, os, groups_expand=False)
    recipient = (
        "reject_invalid_helo_hostname",
        "reject_unknown_sender_domain",
        "reject_unauth_pipelining",
        "permit_mynetworks",
        "reject_unlisted_recipient",
        *dnsbl_restrictions(ctx.platform.spam.dnsbls),
        f"check_policy_service unix:private/{spf.service}",
        "permit",
    )
    cf = content_filter
    relay = (
        Setting("relay_domains", ctx.platform.domains, "The served domains are relayed (to the delivery layer), never "
                                              "delivered here."),
        Setting("relay_recipient_maps", tuple(f"proxy:ldap:{pdir}/{n}" for n in tables),
                "Unknown recipients are rejected during the SMTP dialogue, not bounced later: people and "
                "distribution\nlists from the directory (proxy: shares one LDAP connection between all smtpd "
                "processes)."),
        Setting("transport_maps", f"hash:{pdir}/transport", "Every served domain goes to the delivery VIP; "
                                                            "internal mail never leaves the platform."),
        Setting("mynetworks", (LOOPBACK_NET,), "Loopback only: the LB, the VIP subnet and the Internet are never "
                                               "trusted (permit_mynetworks below)."),
        Setting("smtpd_relay_restrictions", ("permit_mynetworks", "reject_unauth_destination"),
                "Relay control, explicit: only the served domains, from anywhere."),
        Setting("smtpd_recipient_restrictions", recipient, "Cheap checks first, then the directory, the DNSBLs "
                                                           "and SPF; the DNSBL list is platform config.", lines=True),
        Setting(f"{spf.service}_time_limit", "3600", "policyd-spf is spawned per smtpd and lives as long as it "
                                                      "(SMTPD_POLICY_README)."),
        *(Setting(name, "554", why) for name, why in REJECT_CODES),
    )
    filt = (Setting("content_filter", f"{cf.transport}:[{LOOPBACK}]:{cf.port}",
                    "Everything received goes through amavisd (SpamAssassin + ClamAV); clean mail comes back on "
                    "the\nre-injection smtpd in master.cf."),)
    exceptions, why_exc = ((), "Per-client limits apply to the real clients (PROXY protocol on port 25); nobody "
                               "is exempt: a PROXY header\ncan name any address, loopback included.") if proxy else (
        (LOOPBACK_NET, *ctx.proxy_sources()),
        "No PROXY protocol on port 25: every client has the amphora's address (on the member subnet), so\n"
        "per-client limits would throttle the whole Internet as one client. The LB is exempt; enable PROXY on\n"
        "the pool to get the limits back.")
    main = MainCf(
        summary=(f"SMTP-in, the MX (Postfix {os.versions.postfix}): accepts mail for the served domains only, checks "
                 "it,", "hands it to amavisd and forwards what survives to the delivery VIP."),
        sections=(
            Section("basics", _head(os)),
            Section("what this server relays, and to whom", relay),
            Section("content filter", filt),
            *tls_sections(TlsPaths.of(os), server_why="STARTTLS offered to every client (an MX cannot require it).",
                          client_why="Opportunistic TLS towards the delivery VIP: the hop crosses the tenant "
                                     "network.", internet_client=False),
            limits_section(ctx.platform.limits, exceptions, why_exc),
        ),
    )
    n = str(cf.processes)
    services = (
        smtpd_listener("smtp", SMTP_PORT, ctx, why="from the Internet"),
        MasterService(
            name=cf.transport, type="unix", maxproc=n, command="smtp",
            why=f"to amavisd; {n} processes = amavisd's $max_servers (both from spam.amavis_processes)",
            options=(
                ("smtp_data_done_timeout", "1200"),  # SpamAssassin may take long on a big message
                ("smtp_send_xforward_command", "yes"),  # amavisd learns the real client and passes it on
                ("smtp_tls_security_level", "none"),  # loopback: TLS adds nothing
                ("max_use", "20"),
                # amavisd refuses nothing on purpose (every destiny is pass or quarantine, amavis.py), so a 5xx
                # or a protocol error from it is a failure, not a verdict: keep the message queued and retry.
                # Seen on the twin: amavisd killed mid-session answered "250" to DATA, and Postfix bounced the
                # message ("Protocol error", 5.5.0).
                ("soft_bounce", "yes"),
            ),
        ),
        MasterService(
            name=f"{LOOPBACK}:{cf.reinject_port}", type="inet", private="n", command="smtpd",
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
        MasterService(name=spf.service, type="unix", unpriv="n", maxproc="0", command="spawn",
                      why="SPF policy server, spawned per smtpd process", argv=spf.spawn),
    )
    return Postfix(main=main, services=services, ldap_tables=tables, tables={"transport": _routes_to_delivery(ctx)})


# ---- SMTP-out: the authenticated relay ----------------------------------------------------------------


class MilterAction(StrEnum):
    """Postfix `milter_default_action`: what happens to a message when a milter is unavailable."""

    ACCEPT = "accept"  # the seed: mail leaves unscanned and unsigned
    TEMPFAIL = "tempfail"  # 4xx: the message stays in the client's queue until the milter is back
    REJECT = "reject"


MILTER_DEFAULT_ACTION = MilterAction.TEMPFAIL
SENDER_LOGIN_MAP = "ldap-sender-login.cf"


def postfix_milter(spec: str) -> str:
    """A milter socket as Postfix writes it: `inet:PORT@HOST` (the milters' own syntax) -> `inet:HOST:PORT`."""
    if spec.startswith("inet:") and "@" in spec:
        port, host = spec[len("inet:"):].split("@", 1)
        return f"inet:{host}:{port}"
    if spec.startswith("local:"):
        return "unix:" + spec[len("local:"):]
    raise ValueError(f"milter socket: expected inet:PORT@HOST or local:/path, got {spec!r}")


@dataclass(frozen=True, kw_only=True)
class Submission:
    """What SMTP-out's Postfix needs from the other daemons of its role."""

    sasl_config_dir: str  # Cyrus SASL's application file (smtpd.conf) folder
    relay_clients: tuple[str, ...]  # who may relay without AUTH on the internal relay port (the mailstores)
    smtpd_milters: tuple[str, ...]  # milter sockets, milters' syntax, in the order they see mail
    non_smtpd_milters: tuple[str, ...]
    originating: str  # submission's milter_macro_daemon_name (OpenDKIM signs what comes from it)


def relay(ctx: LayerContext, os: OsProfile, sub: Submission) -> Postfix:
    """SMTP-out's Postfix: relays for authenticated users (submission, 587, behind the LB's PROXY pool) and
    for the mailstores (the internal relay, contract.RELAY, reached directly: no LB, no PROXY, and a security
    group that admits only the mailstores' group). Submission trusts no address and requires AUTH (RFC
    6409); an authenticated user may only use an envelope sender whose directory entry is theirs
    (smtpd_sender_login_maps answers the login and the address, so both login forms work). The internal
    relay offers no AUTH at all. There is no port 25: nothing else relays through this layer."""
    pdir = str(os.paths.postfix_dir)
    d = ctx.platform.directory
    sender_login = LdapTable(
        purpose="the logins that own a sender address, the envelope's and the header From's (the person whose mail "
                "is that address, or who has it as an alias)",
        ldap=LdapConnection.of(d, os), domains=ctx.platform.domains,
        # An alias is an `smtp:` value of AD's proxyAddresses (matching ignores case, so `SMTP:` too). Only
        # people own addresses: a group (distribution list) has no owner, so nobody sends as it.
        query_filter=Filters(d).person_by_mail("%s"),
        # both the login and the address: a user may log in as either
        result_attributes=(d.attributes.login, d.attributes.mail))
    relay_section = (
        Setting("mynetworks", (LOOPBACK_NET,), "This server only. Each listener in master.cf says whom it trusts: "
                                               "submission (PROXY) nobody,\nthe internal relay the mailstores' "
                                               "networks, which its security group narrows to their servers."),
        Setting("append_dot_mydomain", "no", "Clients' unqualified addresses are theirs to fix; do not append this "
                                             "server's domain (3.0 default)."),
        Setting("smtpd_relay_restrictions", ("permit_mynetworks", "permit_sasl_authenticated",
                                             "reject_unauth_destination"),
                "Explicit, so that no later change to the recipient restrictions can make this an open relay."),
        Setting("transport_maps", f"hash:{pdir}/transport", "The platform's own domains go to the delivery VIP: "
                                                            "internal mail never leaves the platform."),
    )
    sasl = (
        Setting("cyrus_sasl_config_path", sub.sasl_config_dir, "Cyrus SASL application file (smtpd.conf: saslauthd, "
                                                               "PLAIN and LOGIN) lives here."),
        Setting("smtpd_sasl_security_options", "noanonymous", "No anonymous logins; plaintext mechanisms are fine "
                                                              "because AUTH is only offered over TLS."),
        Setting("smtpd_tls_auth_only", "yes", "AUTH only after STARTTLS, on every listener that enables SASL."),
        Setting("smtpd_sasl_authenticated_header", "yes", "Record the login in Received: abuse from a stolen "
                                                          "account can be traced to it."),
        Setting("smtpd_sender_login_maps", f"ldap:{pdir}/{SENDER_LOGIN_MAP}",
                "Which logins own an envelope sender (the directory's person with that mail); submission "
                "rejects the rest."),
    )
    milters = (
        Setting("smtpd_milters", tuple(postfix_milter(m) for m in sub.smtpd_milters),
                "The virus scan first (it may reject), then the header From check, then DKIM signing:\n"
                "nothing refused or spoofed is signed."),
        Setting("non_smtpd_milters", tuple(postfix_milter(m) for m in sub.non_smtpd_milters),
                "Mail made on this host (sendmail command) is only signed."),
        Setting("milter_default_action", MILTER_DEFAULT_ACTION.value,
                "A milter that is down defers mail (4xx, it stays queued at the client) rather than letting "
                "it\nleave unscanned or unsigned. Postfix 2.10 has no per-milter action."),
    )
    main = MainCf(
        summary=("SMTP-out: relays for authenticated users (submission, 587) and for the platform's own servers "
                 "(25).", "Only settings that differ from Postfix's defaults, each with its reason."),
        sections=(
            Section("basics", _head(os)),
            Section("relay policy", relay_section),
            Section("SASL (offered only on submission, see master.cf)", sasl),
            Section("milters", milters),
            *tls_sections(TlsPaths.of(os), server_why="Opportunistic on 25 (the platform's own servers); master.cf "
                                                      "makes it mandatory on submission.",
                          client_why="Opportunistic, towards the Internet and the delivery VIP.", internet_client=True),
            limits_section(ctx.platform.limits, (),
                           "With PROXY on the submission pool the per-client limits apply to real clients, not to "
                           "the LB,\nand nobody is exempt (a PROXY header can name any address); the internal "
                           "relay exempts the mailstores."),
        ),
    )
    submission = (
        ("syslog_name", "postfix/submission"),
        ("smtpd_tls_security_level", "encrypt"),
        ("smtpd_sasl_auth_enable", "yes"),
        ("smtpd_tls_auth_only", "yes"),
        ("smtpd_client_restrictions", "permit_sasl_authenticated,reject"),
        ("smtpd_sender_restrictions", "reject_authenticated_sender_login_mismatch"),
        ("milter_macro_daemon_name", sub.originating),
    )
    clients = ",".join(sub.relay_clients)
    internal = (
        ("syslog_name", "postfix/relay"),
        ("smtpd_sasl_auth_enable", "no"),
        ("mynetworks", clients),
        ("smtpd_client_restrictions", "permit_mynetworks,reject"),
        ("smtpd_relay_restrictions", "permit_mynetworks,reject"),
        ("smtpd_client_event_limit_exceptions", clients),
    )
    services = (
        smtpd_listener("submission", SUBMISSION_PORT, ctx, options=submission, why="users: STARTTLS, then AUTH"),
        smtpd_listener(str(RELAY_PORT), RELAY_PORT, ctx, options=internal, direct=True,
                       why="the internal relay: the mailstores' bounces and sieve mail, no AUTH (its security "
                           "group admits only the mailstores)"),
    )
    return Postfix(main=main, services=services, ldap_tables={SENDER_LOGIN_MAP: sender_login},
                   tables={"transport": _routes_to_delivery(ctx)})


# ---- the mailstore: delivery to Dovecot ---------------------------------------------------------------


def delivery(ctx: LayerContext, os: OsProfile, *, lmtp_socket: str) -> Postfix:
    """The mailstore's Postfix: accepts mail for the served domains from the other layers and hands it to
    Dovecot over LMTP (`lmtp_socket`, relative to the queue directory). Nobody relays through it."""
    pdir = str(os.paths.postfix_dir)
    tables = _people_and_groups(ctx.platform.directory, os, groups_expand=True)
    # Our own MTAs reach port 25 through the delivery LB (whose amphorae connect from the member subnet,
    # mailstrata/octavia.py): they are exempt from per-client limits, which would otherwise throttle every
    # delivery as one client. Exemption grants no relaying (mynetworks is empty on the PROXY listener).
    internal = tuple(dict.fromkeys([*ctx.proxy_sources(),
                                    *ctx.platform.networks.of(Role.SMTP_IN, Role.SMTP_OUT, Role.MAILSTORE)]))
    relays = ctx.platform.relays
    if relays:
        relay = (
            Setting("relayhost", f"[{relays[0]}]:{RELAY_PORT}",
                    "Bounces and anything else leaving the platform go out through SMTP-out's internal relay, "
                    "on its servers\ndirectly: through the LB the client would be the amphora, which no one "
                    "can trust."),
            *((Setting("smtp_fallback_relay", tuple(f"[{r}]:{RELAY_PORT}" for r in relays[1:]),
                       "The other SMTP-out servers, in order, when the first does not answer (Postfix 2.10 "
                       "takes one relayhost)."),) if len(relays) > 1 else ()),
        )
    else:
        relay = (Setting("relayhost", "", "No SMTP-out layer: bounces leave from this server itself."),)
    virtual = (
        Setting("queue_directory", str(os.paths.postfix_queue_dir)),
        Setting("data_directory", str(os.paths.postfix_data_dir)),
        Setting("mydestination", ("$myhostname", "localhost.$mydomain", "localhost"),
                "The mail domains are virtual: Postfix knows no users, LDAP says who exists and Dovecot stores "
                "mail.\nOnly system mail (root, postmaster of this host) is local."),
        Setting("virtual_mailbox_domains", ctx.platform.domains),
        Setting("virtual_mailbox_maps", f"proxy:ldap:{pdir}/ldap-people.cf"),
        Setting("virtual_alias_maps", (f"proxy:ldap:{pdir}/ldap-people.cf", f"proxy:ldap:{pdir}/ldap-groups.cf"),
                "A primary address answers itself first (Postfix stops there), so an alias that someone set to\n"
                "another person's primary address can never take that person's mail; then groups and aliases."),
        Setting("virtual_transport", f"lmtp:unix:{lmtp_socket}",
                "Delivery through Dovecot's LMTP socket (the seed's mailbox_transport over 127.0.0.1:24)."),
        Setting("recipient_delimiter", "+"),
        *relay,
        Setting("mailbox_size_limit", "0", "Dovecot enforces quotas; this only caps root's local mailbox and must "
                                           "not be below message_size_limit."),
        Setting("mynetworks", (LOOPBACK_NET,), "Nobody relays through this server: the other layers send only mail "
                                               "for the served domains, so no\nnetwork but loopback is trusted, and "
                                               "the LB's addresses never are."),
        Setting("smtpd_relay_restrictions", ("permit_mynetworks", "reject_unauth_destination")),
        Setting("smtpd_recipient_restrictions", ("permit_mynetworks", "reject_unauth_destination")),
    )
    main = MainCf(
        summary=("Postfix of the mailstore: accepts mail for the served domains from the other layers and hands it "
                 "to", "Dovecot over LMTP. Every setting below differs from Postfix's default, or says why it does "
                        "not."),
        sections=(
            Section("basics", _head(os)),
            Section("virtual delivery", virtual),
            *tls_sections(TlsPaths.of(os), server_why="Opportunistic TLS both ways on the platform's own hops.",
                          client_why="Towards SMTP-out (bounces).", internet_client=False),
            limits_section(ctx.platform.limits, internal,
                           "The platform's own MTAs (directly or through the delivery LB) are not throttled as one "
                           "client."),
        ),
    )
    services = (smtpd_listener("smtp", SMTP_PORT, ctx, why="from SMTP-in and SMTP-out (the delivery LB)"),)
    return Postfix(main=main, services=services, ldap_tables=tables)
