"""CKV_MAILSTRATA_2: SSH is reachable only from the admin networks.

Resource: openstack_networking_secgroup_rule_v2. A rule "allows SSH" when it is an ingress rule for TCP
or for every protocol whose port range covers 22, or that has no port range (every port).

- PASS: a rule that allows SSH, whose description carries the admin marker
  (`mailstrata/<role>[/<port>]/admin: ...`) and whose remote_ip_prefix is set and is not the world
  (`0.0.0.0/0`, `::/0`). A remote_ip_prefix that is an unresolved Terraform token counts as set.
- FAIL: a rule that allows SSH without the admin marker, without a remote_ip_prefix (a remote_group_id
  alone lets every member of that group in; no remote at all lets the world in), or with a world prefix.
  An "allow everything from this group" rule fails too: it allows SSH.
- Not applicable (UNKNOWN): egress rules; UDP, ICMP and other non-TCP rules; TCP rules whose range does
  not cover 22; rules whose direction, protocol or ports are unresolved Terraform tokens.
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from mailstrata.policies._secgroup import SecgroupRule, Unresolved, describe_ports
from mailstrata.policies._terraform import is_token, is_world_prefix

SSH_PORT = 22


class SshFromAdminNetworksOnly(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="SSH is allowed only from admin networks (admin marker and a non-world remote_ip_prefix)",
            id="CKV_MAILSTRATA_2",
            categories=[CheckCategories.NETWORKING],
            supported_resources=["openstack_networking_secgroup_rule_v2"],
            guideline="docs/policies.md#ckv_mailstrata_2",
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        rule = SecgroupRule.from_conf(conf)
        self.evaluated_keys = [
            "direction",
            "protocol",
            "port_range_min",
            "port_range_max",
            "remote_ip_prefix",
            "description",
        ]
        try:
            if not rule.is_ingress():
                return CheckResult.UNKNOWN
            protocol = rule.protocol_name()
            ports = rule.port_range()
        except Unresolved:
            return CheckResult.UNKNOWN
        if protocol not in (None, "tcp"):
            return CheckResult.UNKNOWN
        if ports is not None and not ports[0] <= SSH_PORT <= ports[1]:
            return CheckResult.UNKNOWN

        problems: list[str] = []
        marker = rule.marker
        if marker is None or not marker.admin:
            problems.append("its description lacks the admin marker (`mailstrata/<role>/22/admin: ...`)")
        prefix = rule.remote_ip_prefix
        if prefix is None or (isinstance(prefix, str) and not prefix.strip()):
            problems.append("it sets no remote_ip_prefix")
        elif not is_token(prefix) and is_world_prefix(prefix):
            problems.append(f"its remote_ip_prefix {prefix} is the whole Internet")
        if not problems:
            return CheckResult.PASSED
        self.details.append(
            f"rule allows SSH ({describe_ports(protocol, ports)}) but {' and '.join(problems)}; "
            "allow port 22 only from the admin CIDRs, with the /admin marker"
        )
        return CheckResult.FAILED


check = SshFromAdminNetworksOnly()
