"""One HAProxy per `LbaasVip`, generated from the synthesized Terraform, as Octavia's amphora would run it.

Octavia's amphora driver turns a load balancer into an HAProxy configuration (octavia/common/jinja/
haproxy/combined_listeners/templates/macros.j2). This module does the same from the
`openstack_lb_*_v2` resources of `cdk.tf.json`, so the twin tests what the stack really asks Octavia
for, not what the constructs meant to ask:

| Terraform | HAProxy (as Octavia writes it) |
| --- | --- |
| listener `protocol_port`, `protocol` TCP/HTTP | `frontend` with `bind VIP:port`, `mode tcp`/`http` |
| listener `timeout_client_data` / `timeout_member_data` | `timeout client` / `timeout server` (ms) |
| listener `allowed_cidrs` | `acl allowed-cidrs src ...` + `tcp-request connection reject unless allowed-cidrs` |
| pool `lb_method` ROUND_ROBIN/LEAST_CONNECTIONS/SOURCE_IP | `balance roundrobin`/`leastconn`/`source` |
| pool `persistence` SOURCE_IP | `stick-table type ip size 10k` + `stick on src` |
| pool `protocol` PROXY | `send-proxy` on every server (PROXY v1; checks send it too, *) |
| monitor `delay`, `timeout`, `max_retries(_down)` | `check inter Ds fall N rise M`, `timeout check` |
| monitor HTTP / HTTPS | `option httpchk GET path`, `http-check expect rstatus`; HTTPS: `check-ssl verify none` |
| members | `server <name> addr:port weight 1` |

(*) HAProxy sends a `send-proxy` server's PROXY line on its health checks as well unless the check goes
elsewhere (`port`/`addr`, which Octavia writes only for a member's monitor_port/monitor_address, and the
stack sets neither): so the webmail pools' HTTP(S) monitors reach nginx's `proxy_protocol` listeners, as on
Octavia (tests/userdata/roles/test_webmail.py runs this module's HAProxy in front of the rendered nginx).

Octavia's defaults section (`retries 3`, `option redispatch`) is kept: a connection to a member that just
died is retried on another one. Twin-only: logs go to stdout (no syslog here) and the stats socket lives
under the twin's run folder.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

ALGORITHMS = {"ROUND_ROBIN": "roundrobin", "LEAST_CONNECTIONS": "leastconn", "SOURCE_IP": "source"}
_REF = re.compile(r"^\$\{(?P<type>[\w]+)\.(?P<name>[\w.-]+?)\.id\}$")
OCTAVIA_CONNECT_TIMEOUT_MS = 5000  # Octavia's timeout_member_connect default
OCTAVIA_STICK_SIZE = "10k"  # Octavia's haproxy_stick_size default


class LbConfigError(ValueError):
    """The synthesized load balancer cannot be turned into HAProxy (names the resource)."""


@dataclass(frozen=True, kw_only=True)
class Member:
    name: str
    address: str
    port: int


@dataclass(frozen=True, kw_only=True)
class Monitor:
    type: str
    delay: int
    timeout: int
    max_retries: int
    max_retries_down: int
    url_path: str | None
    expected_codes: str | None


@dataclass(frozen=True, kw_only=True)
class Listener:
    name: str
    port: int
    protocol: str
    timeout_client_ms: int
    timeout_member_ms: int
    allowed_cidrs: tuple[str, ...]
    pool_protocol: str
    algorithm: str
    persistence: str | None
    monitor: Monitor | None
    members: tuple[Member, ...]


@dataclass(frozen=True, kw_only=True)
class LoadBalancer:
    name: str  # the Octavia name, e.g. mail-smtp-in
    vip: str
    listeners: tuple[Listener, ...]


def _ref_name(value: str, rtype: str, where: str) -> str:
    m = _REF.match(value)
    if not m or m.group("type") != rtype:
        raise LbConfigError(f"{where}: expected a reference to a {rtype}, got {value!r}")
    return m.group("name")


def load_balancers(
    doc: Mapping[str, Any],
    *,
    vip_of: Callable[[str], str],
    member_address: Callable[[str], str],
    cidr: Callable[[str], str],
) -> dict[str, LoadBalancer]:
    """Every load balancer of `doc` (a cdk.tf.json), keyed by its Octavia name.

    `vip_of(lb name)` gives the twin VIP, `member_address(member name)` a server's twin address and
    `cidr(production cidr)` the twin network of an allowed CIDR.
    """
    res = doc.get("resource", {})
    lbs = res.get("openstack_lb_loadbalancer_v2", {})
    listeners = res.get("openstack_lb_listener_v2", {})
    pools = res.get("openstack_lb_pool_v2", {})
    monitors = res.get("openstack_lb_monitor_v2", {})
    members = res.get("openstack_lb_members_v2", {})
    pool_by_listener = {_ref_name(p["listener_id"], "openstack_lb_listener_v2", f"pool {k}"): k
                        for k, p in pools.items()}
    monitor_by_pool = {_ref_name(m["pool_id"], "openstack_lb_pool_v2", f"monitor {k}"): k for k, m in monitors.items()}
    members_by_pool: dict[str, list[Member]] = {}
    for k, m in members.items():
        pool = _ref_name(m["pool_id"], "openstack_lb_pool_v2", f"members {k}")
        for mem in m.get("member", []):
            members_by_pool.setdefault(pool, []).append(
                Member(name=mem["name"], address=member_address(mem["name"]), port=int(mem["protocol_port"]))
            )
    out: dict[str, LoadBalancer] = {}
    for lb_key, lb in lbs.items():
        built = []
        for l_key, lst in sorted(listeners.items(), key=lambda kv: int(kv[1]["protocol_port"])):
            if _ref_name(lst["loadbalancer_id"], "openstack_lb_loadbalancer_v2", f"listener {l_key}") != lb_key:
                continue
            p_key = pool_by_listener.get(l_key)
            if p_key is None:
                raise LbConfigError(f"listener {l_key}: has no pool")
            pool = pools[p_key]
            mon = monitors.get(monitor_by_pool.get(p_key, ""), None)
            algorithm = ALGORITHMS.get(pool["lb_method"])
            if algorithm is None:
                raise LbConfigError(f"pool {p_key}: lb_method {pool['lb_method']!r} has no HAProxy equivalent here")
            persistence = (pool.get("persistence") or {}).get("type")
            built.append(Listener(
                name=lst["name"],
                port=int(lst["protocol_port"]),
                protocol=lst["protocol"],
                timeout_client_ms=int(lst.get("timeout_client_data", 50000)),
                timeout_member_ms=int(lst.get("timeout_member_data", 50000)),
                allowed_cidrs=tuple(cidr(c) for c in lst.get("allowed_cidrs") or ()),
                pool_protocol=pool["protocol"],
                algorithm=algorithm,
                persistence=persistence,
                monitor=Monitor(
                    type=mon["type"], delay=int(mon["delay"]), timeout=int(mon["timeout"]),
                    max_retries=int(mon["max_retries"]), max_retries_down=int(mon.get("max_retries_down", 3)),
                    url_path=mon.get("url_path"), expected_codes=mon.get("expected_codes"),
                ) if mon else None,
                members=tuple(sorted(members_by_pool.get(p_key, []), key=lambda m: m.name)),
            ))
        out[lb["name"]] = LoadBalancer(name=lb["name"], vip=vip_of(lb["name"]), listeners=tuple(built))
    return out


def member_subnets(doc: Mapping[str, Any]) -> dict[str, tuple[str | None, ...]]:
    """The `subnet_id` each member of each load balancer names (None: none), keyed by the LB's Octavia name:
    where Octavia plugs the amphora in to reach them (`mailstrata.octavia`)."""
    res = doc.get("resource", {})
    lb_names = {k: lb["name"] for k, lb in res.get("openstack_lb_loadbalancer_v2", {}).items()}
    lb_of_listener = {k: _ref_name(lst["loadbalancer_id"], "openstack_lb_loadbalancer_v2", f"listener {k}")
                      for k, lst in res.get("openstack_lb_listener_v2", {}).items()}
    lb_of_pool = {k: lb_of_listener[_ref_name(p["listener_id"], "openstack_lb_listener_v2", f"pool {k}")]
                  for k, p in res.get("openstack_lb_pool_v2", {}).items()}
    out: dict[str, list[str | None]] = {name: [] for name in lb_names.values()}
    for k, m in sorted(res.get("openstack_lb_members_v2", {}).items()):
        lb = lb_of_pool[_ref_name(m["pool_id"], "openstack_lb_pool_v2", f"members {k}")]
        out[lb_names[lb]] += [mem.get("subnet_id") or None for mem in m.get("member", [])]
    return {name: tuple(dict.fromkeys(subnets)) for name, subnets in out.items()}


def _server_options(lst: Listener) -> str:
    opts = ""
    m = lst.monitor
    if m is not None:
        ssl = " check-ssl verify none" if m.type == "HTTPS" else ""
        opts += f" check{ssl} inter {m.delay}s fall {m.max_retries_down} rise {m.max_retries}"
    if lst.pool_protocol == "PROXY":
        opts += " send-proxy"
    return opts


def haproxy_cfg(lb: LoadBalancer, *, stats_socket: str, pid_file: str) -> str:
    """The HAProxy configuration of one load balancer."""
    lines = [
        f"# The amphora of {lb.name}, generated by mailstrata's twin from cdk.tf.json (mailstrata/twin/haproxy.py).",
        "global",
        "    # no `daemon`: runs in the foreground under the twin's supervisor (haproxy -db)",
        # twin-only: Octavia's 50000 needs a larger open-files limit than this machine grants
        "    maxconn 4000",
        f"    stats socket {stats_socket} mode 600 level admin",
        f"    pidfile {pid_file}",
        # twin-only: no syslog on this machine, so HAProxy logs to its stdout, which the twin writes to a file
        "    log stdout format short local0",
        "",
        "defaults",
        "    log global",
        "    option tcplog",
        "    option dontlognull",
        # Octavia's defaults: retry, then send the connection to another member
        "    retries 3",
        "    option redispatch",
        f"    timeout connect {OCTAVIA_CONNECT_TIMEOUT_MS}",
        "",
    ]
    for lst in lb.listeners:
        mode = "http" if lst.protocol == "HTTP" and lst.pool_protocol == "HTTP" else "tcp"
        backend = f"{lst.name}-pool"
        lines += [
            f"frontend {lst.name}",
            f"    bind {lb.vip}:{lst.port}",
            f"    mode {mode}",
            f"    timeout client {lst.timeout_client_ms}",
        ]
        if lst.allowed_cidrs:
            lines += [
                f"    acl allowed-cidrs src {' '.join(lst.allowed_cidrs)}",
                "    tcp-request connection reject unless allowed-cidrs",
            ]
        lines += [f"    default_backend {backend}", "", f"backend {backend}", f"    mode {mode}",
                  f"    balance {lst.algorithm}"]
        if lst.persistence == "SOURCE_IP":
            lines += [f"    stick-table type ip size {OCTAVIA_STICK_SIZE}", "    stick on src"]
        elif lst.persistence is not None:
            raise LbConfigError(f"listener {lst.name}: persistence {lst.persistence} is not reproduced by the twin")
        m = lst.monitor
        if m is not None:
            lines.append(f"    timeout check {m.timeout}s")
            if m.type in ("HTTP", "HTTPS"):
                lines += [f"    option httpchk GET {m.url_path or '/'}",
                          f"    http-check expect rstatus {m.expected_codes or '200'}"]
            elif m.type == "TLS-HELLO":
                lines.append("    option ssl-hello-chk")
        lines += ["    option allbackups", f"    timeout server {lst.timeout_member_ms}"]
        opts = _server_options(lst)
        lines += [f"    server {mem.name} {mem.address}:{mem.port} weight 1{opts}" for mem in lst.members]
        lines.append("")
    return "\n".join(lines) + "\n"


# ---- the runtime API (the amphora's admin socket) ----------------------------------------------------


def runtime(sock: str, command: str, *, timeout: float = 5.0) -> str:
    """One command on HAProxy's admin socket (run it inside the twin's namespace: `netns.in_netns`)."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock)
        s.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks).decode()


def stat_rows(text: str) -> list[dict[str, str]]:
    """`show stat` as one dict per row, keyed by the CSV header's column names (pxname, svname, scur, status,
    weight, ...)."""
    lines = [line for line in text.splitlines() if line]
    if not lines or not lines[0].startswith("# "):
        raise LbConfigError(f"show stat: no CSV header in {text[:200]!r}")
    header = lines[0][2:].split(",")
    return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]


def backend_ports(cfg: str) -> dict[str, int]:
    """Each backend of a configuration written by `haproxy_cfg` -> the port of the listener it serves."""
    out: dict[str, int] = {}
    port: int | None = None
    for line in cfg.splitlines():
        words = line.split()
        if words[:1] == ["frontend"]:
            port = None
        elif words[:1] == ["bind"] and len(words) > 1:
            port = int(words[1].rsplit(":", 1)[1])
        elif words[:1] == ["default_backend"] and port is not None:
            out[words[1]] = port
    return out
