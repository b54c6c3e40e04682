"""The twin's DNS: one dnsmasq answering only from its own data (no upstream: nothing leaves the machine).

It serves what the platform publishes (the stack's `published` records: VIP names, MX, SPF, DKIM) with
twin addresses, the servers' host names, the directory's name, and test data: Internet sender domains
with and without a passing SPF policy, an external recipient domain for the relay tests, and DNSBL
entries for a listed client. Every other name is NXDOMAIN, at once (`local=/#/`), as a resolver would
answer for a name that does not exist.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class Records:
    a: Mapping[str, str] = field(default_factory=dict)  # name -> address
    mx: tuple[tuple[str, str, int], ...] = ()  # (domain, exchanger, preference)
    # (name, text): a text is split into 255-byte strings; a tuple is served as the strings it holds (the
    # stack's published records, already split as Designate and BIND take them)
    txt: tuple[tuple[str, str | tuple[str, ...]], ...] = ()
    ptr: Mapping[str, str] = field(default_factory=dict)  # address -> name


def dnsbl_name(client: str, zone: str) -> str:
    """The DNSBL query name of `client` in `zone` (66.0.200.127.zen.spamhaus.org)."""
    return ".".join(reversed(str(ipaddress.ip_address(client)).split("."))) + "." + zone


def _txt(text: str | tuple[str, ...]) -> str:
    chunks = list(text) if isinstance(text, tuple) else [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
    return ",".join('"' + c.replace('"', '\\"') + '"' for c in chunks)


def dnsmasq_conf(*, listen: str, records: Records, log_file: str, pid_file: str, extra: Iterable[str] = ()) -> str:
    lines = [
        "# The twin's DNS, written by mailstrata/twin/dns.py. Answers only from this file.",
        f"listen-address={listen}",
        "bind-interfaces",
        "port=53",
        "no-resolv",  # no upstream: nothing is forwarded off the machine
        "no-hosts",
        "no-negcache",
        "local=/#/",  # every name not defined here does not exist
        "log-queries",
        f"log-facility={log_file}",
        f"pid-file={pid_file}",
        "user=root",  # its log file lives in the twin's logs folder, owned by root
    ]
    for name, addr in sorted(records.a.items()):
        lines.append(f"host-record={name},{addr}")
    for domain, host, pref in records.mx:
        lines.append(f"mx-host={domain},{host},{pref}")
    for name, text in records.txt:
        lines.append(f"txt-record={name},{_txt(text)}")
    for addr, name in sorted(records.ptr.items()):
        lines.append(f"ptr-record={'.'.join(reversed(addr.split('.')))}.in-addr.arpa,{name}")
    lines.extend(extra)
    return "\n".join(lines) + "\n"
