"""A bare cdktf app: the baseline mailstrata's synth is compared with (issue 8, `make bench`).

    .venv/bin/python benchmarks/bare_app.py [--servers-per-layer 2] [--outdir DIR]

The same three providers as `MailPlatformStack` (openstack, tls, random), the same local backend, and
the same resource types in the same numbers as the default platform's `cdk.tf.json` (123 resources with
2 servers per layer, 1 NFS server and 2 mail domains); `--servers-per-layer 125` gives the 500-server
platform's 501 instances and 501 ports. Every attribute is a plain value or a reference between
resources: no config file, no pydantic, no templates, no user-data rendering, no size check. What it
costs is what any cdktf app of that shape costs (importing cdktf and the provider bindings, starting
jsii's Node.js process, one jsii round trip per construct and attribute, writing the JSON).

`build()` is the app's body, importable for tests; `main()` synthesizes into `--outdir` (or
`CDKTF_OUTDIR`, default `cdktf.out.bare`), as `python main.py` does into `cdktf.out`.
"""

# ruff: noqa: E402  (jsii reads the variables below when cdktf is imported)
from __future__ import annotations

import argparse
import os

# As mailstrata/__init__.py does: jsii's Node.js version banner stays quiet (same environment for both).
for _var in ("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION",
             "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION"):
    os.environ.setdefault(_var, "20,22,24")

from cdktf import App, LocalBackend, TerraformOutput, TerraformStack, TerraformVariable
from cdktf_cdktf_provider_openstack.blockstorage_volume_v3 import BlockstorageVolumeV3
from cdktf_cdktf_provider_openstack.compute_instance_v2 import (
    ComputeInstanceV2,
    ComputeInstanceV2Network,
    ComputeInstanceV2SchedulerHints,
)
from cdktf_cdktf_provider_openstack.compute_servergroup_v2 import ComputeServergroupV2
from cdktf_cdktf_provider_openstack.compute_volume_attach_v2 import ComputeVolumeAttachV2
from cdktf_cdktf_provider_openstack.dns_recordset_v2 import DnsRecordsetV2
from cdktf_cdktf_provider_openstack.dns_zone_v2 import DnsZoneV2
from cdktf_cdktf_provider_openstack.lb_listener_v2 import LbListenerV2
from cdktf_cdktf_provider_openstack.lb_loadbalancer_v2 import LbLoadbalancerV2
from cdktf_cdktf_provider_openstack.lb_members_v2 import LbMembersV2, LbMembersV2Member
from cdktf_cdktf_provider_openstack.lb_monitor_v2 import LbMonitorV2
from cdktf_cdktf_provider_openstack.lb_pool_v2 import LbPoolV2, LbPoolV2Persistence
from cdktf_cdktf_provider_openstack.networking_floatingip_v2 import NetworkingFloatingipV2
from cdktf_cdktf_provider_openstack.networking_port_v2 import NetworkingPortV2, NetworkingPortV2FixedIp
from cdktf_cdktf_provider_openstack.networking_secgroup_rule_v2 import NetworkingSecgroupRuleV2
from cdktf_cdktf_provider_openstack.networking_secgroup_v2 import NetworkingSecgroupV2
from cdktf_cdktf_provider_openstack.provider import OpenstackProvider
from cdktf_cdktf_provider_random.provider import RandomProvider
from cdktf_cdktf_provider_tls.private_key import PrivateKey
from cdktf_cdktf_provider_tls.provider import TlsProvider
from constructs import Construct

NAME = "mail"
ZONE = "cloud0.hc.mycompany.dom"
DOMAINS = ("domain01.dom", "domain02.dom")
NETWORK_ID = "6f1c1c3e-0000-4000-8000-00000000a001"
SUBNET_ID = "6f1c1c3e-0000-4000-8000-00000000a002"
VIP_SUBNET_ID = "6f1c1c3e-0000-4000-8000-00000000a003"
LB_CIDR = "10.20.0.0/24"
ADMIN_CIDR = "10.99.0.0/24"
IMAGE = "CentOS-7-x86_64-GenericCloud-2009"
# role -> (slug, subnet, flavor, listener ports, floating IP, DNS names of the VIP)
LAYERS = {
    "smtp_in": ("smtp-in", "6f1c1c3e-0000-4000-8000-00000000a011", "m1.medium", (25,), True, ("smtp-in",)),
    "smtp_out": ("smtp-out", "6f1c1c3e-0000-4000-8000-00000000a012", "m1.medium", (25, 587), False,
                 ("smtp-out", "mail")),
    "mailstore": ("mailstore", "6f1c1c3e-0000-4000-8000-00000000a013", "m1.large", (25, 110, 143, 993, 995, 4190),
                  False, ("smtp-delivery", "pop", "imap")),
    "webmail": ("webmail", "6f1c1c3e-0000-4000-8000-00000000a014", "m1.medium", (80, 443), True, ("webmail",)),
}
NFS_PORTS = (("tcp", 111), ("udp", 111), ("tcp", 662), ("udp", 662), ("tcp", 2049), ("udp", 2049),
             ("tcp", 20048), ("udp", 20048), ("tcp", 32803), ("udp", 32769))


