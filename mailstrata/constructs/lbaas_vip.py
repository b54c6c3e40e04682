"""`LbaasVip`: an Octavia load balancer (one VIP) with several listeners, each with its pool and monitor."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from cdktf import Token
from cdktf_cdktf_provider_openstack.lb_listener_v2 import LbListenerV2
from cdktf_cdktf_provider_openstack.lb_loadbalancer_v2 import LbLoadbalancerV2
from cdktf_cdktf_provider_openstack.lb_members_v2 import LbMembersV2, LbMembersV2Member
from cdktf_cdktf_provider_openstack.lb_monitor_v2 import LbMonitorV2
from cdktf_cdktf_provider_openstack.lb_pool_v2 import LbPoolV2, LbPoolV2Persistence
from cdktf_cdktf_provider_openstack.networking_floatingip_v2 import NetworkingFloatingipV2
from constructs import Construct

from mailstrata.constructs import _validate as v
from mailstrata.constructs._variables import drain_variable, offline_variable
from mailstrata.constructs.interfaces import IMemberGroup, Member
from mailstrata.contract import DEFAULT_LISTENERS, ListenerDefault
from mailstrata.errors import Problems
from mailstrata.policies.marker import format_marker
from mailstrata.roles import MAIL_LAYER_ROLES, Role
from mailstrata.types import Algorithm, ListenerProtocol, MonitorType, Persistence, PoolProtocol

OCTAVIA_DEFAULT_TIMEOUT_MS = 50000  # Octavia's own default, which would cut IMAP IDLE: never used by default


class PlatformDefault(Enum):
    """`ListenerProps.persistence`'s default, told apart from an explicit None (no persistence)."""

    PLATFORM = "the platform's choice"


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

    Every unset field takes the platform's default for the VIP's role and this port, the same the whole
    platform stack uses (`mailstrata.contract.DEFAULT_LISTENERS`): e.g. a mailstore VIP's 143 gets
    PROXY, source-IP persistence and 31-minute data timeouts. For a port the platform has no default for:
    plain TCP in and out, least connections, no persistence, 5-minute timeouts, a TCP monitor. Default
    allowed_cidrs: no restriction on the listener (every source the VIP's network lets through).
    """

    port: int
    service: str | None = None  # human name for descriptions. Default: the platform's ("IMAP"), else "port N"
    protocol: ListenerProtocol | None = None
    pool_protocol: PoolProtocol | None = None
    algorithm: Algorithm | None = None
    persistence: Persistence | PlatformDefault | None = PlatformDefault.PLATFORM  # None: no persistence
    member_port: int | None = None  # default: the same as `port`
    timeout_client_data_ms: int | None = None
    timeout_member_data_ms: int | None = None
    allowed_cidrs: tuple[str, ...] = ()  # () = no restriction on the listener
    tls_container_ref: str | None = None  # TERMINATED_HTTPS only
    monitor: MonitorProps | None = None  # Default: the platform's monitor for the port, else a TCP connect check

    @property
    def target_port(self) -> int:
        return self.member_port if self.member_port is not None else self.port


@dataclass(frozen=True, kw_only=True)
class Listener:
    """A listener with every default filled in: what `LbaasVip` builds (`LbaasVip.listeners`)."""

    port: int
    service: str
    protocol: ListenerProtocol
    pool_protocol: PoolProtocol
    algorithm: Algorithm
    persistence: Persistence | None
    member_port: int | None
    timeout_client_data_ms: int
    timeout_member_data_ms: int
    allowed_cidrs: tuple[str, ...]
    tls_container_ref: str | None
    monitor: MonitorProps

    @property
    def target_port(self) -> int:
        return self.member_port if self.member_port is not None else self.port


def platform_listener(role: Role, lst: ListenerProps) -> Listener:
    """`lst` with each unset field taken from the platform's default for `role` and its port."""
    d = next((d for d in DEFAULT_LISTENERS.get(role, ()) if d.port == lst.port), None)
    d = d or ListenerDefault(port=lst.port, service=f"port {lst.port}")
    return Listener(
        port=lst.port,
        service=lst.service if lst.service is not None else d.service,
        protocol=lst.protocol or d.protocol,
        pool_protocol=lst.pool_protocol or d.pool_protocol,
        algorithm=lst.algorithm or d.algorithm,
        persistence=d.persistence if lst.persistence is PlatformDefault.PLATFORM else lst.persistence,
        member_port=lst.member_port,
        timeout_client_data_ms=lst.timeout_client_data_ms if lst.timeout_client_data_ms is not None else d.timeout_ms,
        timeout_member_data_ms=lst.timeout_member_data_ms if lst.timeout_member_data_ms is not None else d.timeout_ms,
        allowed_cidrs=lst.allowed_cidrs,
        tls_container_ref=lst.tls_container_ref,
        monitor=lst.monitor if lst.monitor is not None else MonitorProps(type=d.monitor, url_path=d.monitor_path),
    )


@dataclass(frozen=True, kw_only=True)
class FloatingIpProps:
    external_network: str  # the floating-IP pool (network name)


@dataclass(frozen=True, kw_only=True)
class LbaasVipProps:
    """An Octavia load balancer for one layer.

    `name` prefixes every OpenStack name. `listeners`: default the platform's listeners for `role` (e.g.
    mailstore 25, 110, 143, 993, 995, 4190), with no allowed_cidrs restriction. `floating_ip`: default none
    (only Internet-facing layers should get one).
    """

    name: str
    role: Role
    vip_subnet_id: str
    listeners: tuple[ListenerProps, ...] = ()
    floating_ip: FloatingIpProps | None = None
    description: str = ""


def resolved_listeners(props: LbaasVipProps) -> tuple[Listener, ...]:
    given = props.listeners or tuple(ListenerProps(port=d.port) for d in DEFAULT_LISTENERS.get(props.role, ()))
    return tuple(platform_listener(props.role, lst) for lst in given)


def validate_listeners(props: LbaasVipProps, path: str = "listeners") -> Problems:
    """Every rule on listeners, all problems at once (the provider accepts any string for protocols)."""
    p = Problems()
    if props.role not in MAIL_LAYER_ROLES:
        p.add("props.role", f"must be the role of a mail layer, got Role.{props.role.name}; use one of "
                            f"{', '.join(f'Role.{r.name}' for r in MAIL_LAYER_ROLES)}")
        return p
    v.non_empty(p, "props.name", props.name)
    v.openstack_id(p, "props.vip_subnet_id", props.vip_subnet_id, "subnet")
    ports: dict[int, int] = {}
    for i, lst in enumerate(resolved_listeners(props)):
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
        for name in ("delay_s", "timeout_s", "max_retries", "max_retries_down"):
            v.at_least(p, f"{at}.monitor.{name}", getattr(lst.monitor, name), 1)
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
    `pools` (port -> pool). Members are added through `add_members(group)`, by any `IMemberGroup`
    (a `MailLayer` with `vips=` adds its finished `member_group` itself).
    """

    def __init__(self, scope: Construct, id: str, *, props: LbaasVipProps) -> None:
        v.check_props(v.unique_id(Problems(), scope, id), props, LbaasVipProps).raise_if_any()
        validate_listeners(props).raise_if_any()
        super().__init__(scope, id)
        self.props = props
        role = props.role
        self.loadbalancer = LbLoadbalancerV2(
            self,
            "lb",
            name=props.name,
            vip_subnet_id=props.vip_subnet_id,
            description=format_marker(role, props.description or f"{role.slug} VIP"),
        )
        self.vip_address: str = self.loadbalancer.vip_address
        self.vip_port_id: str = self.loadbalancer.vip_port_id
        self.pools: dict[int, LbPoolV2] = {}
        self.listeners: dict[int, Listener] = {}  # by port, every default filled in
        for lst in resolved_listeners(props):
            self._listener(lst)
        self.floating_ip_address: str | None = None
        if props.floating_ip is not None:
            fip = NetworkingFloatingipV2(
                self,
                "fip",
                pool=props.floating_ip.external_network,
                port_id=self.vip_port_id,
                description=format_marker(role, f"public address of the {role.slug} VIP"),
            )
            self.floating_ip_address = fip.address

    def _listener(self, lst: Listener) -> None:
        role = self.props.role
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
            description=format_marker(role, f"{lst.service} listener", port=lst.port),
        )
        pool = LbPoolV2(
            self,
            f"pool-{lst.port}",
            name=f"{self.props.name}-{lst.port}",
            listener_id=listener.id,
            protocol=lst.pool_protocol.value,
            lb_method=lst.algorithm.value,
            persistence=LbPoolV2Persistence(type=lst.persistence.value) if lst.persistence else None,
            description=format_marker(role, f"{lst.service} pool ({lst.pool_protocol.value})", port=lst.port),
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

    def add_members(self, group: IMemberGroup) -> None:
        """Register every member of `group` in every pool of this VIP, on the pool's member port.

        `group` is any `IMemberGroup`: a `MailLayer` with `vips=` calls this with its finished `member_group`.
        """
        p = Problems()
        if not isinstance(group, IMemberGroup):
            p.add("add_members.group", f"must be an IMemberGroup (group_id, role, subnet_id, members), got "
                                       f"{v.describe(group)}; pass a MailLayer's member_group, or a MemberGroup(...)")
            p.raise_if_any()
        if not isinstance(group.group_id, str) or not group.group_id:
            p.add("add_members.group.group_id", f"must be non-empty text, got {v.describe(group.group_id)}; name the "
                                                "group, e.g. after its layer's construct id")
        elif any(self.node.try_find_child(f"members-{port}-{group.group_id}") is not None for port in self.pools):
            p.add("add_members.group.group_id", f"was already added to this VIP, got {group.group_id!r}; add each "
                                                "group once, under its own group_id")
        if group.role is not self.props.role:
            p.add("add_members.group.role", f"must be this VIP's role Role.{self.props.role.name}, got "
                                            f"{v.describe(group.role)}; add the group to its own layer's VIP")
        if not isinstance(group.subnet_id, str):
            p.add("add_members.group.subnet_id", f"must be a subnet ID (text), got {v.describe(group.subnet_id)}")
        else:
            v.openstack_id(p, "add_members.group.subnet_id", group.subnet_id, "subnet")
        if not isinstance(group.members, tuple) or not all(isinstance(m, Member) for m in group.members):
            p.add("add_members.group.members", f"must be a tuple of Member, got {v.describe(group.members)}; write "
                                               "(Member(name=..., address=...), ...)")
        p.raise_if_any()
        drained, offline = drain_variable(self), offline_variable(self)
        for port, pool in sorted(self.pools.items()):
            lst = self.listeners[port]
            LbMembersV2(
                self,
                f"members-{port}-{group.group_id}",
                pool_id=pool.id,
                member=[
                    # subnet_id: Octavia plugs the amphora into this subnet and reaches the member from its port
                    # there (mailstrata.octavia); the layer's security group admits the member port from it.
                    # No monitor_port/monitor_address: the amphora's HAProxy then sends a PROXY pool's
                    # PROXY line on health checks too (HAProxy's check-send-proxy default), which the
                    # members' daemons require on that port. Naming either would make every check fail.
                    LbMembersV2Member(
                        address=member.address,
                        protocol_port=lst.target_port,
                        subnet_id=group.subnet_id,
                        name=member.name,
                        # 0 while a rollout drains the server: Octavia keeps its sessions, sends it no new ones
                        weight=Token.as_number(f'${{contains({drained}, "{member.name}") ? 0 : 1}}'),
                        # false while a rollout replaces the server: no client reaches it, sticky ones included
                        admin_state_up=Token.as_any(f'${{!contains({offline}, "{member.name}")}}'),
                    )
                    for member in group.members
                ],
            )
