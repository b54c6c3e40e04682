"""`LbaasVip`: an Octavia load balancer (one VIP) with several listeners, each with its pool and monitor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cdktf_cdktf_provider_openstack.lb_listener_v2 import LbListenerV2
from cdktf_cdktf_provider_openstack.lb_loadbalancer_v2 import LbLoadbalancerV2
from cdktf_cdktf_provider_openstack.lb_members_v2 import LbMembersV2, LbMembersV2Member
from cdktf_cdktf_provider_openstack.lb_monitor_v2 import LbMonitorV2
from cdktf_cdktf_provider_openstack.lb_pool_v2 import LbPoolV2, LbPoolV2Persistence
from cdktf_cdktf_provider_openstack.networking_floatingip_v2 import NetworkingFloatingipV2
from constructs import Construct

from mailstrata.constructs import _validate as v
from mailstrata.errors import Problems
from mailstrata.roles import Role
from mailstrata.types import Algorithm, ListenerProtocol, MonitorType, Persistence, PoolProtocol

if TYPE_CHECKING:
    from mailstrata.constructs.mail_layer import MailLayer


OCTAVIA_DEFAULT_TIMEOUT_MS = 50000


@dataclass(frozen=True, kw_only=True)
class MonitorProps:
    """Health monitor of a pool. Default: TCP connect every 5 s, down after 3 failures."""

    type: MonitorType = MonitorType.TCP
    delay_s: int = 5
    timeout_s: int = 4
    max_retries: int = 3
    max_retries_down: int = 3
    url_path: str = "/"  # HTTP(S) monitors only
    expected_codes: str = "200"


@dataclass(frozen=True, kw_only=True)
class ListenerProps:
    """One port on the VIP, its pool and health monitor.

    Defaults: plain TCP in and out, round robin, no persistence, Octavia's 50 s data timeouts, open to
    every source that the VIP's network lets through.
    """

    port: int
    service: str  # human name for descriptions ("SMTP", "IMAP")
    protocol: ListenerProtocol = ListenerProtocol.TCP
    pool_protocol: PoolProtocol = PoolProtocol.TCP
    algorithm: Algorithm = Algorithm.ROUND_ROBIN
    persistence: Persistence | None = None
    member_port: int | None = None  # default: the same as `port`
    timeout_client_data_ms: int = OCTAVIA_DEFAULT_TIMEOUT_MS
    timeout_member_data_ms: int = OCTAVIA_DEFAULT_TIMEOUT_MS
    allowed_cidrs: tuple[str, ...] = ()  # () = no restriction on the listener
    tls_container_ref: str | None = None  # TERMINATED_HTTPS only
    monitor: MonitorProps = field(default_factory=MonitorProps)

    @property
    def target_port(self) -> int:
        return self.member_port if self.member_port is not None else self.port


@dataclass(frozen=True, kw_only=True)
class FloatingIpProps:
    external_network: str  # the floating-IP pool (network name)


@dataclass(frozen=True, kw_only=True)
class LbaasVipProps:
    """An Octavia load balancer for one layer.

    `name` prefixes every OpenStack name. `floating_ip`: default none (only Internet-facing layers
    should get one).
    """

    name: str
    role: Role
    vip_subnet_id: str
    listeners: tuple[ListenerProps, ...]
    floating_ip: FloatingIpProps | None = None
    description: str = ""


def validate_listeners(props: LbaasVipProps, path: str = "listeners") -> Problems:
    """Every rule on listeners, all problems at once (the provider accepts any string for protocols)."""
    p = Problems()
    if not props.listeners:
        p.add(path, "must have at least one listener")
    ports: dict[int, int] = {}
    for i, lst in enumerate(props.listeners):
        at = f"{path}[{i}]"
        for name, enum in (("protocol", ListenerProtocol), ("pool_protocol", PoolProtocol), ("algorithm", Algorithm)):
            value = getattr(lst, name)
            if not isinstance(value, enum):
                p.add(f"{at}.{name}", f"must be one of {', '.join(e.value for e in enum)}, got {value!r}")
        v.network_port(p, f"{at}.port", lst.port)
        if lst.member_port is not None:
            v.network_port(p, f"{at}.member_port", lst.member_port)
        if lst.port in ports:
            p.add(f"{at}.port", f"port {lst.port} is already used by {path}[{ports[lst.port]}] on this VIP")
        ports.setdefault(lst.port, i)
        v.at_least(p, f"{at}.timeout_client_data_ms", lst.timeout_client_data_ms, 1000)
        v.at_least(p, f"{at}.timeout_member_data_ms", lst.timeout_member_data_ms, 1000)
        v.cidrs(p, f"{at}.allowed_cidrs", lst.allowed_cidrs)
        if lst.protocol is ListenerProtocol.TERMINATED_HTTPS and not lst.tls_container_ref:
            p.add(f"{at}.tls_container_ref", "is required for TERMINATED_HTTPS; give the Barbican container ref")
        if lst.protocol is not ListenerProtocol.TERMINATED_HTTPS and lst.tls_container_ref:
            p.add(f"{at}.tls_container_ref", f"is only used with TERMINATED_HTTPS, got protocol {lst.protocol}")
        http_in = lst.protocol in (ListenerProtocol.HTTP, ListenerProtocol.TERMINATED_HTTPS)
        if lst.pool_protocol is PoolProtocol.HTTP and not http_in:
            p.add(f"{at}.pool_protocol", f"HTTP pools need an HTTP or TERMINATED_HTTPS listener, got {lst.protocol}")
        if lst.pool_protocol is PoolProtocol.PROXY and lst.protocol is not ListenerProtocol.TCP:
            p.add(f"{at}.pool_protocol", f"PROXY pools need a TCP listener, got {lst.protocol}")
        if lst.persistence is Persistence.HTTP_COOKIE and not http_in:
            p.add(f"{at}.persistence", "HTTP_COOKIE persistence needs an HTTP listener; use SOURCE_IP")
        if lst.monitor.timeout_s >= lst.monitor.delay_s:
            p.add(
                f"{at}.monitor.timeout_s", f"must be below delay_s ({lst.monitor.delay_s}), got {lst.monitor.timeout_s}"
            )
    return p


class LbaasVip(Construct):
    """An Octavia load balancer on `vip_subnet_id` with one listener, pool and monitor per port.

    Attributes: `vip_address`, `vip_port_id`, `floating_ip_address` (None without a floating IP),
    `pools` (port -> pool). Members are added by `MailLayer` through `add_members`.
    """

    def __init__(self, scope: Construct, id: str, *, props: LbaasVipProps) -> None:
        super().__init__(scope, id)
        validate_listeners(props).raise_if_any()
        self.props = props
        role = props.role
        self.loadbalancer = LbLoadbalancerV2(
            self,
            "lb",
            name=props.name,
            vip_subnet_id=props.vip_subnet_id,
            description=f"mailstrata/{role.value}: {props.description or role.slug + ' VIP'}",
        )
        self.vip_address: str = self.loadbalancer.vip_address
        self.vip_port_id: str = self.loadbalancer.vip_port_id
        self.pools: dict[int, LbPoolV2] = {}
        self.listeners: dict[int, ListenerProps] = {}
        for lst in props.listeners:
            self._listener(lst)
        self.floating_ip_address: str | None = None
        if props.floating_ip is not None:
            fip = NetworkingFloatingipV2(
                self,
                "fip",
                pool=props.floating_ip.external_network,
                port_id=self.vip_port_id,
                description=f"mailstrata/{role.value}: public address of the {role.slug} VIP",
            )
            self.floating_ip_address = fip.address

    def _listener(self, lst: ListenerProps) -> None:
        role = self.props.role
        marker = f"mailstrata/{role.value}/{lst.port}"
        listener = LbListenerV2(
            self,
            f"listener-{lst.port}",
            name=f"{self.props.name}-{lst.port}",
            loadbalancer_id=self.loadbalancer.id,
            protocol=lst.protocol.value,
            protocol_port=lst.port,
            timeout_client_data=lst.timeout_client_data_ms,
            timeout_member_data=lst.timeout_member_data_ms,
            allowed_cidrs=list(lst.allowed_cidrs) or None,
            default_tls_container_ref=lst.tls_container_ref,
            description=f"{marker}: {lst.service} listener",
        )
        pool = LbPoolV2(
            self,
            f"pool-{lst.port}",
            name=f"{self.props.name}-{lst.port}",
            listener_id=listener.id,
            protocol=lst.pool_protocol.value,
            lb_method=lst.algorithm.value,
            persistence=LbPoolV2Persistence(type=lst.persistence.value) if lst.persistence else None,
            description=f"{marker}: {lst.service} pool ({lst.pool_protocol.value})",
        )
        m = lst.monitor
        http = m.type in (MonitorType.HTTP, MonitorType.HTTPS)
        LbMonitorV2(
            self,
            f"monitor-{lst.port}",
            name=f"{self.props.name}-{lst.port}",
            pool_id=pool.id,
            type=m.type.value,
            delay=m.delay_s,
            timeout=m.timeout_s,
            max_retries=m.max_retries,
            max_retries_down=m.max_retries_down,
            url_path=m.url_path if http else None,
            expected_codes=m.expected_codes if http else None,
        )
        self.pools[lst.port] = pool
        self.listeners[lst.port] = lst

    @property
    def proxy_ports(self) -> frozenset[int]:
        """Member ports whose pool sends the PROXY protocol (the servers must expect it there)."""
        return frozenset(lst.target_port for lst in self.listeners.values() if lst.pool_protocol is PoolProtocol.PROXY)

    @property
    def member_ports(self) -> tuple[int, ...]:
        return tuple(sorted({lst.target_port for lst in self.listeners.values()}))

    def add_members(self, layer: MailLayer) -> None:
        """Register every server of `layer` in every pool of this VIP (one member per server)."""
        for port, pool in sorted(self.pools.items()):
            lst = self.listeners[port]
            LbMembersV2(
                self,
                f"members-{port}-{layer.node.id}",
                pool_id=pool.id,
                member=[
                    LbMembersV2Member(
                        address=server.address,
                        protocol_port=lst.target_port,
                        subnet_id=layer.props.subnet_id,
                        name=server.name,
                    )
                    for server in layer.servers
                ],
            )
