"""The DNS records of the platform and of its mail domains: everything receiving providers check.

Pure record building: `MailPlatformStack` gathers the facts (addresses, which may be Terraform references;
the DKIM record; the MTA-STS policy id) into a `MailDns` and publishes what `records()` returns, in
Designate and in the `dns_records` output; `ptr_records()` is the step only the cloud or the operator can do.

Where each record lives:

- the platform zone (`dns.zone`): the VIPs' names (`VIP_NAMES`), the one DKIM TXT, and each smtp-out
  server's HELO name (its fqdn, Postfix's `myhostname`) pointing at the egress address;
- each mail domain: MX, SPF, a CNAME from the domain's DKIM selector to the platform's TXT, DMARC,
  MTA-STS (`_mta-sts` TXT and the `mta-sts` host, when a webmail layer serves the policy), TLS-RPT and the
  RFC 6186 SRV records of the services clients use.

Every TXT value is written as quoted strings of at most `TXT_STRING_MAX` characters (`txt()`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from mailstrata.roles import Role

# Designate's TXT check counts each string with its two quotes against 255 (designate/objects/rrdata_txt.py,
# `_validate_record_single_string` on '"' + string + '"'): 253 characters fit inside. RFC 1035 allows 255.
TXT_STRING_MAX = 253

# Host names published in the platform zone for each VIP (the seed's LB names and public aliases).
VIP_NAMES: dict[Role, tuple[str, ...]] = {
    Role.SMTP_IN: ("smtp-in",),
    Role.SMTP_OUT: ("smtp-out", "mail"),
    Role.MAILSTORE: ("smtp-delivery", "pop", "imap"),
    Role.WEBMAIL: ("webmail",),
}

# RFC 6186 SRV records: (service label, port, VIP name clients reach it at). Only the implicit-TLS and
# submission services (RFC 8314 3.3 and 5.1: clients should prefer them); no `_imap._tcp`/`_pop3._tcp`
# record at all rather than "." (RFC 6186 "not available"), because the mailstore does serve 143 and 110.
SRV_SERVICES: tuple[tuple[str, int, Role, str], ...] = (
    ("_submission._tcp", 587, Role.SMTP_OUT, "smtp-out"),
    ("_imaps._tcp", 993, Role.MAILSTORE, "imap"),
    ("_pop3s._tcp", 995, Role.MAILSTORE, "pop"),
)


class DmarcPolicy(StrEnum):
    """DMARC `p=` (RFC 7489 6.3)."""

    NONE = "none"  # report only
    QUARANTINE = "quarantine"  # junk what fails
    REJECT = "reject"  # refuse what fails


@dataclass(frozen=True)
class Record:
    name: str  # fully qualified, with the trailing dot
    type: str
    value: str


@dataclass(frozen=True)
class Ptr:
    address: str  # the egress address (a literal or a Terraform reference)
    name: str  # the HELO name its PTR must give, fully qualified


@dataclass(frozen=True, kw_only=True)
class Egress:
    """One address smtp-out's mail leaves from: `version` 4 or 6 (a Terraform reference has no text to read
    it from, so it is stated)."""

    address: str
    version: int


@dataclass(frozen=True, kw_only=True)
class MailDns:
    """The facts the records are made of. Addresses may be Terraform references."""

    zone: str
    domains: tuple[str, ...]
    vip_addresses: Mapping[Role, str]  # the address each VIP is reached at (its floating IP, else the VIP)
    dkim_selector: str
    dkim_txt: str  # the platform's DKIM TXT value, already quoted strings (`MailPlatformStack._dkim_txt`)
    helo_names: tuple[str, ...]  # smtp-out servers' fqdns, without the trailing dot
    egress: tuple[Egress, ...]
    spf: str | None  # the operator's SPF, verbatim; None: built from `egress`
    dmarc_policy: DmarcPolicy
    dmarc_reports: str | None  # None: dmarc-reports@<first domain>
    tls_reports: str | None  # None: tls-reports@<first domain>
    mta_sts_id: str | None  # None: no webmail layer, so no host serves an MTA-STS policy


def txt(text: str) -> str:
    """`text` as a TXT value: quoted strings of at most `TXT_STRING_MAX` characters, `"` and `\\` escaped.
    Receivers join the strings without a separator (RFC 7208 3.3, RFC 6376 3.6.2.2, RFC 7489 6.4)."""
    chunks = [text[i:i + TXT_STRING_MAX] for i in range(0, len(text), TXT_STRING_MAX)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


def egress_of(addresses: tuple[str, ...]) -> tuple[Egress, ...]:
    """Configured literal addresses as `Egress` (their version read from the text)."""
    return tuple(Egress(address=a, version=ipaddress.ip_address(a).version) for a in addresses)


def spf_record(egress: tuple[Egress, ...]) -> str:
    """`v=spf1 ip4:<a> ip6:<b> ~all`: the egress addresses and nothing else.

    Not `mx`: smtp-in receives and never sends, so `mx` authorised the wrong host. `~all`, not `-all`: with
    DMARC published, the verdict on mail from elsewhere belongs to the DMARC policy; `-all` makes some receivers
    refuse forwarded mail at SMTP time before its DKIM signature (which survives forwarding) is checked."""
    return " ".join(["v=spf1", *(f"ip{e.version}:{e.address}" for e in egress), "~all"])


def reports_address(configured: str | None, local_part: str, domains: tuple[str, ...]) -> str:
    return configured if configured is not None else f"{local_part}@{domains[0]}"


def records(d: MailDns) -> list[Record]:
    """Every record, platform zone first, then each mail domain in config order; deterministic."""
    zone = d.zone
    out: list[Record] = []
    for role, address in d.vip_addresses.items():
        out.extend(Record(f"{n}.{zone}.", "A", address) for n in VIP_NAMES[role])
    # The platform's DKIM public key, once, in the platform zone; each domain's selector points at it.
    dkim_record = f"{d.dkim_selector}._domainkey.{zone}."
    out.append(Record(dkim_record, "TXT", d.dkim_txt))
    # Each smtp-out server greets with its fqdn (Postfix's myhostname). Receivers check that the HELO name
    # resolves, and FCrDNS checks that the PTR's name resolves back to the connecting address: so the name
    # points at the egress address, not at the server's private one.
    for name in d.helo_names:
        for e in d.egress:
            out.append(Record(f"{name}.", "A" if e.version == 4 else "AAAA", e.address))
    spf = d.spf if d.spf is not None else spf_record(d.egress)
    dmarc_to = reports_address(d.dmarc_reports, "dmarc-reports", d.domains)
    tls_to = reports_address(d.tls_reports, "tls-reports", d.domains)
    dmarc_to_domain = dmarc_to.rsplit("@", 1)[1]
    for domain in d.domains:
        out.append(Record(f"{domain}.", "MX", f"10 smtp-in.{zone}."))
        out.append(Record(f"{domain}.", "TXT", txt(spf)))
        selector = f"{d.dkim_selector}._domainkey.{domain}."
        if selector != dkim_record:  # a mail domain that is the platform zone holds the TXT itself
            out.append(Record(selector, "CNAME", dkim_record))
        dmarc = f"v=DMARC1; p={d.dmarc_policy.value}; rua=mailto:{dmarc_to}"
        out.append(Record(f"_dmarc.{domain}.", "TXT", txt(dmarc)))
        if dmarc_to_domain != domain and dmarc_to_domain in (*d.domains, zone):
            # RFC 7489 7.1: a receiver sends reports for one domain to an address in another only if that
            # other domain says it accepts them.
            out.append(Record(f"{domain}._report._dmarc.{dmarc_to_domain}.", "TXT", txt("v=DMARC1")))
        if d.mta_sts_id is not None:
            out.append(Record(f"_mta-sts.{domain}.", "TXT", txt(f"v=STSv1; id={d.mta_sts_id}")))
            # The policy is served by the webmail layer at https://mta-sts.<domain>/.well-known/mta-sts.txt.
            out.append(Record(f"mta-sts.{domain}.", "CNAME", f"webmail.{zone}."))
        out.append(Record(f"_smtp._tls.{domain}.", "TXT", txt(f"v=TLSRPTv1; rua=mailto:{tls_to}")))
        for service, port, role, host in SRV_SERVICES:
            if role in d.vip_addresses:
                # priority 0, weight 1 (RFC 6186 example values; one target, so neither matters)
                out.append(Record(f"{service}.{domain}.", "SRV", f"0 1 {port} {host}.{zone}."))
    return out


def ptr_records(d: MailDns) -> list[Ptr]:
    """The reverse records the cloud or the operator must set: each egress address names one HELO name.

    One address has one PTR (several are allowed but receivers take the first), so servers that share an
    address (the router's SNAT) share the first server's name there; every server's own name still resolves
    to that address, which is what FCrDNS and HELO checks ask."""
    if not d.helo_names:
        return []
    return [Ptr(e.address, f"{d.helo_names[i % len(d.helo_names)]}.") for i, e in enumerate(d.egress)]
