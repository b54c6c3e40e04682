"""Security-group rules shared by the constructs (descriptions carry the policy marker the checks read)."""

from __future__ import annotations

from cdktf_cdktf_provider_openstack.networking_secgroup_rule_v2 import NetworkingSecgroupRuleV2
from constructs import Construct

from mailstrata.policies.marker import format_marker
from mailstrata.roles import Role


def allow_ssh_from_admins(scope: Construct, security_group_id: str, role: Role, admin_cidrs: tuple[str, ...]) -> None:
    """SSH (22/tcp) from each admin network, and from nowhere else."""
    for j, cidr in enumerate(admin_cidrs):
        NetworkingSecgroupRuleV2(
            scope,
            f"rule-22-admin{j}",
            security_group_id=security_group_id,
            direction="ingress",
            ethertype="IPv4",
            protocol="tcp",
            port_range_min=22,
            port_range_max=22,
            remote_ip_prefix=cidr,
            description=format_marker(role, f"SSH from admin network {cidr}", port=22, admin=True),
        )
