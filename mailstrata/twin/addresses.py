"""The twin's address plan: every network of the stack mapped into 127.0.0.0/8.

The twin runs in one network namespace that has only `lo`, so every address it uses is a loopback
alias. The plan maps each CIDR the config names to its own 127.x range, keeps "Internet" clients
outside every `mynetworks` and allowed CIDR, and gives every server, VIP, load balancer and piece of
infrastructure a fixed address:

| what | production | twin |
| --- | --- | --- |
| server subnets (one per distinct CIDR) | e.g. 10.10.0.0/24 | 127.10.0.0/24, 127.11.0.0/24, ... |
| VIP subnet | e.g. 10.20.0.0/24 | 127.20.0.0/24 (VIPs .10-.13) |
| amphorae (each LB's member-side port) | in the member subnet | .210-.213 of the members' twin subnet |
| corporate clients | e.g. 10.0.0.0/8 | 127.100.0.0/16, 127.101.0.0/16, ... |
| admin networks | e.g. 10.99.0.0/24 | 127.99.0.0/24, ... |
| infrastructure (AD, DNS) | the corporate DCs, the resolver | 127.53.0.0/24 |
| the Internet | everything else | 127.200.0.0/16 |

An amphora connects to its members from its own port on the subnet the members name
(`mailstrata.octavia`): the twin gives it an address in the members' twin subnet, above the servers' host
numbers (Neutron would pick any free one).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mailstrata.octavia import amphora_source_subnets
from mailstrata.roles import MAIL_LAYER_ROLES, Role

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
# The production "this host" network, as templates write it; in the twin only 127.0.0.1 is a server's own.
HOST_LOOPBACK_CIDRS = ("127.0.0.0/8",)
SERVER_BASE = 10  # 127.10.0.0/24 for the first server subnet
VIP_NET = ipaddress.ip_network("127.20.0.0/24")
ADMIN_BASE = 99
CLIENT_BASE = 100
INFRA_NET = ipaddress.ip_network("127.53.0.0/24")
INTERNET_NET = ipaddress.ip_network("127.200.0.0/16")
# Host numbers inside a server subnet: smtp_in .11-, smtp_out .21-, mailstore .31-, webmail .41- (up to 9 each).
ROLE_HOST_BASE: Mapping[Role, int] = {Role.SMTP_IN: 10, Role.SMTP_OUT: 20, Role.MAILSTORE: 30, Role.WEBMAIL: 40}
MAX_SERVERS_PER_ROLE = 9
VIP_HOST: Mapping[Role, int] = {Role.SMTP_IN: 10, Role.SMTP_OUT: 11, Role.MAILSTORE: 12, Role.WEBMAIL: 13}
# The amphora of each layer's VIP on the members' subnet: outside every server's host number (.11-.49).
AMPHORA_HOST: Mapping[Role, int] = {Role.SMTP_IN: 210, Role.SMTP_OUT: 211, Role.MAILSTORE: 212, Role.WEBMAIL: 213}


def require_loopback(address: str, what: str) -> str:
    """`address` if it is an IPv4 address in 127.0.0.0/8, else a ValueError naming `what`."""
    ip = ipaddress.ip_address(address)
    if ip.version != 4 or ip not in LOOPBACK:
        raise ValueError(f"{what}: twin addresses must be in 127.0.0.0/8 (nothing may leave the machine), "
                         f"got {address}")
    return str(ip)


@dataclass(frozen=True, kw_only=True)
class AddressPlan:
    """Production CIDR -> twin CIDR, and every address the twin gives out."""

    networks: Mapping[str, str]  # production CIDR -> twin CIDR
    server_subnet: Mapping[Role, str]  # the twin subnet of each layer's servers
    vip_subnet: str
    dns: str = str(INFRA_NET.network_address + 53)
    directory: str = str(INFRA_NET.network_address + 10)
    database: str = str(INFRA_NET.network_address + 33)  # an external SOGo database (Galera in production)
    internet: str = str(INTERNET_NET)
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        server_cidrs: Mapping[Role, str],
        vip_cidr: str,
        client_cidrs: Iterable[str],
        admin_cidrs: Iterable[str],
    ) -> AddressPlan:
        """Map every CIDR of the config; each distinct production CIDR gets its own twin range."""
        networks: dict[str, str] = {}
        for i, cidr in enumerate(sorted(set(server_cidrs.values()))):
            networks[cidr] = f"127.{SERVER_BASE + i}.0.0/24"
        if vip_cidr in networks:
            raise ValueError(f"network.vip_subnet_cidr {vip_cidr} is also a server subnet; the twin keeps them apart")
        networks[vip_cidr] = str(VIP_NET)
        for i, cidr in enumerate(sorted(set(client_cidrs) - set(networks))):
            networks[cidr] = f"127.{CLIENT_BASE + i}.0.0/16"
        for i, cidr in enumerate(sorted(set(admin_cidrs) - set(networks))):
            networks[cidr] = f"127.{ADMIN_BASE - i}.0.0/24"
        for cidr in HOST_LOOPBACK_CIDRS:
            networks[cidr] = "127.0.0.1/32"
        return cls(
            networks=networks,
            server_subnet={role: networks[c] for role, c in server_cidrs.items()},
            vip_subnet=str(VIP_NET),
        )

    def cidr(self, production: str) -> str:
        """The twin CIDR of a production CIDR the config names."""
        try:
            return self.networks[str(ipaddress.ip_network(production, strict=False))]
        except KeyError:
            raise KeyError(f"{production}: not a network of the config; the twin maps only those") from None

    def cidrs(self, production: Iterable[str]) -> tuple[str, ...]:
        return tuple(self.cidr(c) for c in production)

    def server(self, role: Role, index: int) -> str:
        """The address of server `index` (1-based) of `role`."""
        if role not in ROLE_HOST_BASE:
            raise KeyError(f"{role}: the twin runs only the mail layers "
                           f"({', '.join(r.value for r in MAIL_LAYER_ROLES)})")
        if not 1 <= index <= MAX_SERVERS_PER_ROLE:
            raise ValueError(f"layers.{role.value}.count: the twin runs at most {MAX_SERVERS_PER_ROLE} servers "
                             "per layer")
        net = ipaddress.ip_network(self.server_subnet[role])
        return str(net.network_address + ROLE_HOST_BASE[role] + index)

    def vip(self, role: Role) -> str:
        return str(ipaddress.ip_network(self.vip_subnet).network_address + VIP_HOST[role])

    def amphora_subnet(self, role: Role, member_subnets: Iterable[str | None] | None = None) -> str:
        """The twin subnet the amphora of `role`'s VIP connects to its members from (`mailstrata.octavia`).

        `member_subnets`: the twin subnet each member names (None: it names none); default the layer's own
        subnet, which `MailLayer` has its members name. The twin runs one HAProxy per load balancer with one
        source address, so the members must all be reached from one subnet.
        """
        members = tuple(member_subnets) if member_subnets is not None else (self.server_subnet.get(role),)
        subnets = amphora_source_subnets(member_subnets=members, vip_subnets=(self.vip_subnet,))
        if len(subnets) != 1:
            raise ValueError(f"the {role.value} load balancer reaches its members from {len(subnets)} subnets "
                             f"({', '.join(subnets) or 'none'}); the twin's amphora has one address")
        return subnets[0]

    def amphora(self, role: Role, member_subnets: Iterable[str | None] | None = None) -> str:
        """Where the VIP's HAProxy connects to members from: the amphora's port on the members' subnet."""
        return str(ipaddress.ip_network(self.amphora_subnet(role, member_subnets)).network_address
                   + AMPHORA_HOST[role])

    def internet_client(self, n: int = 1) -> str:
        """An Internet address, outside every network of the platform."""
        return str(INTERNET_NET.network_address + n)

    def corporate_client(self, n: int = 1) -> str:
        """An address in the first corporate client network (IMAP, POP3, submission are open to it)."""
        clients = [t for p, t in self.networks.items() if t.endswith("/16") and t.startswith(f"127.{CLIENT_BASE}.")]
        if not clients:
            raise KeyError("the config names no corporate client network")
        return str(ipaddress.ip_network(clients[0]).network_address + n)

    def all_addresses(self, servers: Iterable[str], amphorae: Iterable[str] | None = None) -> tuple[str, ...]:
        """Every address the namespace's `lo` needs, besides 127.0.0.1 (default amphorae: each layer's own,
        on the layer's subnet)."""
        fixed = [self.dns, self.directory, self.database, *servers]
        fixed += [self.vip(role) for role in VIP_HOST]
        fixed += list(amphorae) if amphorae is not None else [self.amphora(role) for role in VIP_HOST]
        out = tuple(dict.fromkeys(require_loopback(a, "address plan") for a in fixed))
        return out
