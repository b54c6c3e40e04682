"""CKV_MAILSTRATA_1: no security-group rule is open to the world, except SMTP on smtp_in and HTTPS on webmail.

Resource: openstack_networking_secgroup_rule_v2.

- PASS: an ingress rule that is not open to the world (its remote_ip_prefix is a CIDR shorter than /0, or
  it has a remote_group_id); or one open to the world that is TCP port 25..25 with the `smtp_in` role
  marker, or TCP port 443..443 with the `webmail` role marker.
- FAIL: any other ingress rule open to the world, i.e. remote_ip_prefix `0.0.0.0/0` or `::/0`, or neither
  remote_ip_prefix nor remote_group_id set (OpenStack then admits every address). A rule without a
  port range (all ports) or without a protocol always fails when open to the world; so does one whose
  description has no role marker (role unknown).
- Not applicable (UNKNOWN): egress rules; rules whose direction, protocol, ports or remote_ip_prefix is
  an unresolved Terraform token.
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from mailstrata.policies._secgroup import SecgroupRule, Unresolved, describe_ports
from mailstrata.roles import Role

# The only (role, protocol, port) a rule may open to the whole Internet.
WORLD_OPEN_ALLOWED: frozenset[tuple[Role, str, int]] = frozenset(
    {(Role.SMTP_IN, "tcp", 25), (Role.WEBMAIL, "tcp", 443)}
)


class WorldOpenSecgroupRule(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Security-group rules are not open to the world, except SMTP (smtp_in) and HTTPS (webmail)",
            id="CKV_MAILSTRATA_1",
            categories=[CheckCategories.NETWORKING],
            supported_resources=["openstack_networking_secgroup_rule_v2"],
            guideline="docs/policies.md#ckv_mailstrata_1",
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        rule = SecgroupRule.from_conf(conf)
        self.evaluated_keys = [
            "direction",
            "remote_ip_prefix",
            "remote_group_id",
            "protocol",
            "port_range_min",
            "port_range_max",
            "description",
        ]
        try:
            if not rule.is_ingress():
                return CheckResult.UNKNOWN
            if not rule.is_world_open():
                return CheckResult.PASSED
            protocol = rule.protocol_name()
            ports = rule.port_range()
        except Unresolved:
            return CheckResult.UNKNOWN
        marker = rule.marker
        if (
            marker is not None
            and protocol is not None
            and ports is not None
            and ports[0] == ports[1]
            and (marker.role, protocol, ports[0]) in WORLD_OPEN_ALLOWED
        ):
            return CheckResult.PASSED
        role = marker.role.value if marker else "unknown (no mailstrata/<role> marker in the description)"
        self.details.append(
            f"{rule.describe_remote()} opens {describe_ports(protocol, ports)} to the world on role {role}; "
            "only tcp 25 on smtp_in and tcp 443 on webmail may be; "
            "set remote_ip_prefix to the networks that need access, or remote_group_id"
        )
        return CheckResult.FAILED


check = WorldOpenSecgroupRule()