def _rule(scope: Construct, id: str, sg: NetworkingSecgroupV2, port: int, protocol: str = "tcp", *,
          cidr: str | None = None, remote_group: NetworkingSecgroupV2 | None = None) -> None:
    NetworkingSecgroupRuleV2(scope, id, direction="ingress", ethertype="IPv4", protocol=protocol,
                             port_range_min=port, port_range_max=port, remote_ip_prefix=cidr,
                             remote_group_id=remote_group.id if remote_group else None,
                             security_group_id=sg.id, description=f"bare: {port}/{protocol}")


def _server(scope: Construct, suffix: str, name: str, role: str, subnet: str, flavor: str,
            sg: NetworkingSecgroupV2, group: ComputeServergroupV2 | None) -> tuple[NetworkingPortV2, ComputeInstanceV2]:
    port = NetworkingPortV2(scope, f"port{suffix}", name=name, network_id=NETWORK_ID, admin_state_up=True,
                            fixed_ip=[NetworkingPortV2FixedIp(subnet_id=subnet)], security_group_ids=[sg.id])
    server = ComputeInstanceV2(
        scope, f"server{suffix}", name=name, flavor_name=flavor, image_name=IMAGE, key_pair="mail-ops",
        metadata={"mailstrata_role": role, "mailstrata_stack": NAME},
        network=[ComputeInstanceV2Network(port=port.id)],
        scheduler_hints=[ComputeInstanceV2SchedulerHints(group=group.id)] if group else None,
        user_data=f"#cloud-config\nhostname: {name}\nfqdn: {name}.{ZONE}\nmanage_etc_hosts: true\n",
    )
    return port, server


