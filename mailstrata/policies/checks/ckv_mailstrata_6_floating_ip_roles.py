"""CKV_MAILSTRATA_6: only the smtp_in and webmail layers get floating IPs.

Resources: openstack_networking_floatingip_v2 and openstack_networking_floatingip_associate_v2.

- PASS: a floating IP whose description carries the `smtp_in` or `webmail` role marker; an association
  whose floating_ip refers to (`${openstack_networking_floatingip_v2.<name>.address}`) a floating IP of
  the same file that carries one of those markers.
- FAIL: a floating IP without a role marker or with another role; an association whose floating_ip is a
  literal address (it cannot be traced to a marked floating IP) or refers to a floating IP of the same
  file that fails.
- Not applicable (UNKNOWN): a floating IP whose description is an unresolved Terraform token; an
  association whose floating_ip refers to something else (a variable, a data source, another file).
  The association resource has no description, hence this indirection.
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from mailstrata.policies._terraform import attr, is_token, resource_refs, scanned_module
from mailstrata.policies.marker import parse_marker
from mailstrata.roles import Role

FLOATING_IP = "openstack_networking_floatingip_v2"
FLOATING_IP_ASSOCIATE = "openstack_networking_floatingip_associate_v2"
PUBLIC_ROLES = frozenset({Role.SMTP_IN, Role.WEBMAIL})


class FloatingIpsOnlyForPublicLayers(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Floating IPs carry the smtp_in or webmail role marker",
            id="CKV_MAILSTRATA_6",
            categories=[CheckCategories.NETWORKING],
            supported_resources=[FLOATING_IP, FLOATING_IP_ASSOCIATE],
            guideline="docs/policies.md#ckv_mailstrata_6",
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        if self.entity_type == FLOATING_IP_ASSOCIATE:
            return self._scan_association(conf)
        self.evaluated_keys = ["description"]
        return self._judge(attr(conf, "description"), "floating IP")

    def _scan_association(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = ["floating_ip"]
        address = attr(conf, "floating_ip")
        if not is_token(address):
            self.details.append(
                f"association of the literal address {address!r} cannot be traced to a floating IP with a "
                f"role marker; set floating_ip to ${{{FLOATING_IP}.<name>.address}} of a marked floating IP"
            )
            return CheckResult.FAILED
        names = resource_refs(address, FLOATING_IP)
        module = scanned_module()
        if len(names) != 1 or module is None:
            return CheckResult.UNKNOWN
        floating_ip = module.resource(FLOATING_IP, names[0])
        if floating_ip is None:
            return CheckResult.UNKNOWN
        return self._judge(floating_ip.get("description"), f"associated floating IP {FLOATING_IP}.{names[0]}")

    def _judge(self, description: Any, what: str) -> CheckResult:
        if is_token(description):
            return CheckResult.UNKNOWN
        marker = parse_marker(description)
        if marker is not None and marker.role in PUBLIC_ROLES:
            return CheckResult.PASSED
        found = f"role {marker.role.value}" if marker else "no mailstrata/<role> marker in its description"
        self.details.append(
            f"{what} has {found}; only smtp_in and webmail are reachable from the Internet: reach the "
            "other layers through their internal VIPs, or mark a public one `mailstrata/smtp_in: ...`"
        )
        return CheckResult.FAILED


check = FloatingIpsOnlyForPublicLayers()
