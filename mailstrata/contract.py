"""What the layers must agree on: the ports each layer listens on, the ports whose daemons read the PROXY
protocol, and the load balancer's listeners in front of them (protocols, algorithms, timeouts), with why.

Plain data below the config, the stacks, the constructs and the templates alike: it imports nothing from
mailstrata but the roles and the shared types, and never the jsii runtime. The config validates listener
overrides against it, the stacks and `LbaasVip` build the listeners from it, the templates turn on
`smtpd_upstream_proxy_protocol` / `haproxy = yes` on exactly the ports it lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailstrata.roles import Role
from mailstrata.types import Algorithm, ListenerProtocol, MonitorType, Persistence, PoolProtocol

# Ports on which a layer's daemons can read the PROXY protocol (Postfix smtpd_upstream_proxy_protocol,
# Dovecot `haproxy = yes`). SOGo's nginx on CentOS 7 is not built for it, so webmail takes none.
PROXY_CAPABLE: dict[Role, frozenset[int]] = {
    Role.SMTP_IN: frozenset({25}),
    Role.SMTP_OUT: frozenset({25, 587}),
    Role.MAILSTORE: frozenset({25, 110, 143, 993, 995, 4190}),
    Role.WEBMAIL: frozenset(),
}

MINUTES = 60_000
# IMAP IDLE and ManageSieve sessions stay open for long: Octavia's 50 s default would cut them.
LONG_SESSION_MS = 31 * MINUTES
SMTP_SESSION_MS = 5 * MINUTES  # SMTP's own command timeout is 300 s (RFC 5321, 4.5.3.2)
WEBMAIL_SESSION_MS = 60 * MINUTES  # ActiveSync long-polls for up to 59 min


@dataclass(frozen=True, kw_only=True)
class ListenerDefault:
    port: int
    service: str
    protocol: ListenerProtocol = ListenerProtocol.TCP
    pool_protocol: PoolProtocol = PoolProtocol.TCP
    algorithm: Algorithm = Algorithm.LEAST_CONNECTIONS
    persistence: Persistence | None = None
    timeout_ms: int = SMTP_SESSION_MS
    # Who may connect: "internet", "clients" (corporate), "platform" (the platform's own servers).
    audience: tuple[str, ...] = ("platform",)
    monitor: MonitorType = MonitorType.TCP
    monitor_path: str = "/"
    why: str = field(default="")


DEFAULT_LISTENERS: dict[Role, tuple[ListenerDefault, ...]] = {
    Role.SMTP_IN: (
        ListenerDefault(
            port=25, service="SMTP (MX)", pool_protocol=PoolProtocol.PROXY, audience=("internet",),
            why="PROXY keeps the real client address for DNSBL, SPF and limits; mynetworks never sees the LB",
        ),
    ),
    Role.SMTP_OUT: (
        ListenerDefault(port=25, service="SMTP relay", pool_protocol=PoolProtocol.PROXY, audience=("platform",),
                        why="webmail and mailstore bounces relay here; PROXY makes mynetworks mean the servers"),
        ListenerDefault(port=587, service="submission", pool_protocol=PoolProtocol.PROXY,
                        audience=("clients", "platform"), why="authenticated users; AUTH only after STARTTLS"),
    ),
    Role.MAILSTORE: (
        ListenerDefault(port=25, service="SMTP delivery", pool_protocol=PoolProtocol.PROXY, audience=("platform",),
                        algorithm=Algorithm.ROUND_ROBIN,
                        why="per-client limits must see each smtp-in server, not the LB"),
        ListenerDefault(port=110, service="POP3", pool_protocol=PoolProtocol.PROXY, audience=("clients", "platform"),
                        persistence=Persistence.SOURCE_IP, timeout_ms=LONG_SESSION_MS),
        ListenerDefault(port=143, service="IMAP", pool_protocol=PoolProtocol.PROXY, audience=("clients", "platform"),
                        persistence=Persistence.SOURCE_IP, timeout_ms=LONG_SESSION_MS),
        ListenerDefault(port=993, service="IMAPS", pool_protocol=PoolProtocol.PROXY, audience=("clients", "platform"),
                        persistence=Persistence.SOURCE_IP, timeout_ms=LONG_SESSION_MS),
        ListenerDefault(port=995, service="POP3S", pool_protocol=PoolProtocol.PROXY, audience=("clients", "platform"),
                        persistence=Persistence.SOURCE_IP, timeout_ms=LONG_SESSION_MS),
        ListenerDefault(port=4190, service="ManageSieve", pool_protocol=PoolProtocol.PROXY,
                        audience=("clients", "platform"), persistence=Persistence.SOURCE_IP,
                        timeout_ms=LONG_SESSION_MS),
    ),
    Role.WEBMAIL: (
        ListenerDefault(port=443, service="HTTPS (SOGo)", audience=("internet",), persistence=Persistence.SOURCE_IP,
                        timeout_ms=WEBMAIL_SESSION_MS, monitor=MonitorType.HTTPS, monitor_path="/healthz",
                        why="SOGo keeps sessions per server: source-IP persistence, as the seed"),
        ListenerDefault(port=80, service="HTTP redirect", audience=("internet",), monitor=MonitorType.HTTP,
                        monitor_path="/healthz", why="only redirects to https"),
    ),
}


def default_listener_ports(role: Role) -> frozenset[int]:
    return frozenset(d.port for d in DEFAULT_LISTENERS.get(role, ()))
