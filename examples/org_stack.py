"""Composition: an org stack that brings its own network and uses the constructs directly.

Three more smtp-in servers behind their own VIP on the organisation's existing network (looked up by name),
handing clean mail to the mailstore VIP of a platform deployed before. Run it as

    python examples/org_stack.py <outdir>

which synthesizes the stack `org` into <outdir>/stacks/org/ (default outdir: cdktf.out). The class is the
README's example, word for word (tests/test_readme.py checks that they agree).
"""

from __future__ import annotations

import sys

from cdktf import App, LocalBackend, TerraformStack
from cdktf_cdktf_provider_openstack.data_openstack_networking_network_v2 import DataOpenstackNetworkingNetworkV2
from cdktf_cdktf_provider_openstack.data_openstack_networking_subnet_v2 import DataOpenstackNetworkingSubnetV2
from cdktf_cdktf_provider_openstack.provider import OpenstackProvider

from mailstrata.compose import platform_context
from mailstrata.constructs import (
    AdBinding,
    AdBindingProps,
    LbaasVip,
    LbaasVipProps,
    ListenerProps,
    MailLayer,
    MailLayerProps,
    PoolProtocol,
)
from mailstrata.roles import Role


class OrgStack(TerraformStack):
    """Three more smtp-in servers on the org's own network, handing clean mail to an existing mailstore VIP."""

    def __init__(self, scope, id, *, network_name, subnet_name, subnet_cidr, mailstore_vip):
        super().__init__(scope, id)
        OpenstackProvider(self, "openstack")  # credentials: clouds.yaml (OS_CLOUD) or the OS_* variables
        LocalBackend(self, path=f"../../../state/{id}.tfstate")  # beside cdktf.out, out of every synth's reach
        network = DataOpenstackNetworkingNetworkV2(self, "network", name=network_name)
        subnet = DataOpenstackNetworkingSubnetV2(self, "subnet", name=subnet_name, network_id=network.id)
        ad = AdBinding(self, "ad", props=AdBindingProps(  # declares the sensitive variable ad_bind_password
            urls=("ldaps://dc1.example.com",), base_dn="dc=example,dc=com",
            bind_dn="cn=mail,ou=apps,dc=example,dc=com", domains=("example.com",)))
        mx = LbaasVip(self, "mx", props=LbaasVipProps(
            name="org-mx", role=Role.SMTP_IN, vip_subnet_id=subnet.id,
            listeners=(ListenerProps(port=25, service="SMTP", pool_protocol=PoolProtocol.PROXY),)))
        platform = platform_context(
            name="org", directory=ad, dns_zone="mail.example.com", layers={Role.SMTP_IN: (subnet_cidr,)},
            vips={Role.SMTP_IN: mx, Role.MAILSTORE: mailstore_vip},
            vip_subnet_cidr=subnet_cidr, admin_cidrs=("10.99.0.0/24",))
        MailLayer(self, "mx-servers", props=MailLayerProps(
            name_prefix="org", role=Role.SMTP_IN, platform=platform, network_id=network.id,
            subnet_id=subnet.id, lb_source_cidrs=(subnet_cidr,), admin_cidrs=("10.99.0.0/24",),
            count=3, vips=(mx,)))


def main(outdir: str) -> None:
    app = App(outdir=outdir)
    OrgStack(app, "org", network_name="org-mail", subnet_name="org-mail-v4", subnet_cidr="10.50.0.0/24",
             mailstore_vip="10.20.0.12")
    app.synth()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cdktf.out")
