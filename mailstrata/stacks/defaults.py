"""Moved to `mailstrata.contract` (what the layers must agree on; the config reads it too).

Kept as a re-export while `mailstrata.userdata.limits`, `mailstrata.constructs.lbaas_vip` and
`mailstrata.stacks.mail_platform_stack` still import from here; delete it once they import
`mailstrata.contract`.
"""

from __future__ import annotations

from mailstrata.contract import (
    DEFAULT_LISTENERS,
    LONG_SESSION_MS,
    MINUTES,
    PROXY_CAPABLE,
    SMTP_SESSION_MS,
    WEBMAIL_SESSION_MS,
    ListenerDefault,
    default_listener_ports,
)

__all__ = [
    "DEFAULT_LISTENERS",
    "LONG_SESSION_MS",
    "MINUTES",
    "PROXY_CAPABLE",
    "SMTP_SESSION_MS",
    "WEBMAIL_SESSION_MS",
    "ListenerDefault",
    "default_listener_ports",
]
