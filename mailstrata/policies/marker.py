"""The role marker that ties an OpenStack resource to a mailstrata role, for the custom checkov checks.

Security-group rules, LB listeners, LB pools and floating IPs carry a `description` that starts with

    mailstrata/<role>[/<port>][/admin]: <human text>

for example `mailstrata/smtp_in/25: SMTP from the Internet` or
`mailstrata/mailstore/22/admin: SSH from admin networks`. The checks in `mailstrata.policies.checks`
read it with `parse_marker`; constructs write it with `format_marker`, so both sides share one grammar.
This module is pure (no cdktf, no checkov) so checkov can import it while loading the checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailstrata.roles import Role

MARKER_PREFIX = "mailstrata/"

_MARKER_RE = re.compile(
    r"^mailstrata/(?P<role>[a-z_]+)(?:/(?P<port>[0-9]{1,5}))?(?P<admin>/admin)?:(?:[ ](?P<text>.*))?$",
    re.DOTALL,
)


@dataclass(frozen=True, kw_only=True)
class Marker:
    """A parsed role marker. `port` is None when the marker names no port."""

    role: Role
    port: int | None = None
    admin: bool = False
    text: str = ""


def parse_marker(description: object) -> Marker | None:
    """Return the marker at the start of `description`, or None when it has none.

    None is also returned for anything that is not a well-formed marker: a non-string, an unresolved
    Terraform token (`${...}`), an unknown role, or a port outside 1..65535.
    """
    if not isinstance(description, str):
        return None
    match = _MARKER_RE.match(description)
    if match is None:
        return None
    try:
        role = Role(match["role"])
    except ValueError:
        return None
    port = int(match["port"]) if match["port"] is not None else None
    if port is not None and not 1 <= port <= 65535:
        return None
    return Marker(role=role, port=port, admin=match["admin"] is not None, text=match["text"] or "")


def format_marker(role: Role, text: str, *, port: int | None = None, admin: bool = False) -> str:
    """Build a description carrying the marker, e.g. `mailstrata/smtp_in/25: SMTP from the Internet`."""
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"port: must be within 1..65535, got {port}")
    head = f"{MARKER_PREFIX}{role.value}"
    if port is not None:
        head += f"/{port}"
    if admin:
        head += "/admin"
    return f"{head}: {text}"
