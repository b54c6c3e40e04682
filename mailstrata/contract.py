"""What the layers and their daemons must agree on: the ports each layer listens on, the ports whose daemons
read the PROXY protocol, the load balancer's listeners in front of them (protocols, algorithms, timeouts),
the TLS floor and cipher lists every daemon uses, and the mail folders both Dovecot and SOGo name, with why.

Plain data below the config, the stacks, the constructs and the templates alike: it imports nothing from
mailstrata but the roles and the shared types, and never the jsii runtime. The config validates listener
overrides against it, the stacks and `LbaasVip` build the listeners from it, the templates turn on
`smtpd_upstream_proxy_protocol` / `haproxy = yes` / nginx's `proxy_protocol` on exactly the ports it lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailstrata.roles import Role
from mailstrata.types import Algorithm, ListenerProtocol, MonitorType, Persistence, PoolProtocol

# ---- ports -----------------------------------------------------------------------------------------
SMTP = 25
POP3 = 110
IMAP = 143
HTTP = 80
HTTPS = 443
SUBMISSION = 587
IMAPS = 993
POP3S = 995
MANAGESIEVE = 4190
# The platform's internal relay on SMTP-out: the mailstores' bounces and sieve mail reach it directly on the
# SMTP-out servers, not through a load balancer, so the client address Postfix sees is the mailstore's own
# and a security group naming the mailstores' group (remote_group_id) decides who gets there. Not 25: port
# 25 of every layer sits behind a PROXY pool, where an address proves nothing.
RELAY = 2525
LOOPBACK = "127.0.0.1"  # what a daemon that only its own server talks to listens on
LOOPBACK_NET = "127.0.0.0/8"  # "this server", as a network

# ---- TLS ---------------------------------------------------------------------------------------------
# The floor for every daemon and every hop: TLS 1.2. Daemons that take a minimum version write
# TLS_MIN_VERSION; those that only know an exclusion list (Postfix 2.10, Dovecot 2.2) exclude TLS_BELOW_FLOOR.
TLS_MIN_VERSION = "TLSv1.2"
TLS_BELOW_FLOOR = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1")
# Mozilla's "intermediate" TLS 1.2 suites (TLS 1.3 suites are configured apart by OpenSSL); the same names
# are understood by CentOS 7's OpenSSL 1.0.2 and by Debian's 3.0. OpenSSL skips suites it lacks.
ECDHE_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
)
# With DH parameters at hand (Dovecot generates its own; Postfix gets RFC 7919 ffdhe2048), also these.
DHE_CIPHERS = ("DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384")
# Postfix's cipher grades take no list: "high", minus what must never be offered.
EXCLUDED_CIPHERS = ("aNULL", "eNULL", "MD5", "RC4", "3DES")

# ---- mail folders --------------------------------------------------------------------------------
# The special-use folders the mailstore creates (Dovecot's `inbox` namespace, separator '/'), which SOGo
# names as its Drafts, Sent and Trash, and into which the global sieve files spam.
DRAFTS, SENT, TRASH, JUNK = "Drafts", "Sent", "Trash", "Junk"

# ---- users' homes on the share ------------------------------------------------------------------------
# Between Dovecot's config and the mailstores' placement agent: homes are <vmail>/x/y/<canonical name>, hashed
# HOME_LEVELS deep (daemons/dovecot.py, `home`), the mail in ~/maildir (mail_location). fts-lucene keeps its index
# in `lucene-indexes` under the INBOX namespace's index root, and CLucene its write lock in the index directory
# (FSDirectory): the agent looks for a dead home's (docs/placement.md).
HOME_LEVELS = 2
LUCENE_WRITE_LOCK = "maildir/lucene-indexes/write.lock"

# ---- PROXY protocol and listeners -----------------------------------------------------------------
# Ports on which a layer's daemons can read the PROXY protocol (Postfix smtpd_upstream_proxy_protocol,
# Dovecot `haproxy = yes`, nginx `listen ... proxy_protocol` with ngx_http_realip_module, which EPEL 7's
# nginx 1.20 and Debian's 1.22 are both built with).
PROXY_CAPABLE: dict[Role, frozenset[int]] = {
    Role.SMTP_IN: frozenset({SMTP}),
    Role.SMTP_OUT: frozenset({SUBMISSION}),  # RELAY is reached directly and never reads PROXY
    Role.MAILSTORE: frozenset({SMTP, POP3, IMAP, IMAPS, POP3S, MANAGESIEVE}),
    Role.WEBMAIL: frozenset({HTTP, HTTPS}),
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
    # Who may connect: "internet", "clients" (corporate), "platform" (the platform's own servers), or a role's
    # value ("webmail", "smtp_in", ...): that layer's servers only.
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
        ListenerDefault(port=587, service="submission", pool_protocol=PoolProtocol.PROXY,
                        audience=("clients", Role.WEBMAIL.value),
                        why="authenticated users, SOGo on their behalf; AUTH only after STARTTLS"),
    ),
    Role.MAILSTORE: (
        ListenerDefault(port=25, service="SMTP delivery", pool_protocol=PoolProtocol.PROXY,
                        audience=(Role.SMTP_IN.value, Role.SMTP_OUT.value),
                        algorithm=Algorithm.ROUND_ROBIN,
                        why="per-client limits must see each smtp-in server, not the LB"),
        ListenerDefault(port=110, service="POP3", pool_protocol=PoolProtocol.PROXY,
                        audience=("clients", Role.WEBMAIL.value),
                        persistence=Persistence.SOURCE_IP, timeout_ms=LONG_SESSION_MS),
        ListenerDefault(port=143, service="IMAP", pool_protocol=PoolProtocol.PROXY,
                        audience=("clients", Role.WEBMAIL.value),
                        persistence=Persistence.SOURCE_IP, timeout_ms=LONG_SESSION_MS),
        ListenerDefault(port=993, service="IMAPS", pool_protocol=PoolProtocol.PROXY,
                        audience=("clients", Role.WEBMAIL.value),
                        persistence=Persistence.SOURCE_IP, timeout_ms=LONG_SESSION_MS),
        ListenerDefault(port=995, service="POP3S", pool_protocol=PoolProtocol.PROXY,
                        audience=("clients", Role.WEBMAIL.value),
                        persistence=Persistence.SOURCE_IP, timeout_ms=LONG_SESSION_MS),
        ListenerDefault(port=4190, service="ManageSieve", pool_protocol=PoolProtocol.PROXY,
                        audience=("clients", Role.WEBMAIL.value), persistence=Persistence.SOURCE_IP,
                        timeout_ms=LONG_SESSION_MS),
    ),
    # PROXY on both ports: nginx, SOGo's logs and SOGo's IMAP ID see the browser's address, not the amphora's.
    # The HTTP(S) monitors keep working: the amphora's HAProxy sends the PROXY line on the health checks of a
    # `send-proxy` member too, as long as the member names no monitor_port/monitor_address (HAProxy's
    # `check-send-proxy` default; the members never do, see LbaasVip.add_members).
    Role.WEBMAIL: (
        ListenerDefault(port=443, service="HTTPS (SOGo)", pool_protocol=PoolProtocol.PROXY, audience=("internet",),
                        persistence=Persistence.SOURCE_IP, timeout_ms=WEBMAIL_SESSION_MS, monitor=MonitorType.HTTPS,
                        monitor_path="/healthz",
                        why="SOGo keeps sessions per server: source-IP persistence, as the seed; PROXY gives nginx "
                            "and SOGo the client's address"),
        ListenerDefault(port=80, service="HTTP redirect", pool_protocol=PoolProtocol.PROXY, audience=("internet",),
                        monitor=MonitorType.HTTP, monitor_path="/healthz",
                        why="only redirects to https; PROXY so that its access log names the client too"),
    ),
}


def default_listener_ports(role: Role) -> frozenset[int]:
    return frozenset(d.port for d in DEFAULT_LISTENERS.get(role, ()))
