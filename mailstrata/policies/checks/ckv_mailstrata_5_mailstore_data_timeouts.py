"""CKV_MAILSTRATA_5: mailstore listeners for POP3, IMAP and ManageSieve keep idle connections open.

Resource: openstack_lb_listener_v2. Octavia closes a connection after 50 s without data by default
(timeout_client_data / timeout_member_data = 50000 ms), which cuts IMAP IDLE sessions; RFC 2177 has
clients re-issue IDLE at least every 29 minutes, so the listener must wait 30 minutes (1800000 ms).

- PASS: a listener with the `mailstore` role marker on protocol_port 110, 143, 993, 995 or 4190 whose
  timeout_client_data and timeout_member_data are both at least 1800000. A timeout that is an unresolved
  Terraform token is skipped.
- FAIL: such a listener with either timeout missing (Octavia's 50000 ms default) or below 1800000.
- Not applicable (UNKNOWN): listeners without a role marker, of another role, or on another port; a
  listener whose port is a token and whose marker names no port.
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from mailstrata.policies._terraform import as_int, attr, is_token
from mailstrata.policies.marker import parse_marker
from mailstrata.roles import Role

MAILSTORE_IDLE_PORTS = frozenset({110, 143, 993, 995, 4190})
MIN_DATA_TIMEOUT_MS = 1_800_000
TIMEOUT_ARGUMENTS = ("timeout_client_data", "timeout_member_data")


class MailstoreListenerDataTimeouts(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Mailstore POP3/IMAP/ManageSieve listeners have data timeouts of at least 1800000 ms",
            id="CKV_MAILSTRATA_5",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=["openstack_lb_listener_v2"],
            guideline="docs/policies.md#ckv_mailstrata_5",
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = ["description", "protocol_port", *TIMEOUT_ARGUMENTS]
        marker = parse_marker(attr(conf, "description"))
        if marker is None or marker.role is not Role.MAILSTORE:
            return CheckResult.UNKNOWN
        port_value = attr(conf, "protocol_port")
        port = marker.port if is_token(port_value) else as_int(port_value)
        if port not in MAILSTORE_IDLE_PORTS:
            return CheckResult.UNKNOWN

        problems: list[str] = []
        for argument in TIMEOUT_ARGUMENTS:
            value = attr(conf, argument)
            if is_token(value):
                continue
            milliseconds = as_int(value)
            if value is None:
                problems.append(f"{argument} is not set (Octavia's default is 50000 ms)")
            elif milliseconds is None or milliseconds < MIN_DATA_TIMEOUT_MS:
                problems.append(f"{argument} is {value!r}")
        if not problems:
            return CheckResult.PASSED
        self.details.append(
            f"mailstore listener on port {port}: {'; '.join(problems)}; set both to at least "
            f"{MIN_DATA_TIMEOUT_MS} (30 min) so IMAP IDLE sessions are not cut"
        )
        return CheckResult.FAILED


check = MailstoreListenerDataTimeouts()
