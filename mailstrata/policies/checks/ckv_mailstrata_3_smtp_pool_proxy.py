"""CKV_MAILSTRATA_3: the Internet-facing SMTP pool speaks the PROXY protocol.

Resource: openstack_lb_pool_v2. Octavia proxies TCP: without PROXY every client seems to come from the
amphora, so DNSBL, SPF and per-client limits act on the LB address, and if that address is inside
`mynetworks` the MX becomes an open relay.

- PASS: a pool whose role marker is `smtp_in` with port 25 (or no port) and whose protocol is `PROXY` or
  `PROXYV2`.
- FAIL: such a pool with any other protocol (TCP, HTTP, ...), or none.
- Not applicable (UNKNOWN): pools without a role marker, of another role, or of smtp_in on a port other
  than 25; pools whose protocol is an unresolved Terraform token.
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from mailstrata.policies._terraform import attr, is_token
from mailstrata.policies.marker import parse_marker
from mailstrata.roles import Role

SMTP_PORT = 25
PROXY_PROTOCOLS = ("PROXY", "PROXYV2")


class SmtpInPoolUsesProxyProtocol(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="The smtp_in pool on port 25 uses the PROXY protocol (PROXY or PROXYV2)",
            id="CKV_MAILSTRATA_3",
            categories=[CheckCategories.NETWORKING],
            supported_resources=["openstack_lb_pool_v2"],
            guideline="docs/policies.md#ckv_mailstrata_3",
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = ["description", "protocol"]
        marker = parse_marker(attr(conf, "description"))
        if marker is None or marker.role is not Role.SMTP_IN or marker.port not in (None, SMTP_PORT):
            return CheckResult.UNKNOWN
        protocol = attr(conf, "protocol")
        if is_token(protocol):
            return CheckResult.UNKNOWN
        if protocol in PROXY_PROTOCOLS:
            return CheckResult.PASSED
        self.details.append(
            f"smtp_in pool on port {SMTP_PORT} has protocol {protocol!r}; set protocol to PROXYV2 (or PROXY) "
            "and enable smtpd_upstream_proxy_protocol (or postscreen) so Postfix sees the client address"
        )
        return CheckResult.FAILED


check = SmtpInPoolUsesProxyProtocol()
