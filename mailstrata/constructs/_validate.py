"""Small pure validators for construct props. Each returns problems, never raises on its own.

Unresolved Terraform tokens (`${...}`) are skipped, not guessed at.
"""

from __future__ import annotations

import ipaddress

from mailstrata.errors import Problems


def is_token(value: object) -> bool:
    return isinstance(value, str) and "${" in value


def network_port(p: Problems, path: str, value: int) -> None:
    if not 1 <= value <= 65535:
        p.add(path, f"must be a TCP port between 1 and 65535, got {value}")


def at_least(p: Problems, path: str, value: int, minimum: int) -> None:
    if value < minimum:
        p.add(path, f"must be at least {minimum}, got {value}")


def cidrs(p: Problems, path: str, values: tuple[str, ...]) -> None:
    for i, v in enumerate(values):
        if is_token(v):
            continue
        try:
            ipaddress.ip_network(v, strict=True)
        except ValueError:
            p.add(f"{path}[{i}]", f"must be a CIDR such as 10.0.0.0/24, got {v!r}")


def non_empty(p: Problems, path: str, value: str | None) -> None:
    if value is not None and not is_token(value) and not value.strip():
        p.add(path, "must not be empty")
