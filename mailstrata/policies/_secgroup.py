"""A security-group rule (`openstack_networking_secgroup_rule_v2`) as CKV_MAILSTRATA_1 and _2 read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailstrata.policies._terraform import as_int, attr, is_token, is_world_prefix
from mailstrata.policies.marker import Marker, parse_marker

# Neutron accepts protocol names or IANA numbers; no protocol (or "any") means every protocol.
_PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "58": "ipv6-icmp", "icmpv6": "ipv6-icmp"}


class Unresolved(Exception):
    """An argument the decision depends on is an unresolved Terraform token."""

    def __init__(self, argument: str) -> None:
        super().__init__(f"{argument} is an unresolved Terraform token")
        self.argument = argument


@dataclass(frozen=True)
class SecgroupRule:
    """The arguments of a rule that decide who may reach what. Tokens are kept as they are."""

    direction: Any
    protocol: Any
    port_range_min: Any
    port_range_max: Any
    remote_ip_prefix: Any
    remote_group_id: Any
    description: Any

    @classmethod
    def from_conf(cls, conf: Mapping[str, Any]) -> SecgroupRule:
        return cls(
            direction=attr(conf, "direction"),
            protocol=attr(conf, "protocol"),
            port_range_min=attr(conf, "port_range_min"),
            port_range_max=attr(conf, "port_range_max"),
            remote_ip_prefix=attr(conf, "remote_ip_prefix"),
            remote_group_id=attr(conf, "remote_group_id"),
            description=attr(conf, "description"),
        )

    @property
    def marker(self) -> Marker | None:
        return parse_marker(self.description)

    def is_ingress(self) -> bool:
        """True for an ingress rule. Raises Unresolved when `direction` is a token."""
        if is_token(self.direction):
            raise Unresolved("direction")
        return isinstance(self.direction, str) and self.direction.lower() == "ingress"

    def protocol_name(self) -> str | None:
        """`tcp`, `udp`, `icmp`, ... or None for every protocol. Raises Unresolved for a token."""
        if is_token(self.protocol):
            raise Unresolved("protocol")
        if self.protocol is None:
            return None
        name = str(self.protocol).strip().lower()
        if name in ("", "any"):
            return None
        return _PROTOCOL_NAMES.get(name, name)

    def port_range(self) -> tuple[int, int] | None:
        """The `(min, max)` ports, or None when the rule sets no range (every port).

        With one end set, the other defaults to it. Raises Unresolved for a token.
        """
        for name in ("port_range_min", "port_range_max"):
            if is_token(getattr(self, name)):
                raise Unresolved(name)
        low, high = as_int(self.port_range_min), as_int(self.port_range_max)
        if low is None and high is None:
            return None
        low = high if low is None else low
        high = low if high is None else high
        assert low is not None and high is not None  # narrowed above; for mypy
        return low, high

    def is_world_open(self) -> bool:
        """True when the rule admits every address: a `/0` prefix, or neither a prefix nor a group.

        Raises Unresolved when `remote_ip_prefix` is a token (a token `remote_group_id` counts as set).
        """
        if is_token(self.remote_ip_prefix):
            raise Unresolved("remote_ip_prefix")
        if _is_set(self.remote_ip_prefix):
            return is_world_prefix(self.remote_ip_prefix)
        return not _is_set(self.remote_group_id)

    def describe_remote(self) -> str:
        if _is_set(self.remote_ip_prefix):
            return f"remote_ip_prefix {self.remote_ip_prefix}"
        if _is_set(self.remote_group_id):
            return "remote_group_id"
        return "no remote_ip_prefix and no remote_group_id (OpenStack then admits every address)"


def _is_set(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def describe_ports(protocol: str | None, ports: tuple[int, int] | None) -> str:
    """`tcp 25..25`, `tcp (all ports)`, `all protocols and ports`."""
    if protocol is None and ports is None:
        return "all protocols and ports"
    name = protocol or "any protocol"
    return f"{name} (all ports)" if ports is None else f"{name} {ports[0]}..{ports[1]}"