def build(app: App, servers_per_layer: int = 2) -> TerraformStack:
    stack = TerraformStack(app, NAME)
    OpenstackProvider(stack, "openstack")
    TlsProvider(stack, "tls")
    RandomProvider(stack, "random")
    LocalBackend(stack, path=f"../../../state/{NAME}.tfstate")
    TerraformVariable(stack, "ad_bind_password", type="string", sensitive=True, nullable=False)
    TerraformVariable(stack, "webmail_db_password", type="string", sensitive=True, nullable=False)
    dkim = PrivateKey(stack, "dkim", algorithm="RSA", rsa_bits=2048)

    # The NFS server: its security group (SSH + the NFS ports from the mailstore group), volume, port, server.
    storage = Construct(stack, "storage")
    nfs_sg = NetworkingSecgroupV2(storage, "sg", name=f"{NAME}-nfs", description="bare: NFS server")
    volume = BlockstorageVolumeV3(storage, "volume", name=f"{NAME}-nfs-data", size=2000)
    nfs_port, nfs_server = _server(storage, "", f"{NAME}-nfs", "nfs_server", SUBNET_ID, "m1.medium", nfs_sg, None)
    ComputeVolumeAttachV2(storage, "attach", instance_id=nfs_server.id, volume_id=volume.id)
    _rule(storage, "rule-22-admin0", nfs_sg, 22, cidr=ADMIN_CIDR)

    addresses: dict[str, str] = {}
    for role, (slug, subnet, flavor, ports, fip, _names) in LAYERS.items():
        layer = Construct(stack, slug)
        sg = NetworkingSecgroupV2(layer, "sg", name=f"{NAME}-{slug}", description=f"bare: {slug} servers")
        group = ComputeServergroupV2(layer, "group", name=f"{NAME}-{slug}", policies=["anti-affinity"])
        _rule(layer, "rule-22-admin0", sg, 22, cidr=ADMIN_CIDR)
        for p in ports:
            _rule(layer, f"rule-{p}-lb0", sg, p, cidr=LB_CIDR)
        if role == "mailstore":
            for proto, p in NFS_PORTS:
                _rule(storage, f"rule-mailstore-{proto}{p}", nfs_sg, p, proto, remote_group=sg)
        members = []
        for i in range(1, servers_per_layer + 1):
            name = f"{NAME}-{slug}-{i:02d}"
            port, _ = _server(layer, f"-{i:02d}", name, role, subnet, flavor, sg, group)
            members.append((name, port))

        vip = Construct(stack, f"vip-{slug}")
        lb = LbLoadbalancerV2(vip, "lb", name=f"{NAME}-{slug}", vip_subnet_id=VIP_SUBNET_ID,
                              description=f"bare: {slug} VIP")
        addresses[role] = lb.vip_address
        if fip:
            ip = NetworkingFloatingipV2(vip, "fip", pool="public", port_id=lb.vip_port_id,
                                        description=f"bare: public address of {slug}")
            addresses[role] = ip.address
            TerraformOutput(stack, f"public_{role}", value=ip.address)
        TerraformOutput(stack, f"vip_{role}", value=lb.vip_address)
        for p in ports:
            listener = LbListenerV2(vip, f"listener-{p}", name=f"{NAME}-{slug}-{p}", loadbalancer_id=lb.id,
                                    protocol="TCP", protocol_port=p, allowed_cidrs=["10.0.0.0/8"],
                                    timeout_client_data=1860000, timeout_member_data=1860000,
                                    description=f"bare: {slug}/{p} listener")
            pool = LbPoolV2(vip, f"pool-{p}", name=f"{NAME}-{slug}-{p}", listener_id=listener.id, protocol="PROXY",
                            lb_method="LEAST_CONNECTIONS", persistence=LbPoolV2Persistence(type="SOURCE_IP"),
                            description=f"bare: {slug}/{p} pool")
            LbMonitorV2(vip, f"monitor-{p}", name=f"{NAME}-{slug}-{p}", pool_id=pool.id, type="TCP", delay=5,
                        timeout=4, max_retries=3, max_retries_down=3)
            LbMembersV2(vip, f"members-{p}-{slug}", pool_id=pool.id, member=[
                LbMembersV2Member(address=f"${{element({port.fqn}.all_fixed_ips, 0)}}", name=name,
                                  protocol_port=p, subnet_id=subnet)
                for name, port in members
            ])

    # DNS: the platform zone and one per mail domain; A records for the VIPs, DKIM TXT, MX/SPF/CNAME per domain.
    zone = DnsZoneV2(stack, "zone", name=f"{ZONE}.", email="hostmaster@domain01.dom", ttl=300,
                     description="bare: platform zone")
    zones = {d: DnsZoneV2(stack, f"zone-{d}", name=f"{d}.", email="hostmaster@domain01.dom", ttl=300,
                          description="bare: mail domain") for d in DOMAINS}
    records: list[dict[str, str]] = []

    def record(z: DnsZoneV2, name: str, type_: str, value: str) -> None:
        DnsRecordsetV2(stack, f"record-{type_}-{name}", zone_id=z.id, name=name, type=type_, records=[value], ttl=300)
        records.append({"name": name, "type": type_, "value": value})

    for role, (_slug, _s, _f, _p, _fip, names) in LAYERS.items():
        for n in names:
            record(zone, f"{n}.{ZONE}.", "A", addresses[role])
    dkim_name = f"mail2026._domainkey.{ZONE}."
    record(zone, dkim_name, "TXT", f'"v=DKIM1; k=rsa; p={dkim.public_key_pem}"')
    for d, z in zones.items():
        record(z, f"{d}.", "MX", f"10 smtp-in.{ZONE}.")
        record(z, f"{d}.", "TXT", '"v=spf1 mx ~all"')
        record(z, f"mail2026._domainkey.{d}.", "CNAME", dkim_name)
    TerraformOutput(stack, "mailbox_export", value=f"${{element({nfs_port.fqn}.all_fixed_ips, 0)}}:/NFSVOL")
    TerraformOutput(stack, "dns_records", value=records)
    return stack


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--servers-per-layer", type=int, default=2)
    ap.add_argument("--outdir", default=os.environ.get("CDKTF_OUTDIR", "cdktf.out.bare"))
    args = ap.parse_args()
    app = App(outdir=args.outdir, skip_validation=False)
    build(app, args.servers_per_layer)
    app.synth()


if __name__ == "__main__":
    main()
