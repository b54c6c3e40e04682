"""`MailLayer`: N identical servers for one role, their security group, server group and user-data."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, replace

from cdktf import DataResource, Fn, TerraformResourceLifecycle, TerraformStack, Token
from cdktf_cdktf_provider_openstack.blockstorage_volume_v3 import BlockstorageVolumeV3
from cdktf_cdktf_provider_openstack.compute_instance_v2 import (
    ComputeInstanceV2,
    ComputeInstanceV2Network,
    ComputeInstanceV2SchedulerHints,
)
from cdktf_cdktf_provider_openstack.compute_servergroup_v2 import ComputeServergroupV2
from cdktf_cdktf_provider_openstack.compute_volume_attach_v2 import ComputeVolumeAttachV2
from cdktf_cdktf_provider_openstack.networking_port_v2 import NetworkingPortV2, NetworkingPortV2FixedIp
from cdktf_cdktf_provider_openstack.networking_secgroup_rule_v2 import NetworkingSecgroupRuleV2
from cdktf_cdktf_provider_openstack.networking_secgroup_v2 import NetworkingSecgroupV2
from constructs import Construct

from mailstrata import defaults as D
from mailstrata.constructs import _validate as v
from mailstrata.constructs._names import logical_id, resource_type
from mailstrata.constructs._secgroup import allow_ssh_from_admins
from mailstrata.constructs._user_data import attach_user_data
from mailstrata.constructs._variables import declare_variables, drain_variable
from mailstrata.constructs.interfaces import Member, MemberGroup, StorageClient
from mailstrata.constructs.lbaas_vip import LbaasVip
from mailstrata.constructs.nfs_share import NfsShare
from mailstrata.errors import Problems
from mailstrata.policies.marker import format_marker
from mailstrata.roles import MAIL_LAYER_ROLES, QUEUEING_ROLES, Role
from mailstrata.types import Affinity
from mailstrata.userdata.context import LayerContext, NfsMount, Peer, Platform, Spool
from mailstrata.userdata.daemons.placement import PEER_PORTS

MAX_SERVERS = 500  # per layer, as the config allows
# What a deploy leaves alone on a running server (`lifecycle.ignore_changes`): the provider replaces the server
# when any of them changes (ForceNew in terraform-provider-openstack's compute_instance_v2), and a replacement
# is a rollout's job, one drained slot at a time. `flavor_name` would resize in place, which reboots the
# server undrained. The slot's revision (`revision-NN`) shows each of them changing in the plan.
ROLLOUT_ONLY = ("user_data", "image_name", "flavor_name", "key_pair")


@dataclass(frozen=True, kw_only=True)
class MailLayerProps:
    """N identical servers for `role`.

    `platform` holds what the templates need: build it with `mailstrata.compose.platform_context(directory=
    <your AdBinding>, ...)`; its `role`, `proxy_ports` and `nfs` are filled in by the layer from `role`, `vips`
    and `storage`. A Terraform variable the platform references (`var.ad_bind_password`) that the stack does
    not declare yet is declared by the layer. `lb_source_cidrs`: where the load balancers' amphorae connect to
    the members from: the CIDR of `subnet_id`, which every member names (`mailstrata.octavia`; the VIP
    subnet only for members that name no subnet). Default affinity: hard anti-affinity.
    """

    name_prefix: str
    role: Role
    platform: Platform
    network_id: str
    subnet_id: str
    lb_source_cidrs: tuple[str, ...]
    admin_cidrs: tuple[str, ...]
    count: int = D.LAYER_COUNT
    flavor: str = D.FLAVOR
    image: str = D.IMAGE
    key_pair: str | None = None
    affinity: Affinity = D.AFFINITY
    vips: tuple[LbaasVip, ...] = ()
    storage: NfsShare | None = None
    os: str = D.OS
    # Each server slot's spool volume in GB (the queueing roles only: smtp-in, smtp-out, mailstore); None: no
    # volume, and mail a replaced server had queued is lost with it.
    spool_gb: int | None = D.SPOOL_GB


@dataclass(frozen=True)
class Server:
    name: str
    fqdn: str
    address: str  # the port's fixed IP (a Terraform reference)
    port: NetworkingPortV2
    instance: ComputeInstanceV2
    revision: DataResource  # the slot's wanted revision: changes with its config, replaces nothing
    rollout: DataResource  # the revision the running server was built from: replaced by a rollout only
    spool: BlockstorageVolumeV3 | None = None


def validate(props: MailLayerProps, path: str) -> Problems:
    p = Problems()
    if props.role not in MAIL_LAYER_ROLES:
        p.add("props.role", f"must be the role of a mail layer, got Role.{props.role.name}; use one of "
                            f"{', '.join(f'Role.{r.name}' for r in MAIL_LAYER_ROLES)}")
        return p
    v.name_prefix(p, "props.name_prefix", props.name_prefix)
    v.at_least(p, f"{path}.count", props.count, 1)
    v.at_most(p, f"{path}.count", props.count, MAX_SERVERS)
    if props.spool_gb is not None:
        v.at_least(p, f"{path}.spool_gb", props.spool_gb, 1)
    for name in ("flavor", "image", "key_pair", "network_id", "subnet_id"):
        v.non_empty(p, f"props.{name}", getattr(props, name), optional=name == "key_pair")
    v.openstack_id(p, "props.network_id", props.network_id, "network")
    v.openstack_id(p, "props.subnet_id", props.subnet_id, "subnet")
    v.cidrs(p, f"{path}.lb_source_cidrs", props.lb_source_cidrs)
    v.cidrs(p, f"{path}.admin_cidrs", props.admin_cidrs)
    if not props.admin_cidrs:
        p.add(f"{path}.admin_cidrs", "must list at least one admin network for SSH")
    for c in props.admin_cidrs:
        if c in ("0.0.0.0/0", "::/0"):
            p.add(f"{path}.admin_cidrs", f"opens SSH to the whole Internet, got {c!r}; list your admin networks")
    for c in props.lb_source_cidrs:
        if c in ("0.0.0.0/0", "::/0"):
            p.add(f"{path}.lb_source_cidrs", f"must be the members' subnet (where the amphorae connect from), not the "
                                             f"whole Internet, got {c!r}")
    if props.role is Role.MAILSTORE and props.storage is None:
        p.add(f"{path}.storage", "a mailstore layer needs the NfsShare holding the mailboxes")
    for i, vip in enumerate(props.vips):
        if vip.props.role is not props.role:
            p.add(f"{path}.vips[{i}]", f"is the {vip.props.role.value} VIP, not this layer's ({props.role.value})")
    if props.storage is not None and props.role is not Role.MAILSTORE:
        p.add("props.storage", f"is only mounted by the mailstore layer, got the NfsShare for a {props.role.value} "
                               "layer; remove it")
    return p


def layer_context(props: MailLayerProps, nfs: NfsMount | None) -> LayerContext:
    """The context this layer's templates render from: the platform, with this layer's role, the PROXY ports
    its VIPs send to, and how it mounts the storage."""
    proxy = frozenset(p for vip in props.vips for p in vip.proxy_ports)
    return LayerContext(platform=props.platform, role=props.role, proxy_ports=proxy, nfs=nfs)


class MailLayer(Construct):
    """A server group of `count` servers for one role, registered in its VIPs' pools.

    Attributes: `servers` (name, fqdn, address, port, instance), `security_group`, `context`, `user_data`
    (the rendered layer, its Terraform local, whether it is gzipped and its size), `storage_client` (an
    `IStorageClient`, for `NfsShare.grant_mount`) and `member_group` (an `IMemberGroup`, for
    `LbaasVip.add_members`). The layer hands out these finished objects, never itself.
    """

    def __init__(self, scope: Construct, id: str, *, props: MailLayerProps) -> None:
        v.check_props(v.unique_id(Problems(), scope, id), props, MailLayerProps).raise_if_any()
        validate(props, f"layers.{props.role.value}").raise_if_any()
        super().__init__(scope, id)
        self.props = props
        role = props.role
        slug = role.slug
        prefix = f"{props.name_prefix}-{slug}"
        self.security_group = NetworkingSecgroupV2(
            self, "sg", name=prefix, description=format_marker(role, f"{slug} servers")
        )
        member_ports = sorted({port for vip in props.vips for port in vip.member_ports})
        for member_port in member_ports:
            for j, cidr in enumerate(props.lb_source_cidrs):
                # the amphorae's member-side ports: Neutron picks their addresses in the member subnet
                self.allow(member_port, cidr, f"from the load balancers' amphorae ({cidr})",
                           id_suffix=f"{member_port}-lb{j}")
        allow_ssh_from_admins(self, self.security_group.id, role, props.admin_cidrs)
        if role is Role.MAILSTORE:
            # one user, one mailstore: a mailstore proxies a user's sessions and deliveries to the user's home
            # server on these plain ports (daemons/placement.py), and probes its peers' LMTP port
            for service, peer_port in sorted(PEER_PORTS.items()):
                self.allow(peer_port, None, f"{service} from the other mailstores (per-user placement)",
                           id_suffix=f"{peer_port}-peers", remote_group_id=self.security_group.id)
        self.server_group = ComputeServergroupV2(self, "group", name=prefix, policies=[props.affinity.value])
        security_group_id, server_group_id = self.security_group.id, self.server_group.id  # one round trip each
        ports: list[tuple[str, NetworkingPortV2]] = []
        for i in range(1, props.count + 1):
            name = f"{prefix}-{i:02d}"
            port = NetworkingPortV2(
                self,
                f"port-{i:02d}",
                name=name,
                network_id=props.network_id,
                fixed_ip=[NetworkingPortV2FixedIp(subnet_id=props.subnet_id)],
                security_group_ids=[security_group_id],
                admin_state_up=True,
            )
            ports.append((name, port))
        self._addresses = self._port_addresses([port for _, port in ports])
        # Security group and ports are made: what storage needs from this layer is final.
        self.storage_client = StorageClient(client_id=id, role=role, security_group_id=self.security_group.id,
                                            addresses=tuple(self._addresses))
        nfs: NfsMount | None = props.storage.grant_mount(self.storage_client) if props.storage is not None else None
        spool = Spool(size_gb=props.spool_gb) if props.spool_gb is not None and role in QUEUEING_ROLES else None
        peers = tuple(Peer(name, address) for (name, _), address in zip(ports, self._addresses, strict=True))
        ctx = replace(layer_context(props, nfs), spool=spool, peers=peers)
        self.context: LayerContext = ctx  # what the templates saw; the local twin renders from it again
        self.user_data = attach_user_data(self, ctx, props.os, props.name_prefix, f"layers.{role.value}")
        declare_variables(self, self.user_data.rendered.body_text())
        drained = drain_variable(self)
        self.servers: list[Server] = []
        for (name, port), address in zip(ports, self._addresses, strict=True):
            slot = name.rsplit("-", 1)[1]
            volume = None
            head: tuple[str, ...] = ()
            if spool is not None:
                volume = BlockstorageVolumeV3(
                    self, f"spool-{slot}", name=f"{name}-spool", size=spool.size_gb,
                    description=format_marker(role, f"{name}'s mail queue, kept when the server is replaced"))
                # the reference as text, not a token: inside the user_data expression's string literal cdktf
                # would write a token as a bare reference, which Terraform reads as text
                volume_id = f"${{{resource_type(BlockstorageVolumeV3)}.{volume.friendly_unique_id}.id}}"
                # The slot's own head: the ID of its volume, for the setup script to find the disk by
                # (volume_names). bootcmd runs before the body's runcmd, at every boot; the body never uses it.
                head = ("bootcmd:",
                        f"  - [sh, -c, 'mkdir -p {posixpath.dirname(spool.id_file)} && echo {volume_id} > "
                        f"{spool.id_file}']")
            revision = DataResource(self, f"revision-{slot}", input={
                "user_data_sha256": self.user_data.sha256_expression(name, head),
                "image_name": props.image,
                "flavor_name": props.flavor,
                "key_pair": props.key_pair or "",
            })
            # Set when the slot's server is created, and kept (ignore_changes) until a rollout replaces it
            # (`terraform apply -replace=<this>`), which replaces the server through replace_triggered_by.
            rollout = DataResource(self, f"rollout-{slot}", input={"revision": revision.output},
                                   lifecycle=TerraformResourceLifecycle(ignore_changes=["input"]))
            instance = ComputeInstanceV2(
                self,
                f"server-{slot}",
                name=name,
                image_name=props.image,
                flavor_name=props.flavor,
                key_pair=props.key_pair,
                network=[ComputeInstanceV2Network(port=port.id)],
                scheduler_hints=[ComputeInstanceV2SchedulerHints(group=server_group_id)],
                user_data=self.user_data.expression(name, head),
                # Nova stops the server (an ACPI shutdown: the daemons stop in order, Postfix finishes its queue
                # writes) before deleting it, so a replacement leaves the spool volume consistent
                stop_before_destroy=True,
                metadata={"mailstrata_role": role.value, "mailstrata_stack": props.name_prefix,
                          # read by the server (the mailstores' placement agent) while a rollout drains it
                          "mailstrata_drain": f'${{contains({drained}, "{name}") ? "true" : "false"}}'},
                lifecycle=TerraformResourceLifecycle(ignore_changes=list(ROLLOUT_ONLY)),
            )
            # A bare reference: cdktf 0.20 writes a resource given here as "${terraform_data.x}", which Terraform
            # refuses in JSON syntax ("Invalid character"; tests/terraform/test_rollout_plan.py).
            instance.add_override("lifecycle.replace_triggered_by", [f"terraform_data.{rollout.friendly_unique_id}"])
            if volume is not None:
                # Attached after the server is created: replacing the server (destroy, then create on the same
                # port) detaches the volume from the old one and attaches it to the new one.
                ComputeVolumeAttachV2(self, f"spool-attach-{slot}", instance_id=instance.id, volume_id=volume.id)
            self.servers.append(Server(name, f"{name}.{props.platform.dns_zone}", address, port, instance,
                                       revision, rollout, volume))
        # Every server is made: what a VIP needs from this layer is final.
        self.member_group = MemberGroup(group_id=id, role=role, subnet_id=props.subnet_id,
                                        members=tuple(Member(name=s.name, address=s.address) for s in self.servers))
        for vip in props.vips:
            vip.add_members(self.member_group)

    def _port_addresses(self, ports: list[NetworkingPortV2]) -> list[str]:
        """Each port's first fixed IP, `${element(<port>.all_fixed_ips, 0)}`: the text cdktf writes for
        `Token.as_string(Fn.element(port.all_fixed_ips, 0))`, built here from the ports' logical ids instead of
        three round trips to cdktf per port (issue 8). Tokens where plain text could differ: when the stack names
        elements its own way (checked on the first port), or when a VIP or the storage that use the addresses is
        in another stack (cdktf turns a token into a cross-stack output; plain text it would leave as is)."""
        def tokens() -> list[str]:
            return [Token.as_string(Fn.element(port.all_fixed_ips, 0)) for port in ports]

        if not ports:
            return []
        stack = TerraformStack.of(self)
        users = [*self.props.vips, *([self.props.storage] if self.props.storage is not None else [])]
        if any(TerraformStack.of(user) is not stack for user in users):
            return tokens()
        below_stack = self.node.path.split("/")[len(stack.node.path.split("/")):]
        lids = [logical_id(*below_stack, f"port-{i:02d}") for i in range(1, len(ports) + 1)]
        if lids[0] != ports[0].friendly_unique_id:
            return tokens()
        rtype = resource_type(NetworkingPortV2)
        return [f"${{element({rtype}.{lid}.all_fixed_ips, 0)}}" for lid in lids]

    def allow(self, port: int, cidr: str | None, why: str, *, id_suffix: str,
              remote_group_id: str | None = None, protocol: str = "tcp") -> NetworkingSecgroupRuleV2:
        """Open `port` on this layer's servers to `cidr` (or to another security group)."""
        p = Problems()
        if not isinstance(port, int) or isinstance(port, bool):
            p.add("allow.port", f"must be a whole number (int), got {v.describe(port)}; write e.g. 25")
        else:
            v.network_port(p, "allow.port", port)
        if (cidr is None) == (remote_group_id is None):
            p.add("allow.cidr", "give exactly one of cidr and remote_group_id, got "
                                f"{'both' if cidr is not None else 'neither'}")
        elif cidr is not None:
            v.cidr(p, "allow.cidr", cidr)
        if protocol not in ("tcp", "udp"):
            p.add("allow.protocol", f"must be 'tcp' or 'udp', got {v.describe(protocol)}")
        if self.node.try_find_child(f"rule-{id_suffix}") is not None:
            p.add("allow.id_suffix", f"is already used by a rule of this layer, got {id_suffix!r}; give each rule its "
                                     "own suffix")
        p.raise_if_any()
        return NetworkingSecgroupRuleV2(
            self,
            f"rule-{id_suffix}",
            security_group_id=self.security_group.id,
            direction="ingress",
            ethertype="IPv4",
            protocol=protocol,
            port_range_min=port,
            port_range_max=port,
            remote_ip_prefix=cidr,
            remote_group_id=remote_group_id,
            description=format_marker(self.props.role, why, port=port),
        )

    @property
    def addresses(self) -> list[str]:
        return list(self._addresses)
