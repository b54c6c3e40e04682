"""MTA-STS (RFC 8461): the policy file the webmail layer serves and the id its TXT record carries.

A sending MTA that supports MTA-STS looks up ``_mta-sts.<domain>`` (TXT ``v=STSv1; id=<id>``), and when
the id is new to it fetches ``https://mta-sts.<domain>/.well-known/mta-sts.txt``. The policy names the MX
hosts whose certificates the sender must verify before delivering. Every mail domain of the platform has
the same MX (``smtp-in.<dns.zone>``), so one policy text serves every domain, and one id (derived from that
text) goes into every domain's TXT record: the id changes exactly when the text changes, as RFC 8461
section 3.1 requires (the id "MUST uniquely identify a given instance of a policy, such that senders can
determine when the policy has been updated").
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from mailstrata import defaults
from mailstrata.errors import Problems

__all__ = [
    "POLICY_PATH",
    "MtaStsMode",
    "MtaStsSettings",
    "mx_host",
    "policy_host",
    "policy_id",
    "policy_text",
]

#: The path senders fetch, fixed by RFC 8461 section 3.2.
POLICY_PATH = "/.well-known/mta-sts.txt"

#: RFC 8461 section 3.2: ``max_age`` "MUST be representable as an integer from 0 to 31557600" (a year).
MAX_AGE_LIMIT = 31_557_600

#: RFC 8461 section 3.1: ``sts-id = 1*32(ALPHA / DIGIT)``. 20 hex characters of SHA-256 are 80 bits,
#: far more than needed to tell two policy versions apart, and well inside the 32-character limit.
_ID_HEX_CHARS = 20

# RFC 8461 section 3.2: ``sts-policy-mx-value = ["*."] Domain`` (Domain: RFC 5321 section 4.1.2).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_MX_PATTERN = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*")  # used with fullmatch


class MtaStsMode(enum.StrEnum):
    """RFC 8461 section 5 policy modes."""

    ENFORCE = "enforce"
    """Senders refuse to deliver unless an MX listed in the policy presents a valid certificate."""
    TESTING = "testing"
    """Senders deliver as without MTA-STS but report failures (TLS-RPT, RFC 8460)."""
    NONE = "none"
    """Senders drop a previously cached policy; used to withdraw MTA-STS."""


@dataclass(frozen=True, kw_only=True)
class MtaStsSettings:
    """The platform's MTA-STS choices (config `mail.mta_sts`); the MX comes from the DNS zone."""

    mode: MtaStsMode = MtaStsMode(defaults.MTA_STS_MODE)
    max_age: int = defaults.MTA_STS_MAX_AGE

    def policy(self, dns_zone: str) -> str:
        """The one policy text of the platform: every mail domain's MX is `smtp-in.<dns_zone>`."""
        return policy_text([mx_host(dns_zone)], mode=self.mode, max_age=self.max_age)


def mx_host(dns_zone: str) -> str:
    """The name every mail domain's MX record points at (`MX 10 smtp-in.<zone>.`), without the final dot."""
    return f"smtp-in.{dns_zone.rstrip('.')}"


def policy_host(domain: str) -> str:
    """Where senders fetch a domain's policy (RFC 8461 3.2): `mta-sts.<domain>`."""
    return f"mta-sts.{domain.rstrip('.')}"


def policy_text(mx_hosts: Sequence[str], *, mode: str, max_age: int) -> str:
    """The body of ``/.well-known/mta-sts.txt`` (RFC 8461 section 3.2).

    Lines end in CRLF. Section 3.2's prose calls the file "CRLF-separated key/value pairs" while its
    ABNF (``sts-policy-term = LF / CRLF``) also admits LF (erratum 6253 asks for the prose to say
    so): CRLF is the one ending both the prose and the grammar allow, so no sender, strict or
    lenient, can read it differently. The last field also ends in CRLF, which the ABNF's optional
    trailing ``[sts-policy-term]`` permits.

    Fields in the order of the RFC's own examples: ``version`` (only ``STSv1`` exists), ``mode``,
    one ``mx`` per host in the given order (lower-cased, trailing dot dropped, duplicates removed),
    then ``max_age``. The text is a pure function of the arguments, so :func:`policy_id` of it is
    stable from run to run and changes only when a field does.

    Raises :class:`~mailstrata.errors.ConfigError` with every problem: an unknown mode, a
    ``max_age`` outside 0..31557600, no MX host (unless the mode is ``none``), or a host that is
    not ``["*."] Domain`` (``sts-policy-mx-value``).
    """
    problems = Problems()
    try:
        chosen = MtaStsMode(mode)
    except ValueError:
        problems.add("mode", f"must be one of {', '.join(MtaStsMode)}, got {mode!r}")
        chosen = MtaStsMode.NONE
    if isinstance(max_age, bool) or not isinstance(max_age, int) or not 0 <= max_age <= MAX_AGE_LIMIT:
        problems.add("max_age", f"must be whole seconds from 0 to {MAX_AGE_LIMIT} (RFC 8461 3.2), got {max_age!r}")
    hosts: list[str] = []
    for host in mx_hosts:
        name = host.rstrip(".").lower()
        if not _MX_PATTERN.fullmatch(name):
            problems.add("mx_hosts", f"must be host names, each optionally '*.'-prefixed (RFC 8461 3.2), got {host!r}")
        elif name not in hosts:
            hosts.append(name)
    if not hosts and not problems and chosen is not MtaStsMode.NONE:
        # RFC 8461 3.2: "mx" is required unless the mode is none.
        problems.add("mx_hosts", f"must name at least one MX host in mode {chosen}, got none")
    problems.raise_if_any()
    lines = ["version: STSv1", f"mode: {chosen.value}"]
    lines += [f"mx: {h}" for h in hosts]
    lines.append(f"max_age: {max_age}")
    return "".join(f"{line}\r\n" for line in lines)


def policy_id(text: str) -> str:
    """The ``id`` of the ``_mta-sts`` TXT record for a policy text (RFC 8461 section 3.1).

    The first 20 hex characters of the SHA-256 of the UTF-8 text: 1 to 32 alphanumerics as
    ``sts-id`` requires, and different whenever the text differs, so publishing a changed policy
    always changes the id and senders refetch it.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_ID_HEX_CHARS]
