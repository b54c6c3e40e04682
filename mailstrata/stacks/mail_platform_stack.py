"""`MailPlatformStack`: the whole platform from one `PlatformConfig`.

It owns the provider, the backend and every choice that depends on the environment; the constructs
below it never read YAML or the environment.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cdktf import (
    Fn,
    LocalBackend,
    Postcondition,
    S3Backend,
    TerraformLocal,
    TerraformOutput,
    TerraformResourceLifecycle,
    TerraformStack,
    TerraformVariable,
)
from cdktf_cdktf_provider_openstack.data_openstack_networking_port_v2 import DataOpenstackNetworkingPortV2
from cdktf_cdktf_provider_openstack.data_openstack_networking_router_v2 import DataOpenstackNetworkingRouterV2
from cdktf_cdktf_provider_openstack.data_openstack_networking_subnet_v2 import DataOpenstackNetworkingSubnetV2
from cdktf_cdktf_provider_openstack.dns_recordset_v2 import DnsRecordsetV2
from cdktf_cdktf_provider_openstack.dns_zone_v2 import DnsZoneV2
from cdktf_cdktf_provider_openstack.provider import OpenstackProvider
from cdktf_cdktf_provider_random.password import Password
from cdktf_cdktf_provider_random.provider import RandomProvider
from cdktf_cdktf_provider_tls.private_key import PrivateKey
from cdktf_cdktf_provider_tls.provider import TlsProvider
from constructs import Construct

from mailstrata.config.model import BackendType, PlatformConfig
from mailstrata.constructs._names import names_of, refuse_name_collisions, resource_type
from mailstrata.constructs._validate import describe
from mailstrata.constructs.ad_binding import AdBinding, AdBindingProps
from mailstrata.constructs.lbaas_vip import FloatingIpProps, LbaasVip, LbaasVipProps, ListenerProps, MonitorProps
from mailstrata.constructs.mail_layer import MailLayer, MailLayerProps
from mailstrata.constructs.nfs_share import CinderServerProps, NfsShare, NfsShareProps
from mailstrata.contract import DEFAULT_LISTENERS, RELAY, ListenerDefault
from mailstrata.directory import AttributeMap
from mailstrata.dns import TXT_STRING_MAX, VIP_NAMES, Egress, MailDns, Ptr, Record, egress_of, ptr_records, records
from mailstrata.errors import ConfigError, Problem
from mailstrata.mta_sts import MtaStsSettings, policy_id
from mailstrata.octavia import amphora_source_subnets
from mailstrata.roles import Role
from mailstrata.types import ListenerProtocol, Persistence, StorageMode
from mailstrata.userdata.context import Platform
from mailstrata.userdata.from_config import DKIM_KEY_ID, WEBMAIL_DB_PASSWORD_ID, platform_context

__all__ = ["VIP_NAMES", "MailPlatformStack", "PublishedName"]

PublishedName = Record  # the name this module gave `mailstrata.dns.Record` first

# Logical ids of the egress look-up (data sources), fixed: the expressions below name them.
EGRESS_SUBNET_ID = "egress_subnet"
EGRESS_PORT_ID = "egress_router_port"
EGRESS_ROUTER_ID = "egress_router"
EGRESS_LOCAL = "smtp_out_egress"


def _check_arguments(id: str, config: object) -> None:
    """Refuse a config that is not a loaded one, or a stack id other than its name, before anything is added."""
    if not isinstance(config, PlatformConfig):
        raise ConfigError([Problem("config", f"must be a PlatformConfig, got {describe(config)}; load one with "
                                             "mailstrata.config.load_config('prod.yaml')")])
    if id != config.name:
        # The name is in the state file's path and every resource's name: a stack called otherwise would
        # share them with the config's own stack.
        raise ConfigError([Problem("id", f"must be the config's name {config.name!r}, which names the state file and "
                                         f"every resource, got {id!r}; use MailPlatformStack(app, config.name, "
                                         "config=config), or change the config's name")])


class MailPlatformStack(TerraformStack):
    """Every layer, VIP, the storage, the directory binding, DNS and outputs of one platform.

    Attributes: `config`, `directory` (AdBinding), `vips` and `layers` (by role), `storage` (NfsShare),
    `dkim_key` (the platform's one DKIM key, a tls PrivateKey), `published` (the DNS records to publish,
    `mailstrata.dns.records`), `ptrs` (the reverse records the cloud or operator must set).
    """

    def __init__(self, scope: Construct, id: str, *, config: PlatformConfig) -> None:
        _check_arguments(id, config)
        super().__init__(scope, id)
        self.config = cfg = config
        # Every element this stack adds at its top level, or under an id of its choosing, is claimed here as it
        # is made: `refuse_name_collisions` checks them without asking cdktf about each construct (`_names.py`).
        self._names = names_of(self)
        OpenstackProvider(self, "openstack", cloud=cfg.cloud, region=cfg.region)
        TlsProvider(self, "tls")
        RandomProvider(self, "random")
        self._backend()

        a = cfg.directory.attributes
        self.directory = AdBinding(self, "directory", props=AdBindingProps(
            urls=cfg.directory.urls,
            base_dn=cfg.directory.base_dn,
            bind_dn=cfg.directory.bind_dn,
            domains=cfg.domains,
            tls=cfg.directory.tls,
            ca_cert_pem=cfg.directory_settings(bind_password="").ca_cert_pem,
            attributes=AttributeMap(login=a.login, mail=a.mail, quota=a.quota, person_class=a.person_class,
                                    group_class=a.group_class, member=a.member),
            password_variable=cfg.directory.bind_password.variable,
        ))

        layer_cfgs = dict(cfg.layers.items())
        self.vips: dict[Role, LbaasVip] = {
            role: LbaasVip(self, f"vip-{role.slug}", props=LbaasVipProps(
                name=f"{cfg.name}-{role.slug}",
                role=role,
                vip_subnet_id=cfg.network.vip_subnet_id,
                listeners=self._listeners(role),
                floating_ip=FloatingIpProps(external_network=cfg.network.external_network)
                if role.value in cfg.floating_ips else None,
            ))
            for role in layer_cfgs
        }
        platform = self._platform_context()
        self.storage = NfsShare(self, "storage", props=NfsShareProps(
            name_prefix=cfg.name,
            mode=cfg.storage.mode,
            size_gb=cfg.storage.size_gb,
            share_network_id=cfg.storage.share_network_id,
            share_type=cfg.storage.share_type,
            export=cfg.storage.export,
            server_cidrs=cfg.storage.server_cidrs,
            server=CinderServerProps(
                platform=platform,
                network_id=cfg.network.network_id,
                subnet_id=cfg.network.subnet_id,
                admin_cidrs=cfg.network.admin_cidrs,
                flavor=cfg.storage.flavor,
                image=cfg.storage.image or layer_cfgs[Role.MAILSTORE].image,
                key_pair=layer_cfgs[Role.MAILSTORE].key_pair,
                volume_type=cfg.storage.volume_type,
                os=cfg.os.value,
            ) if cfg.storage.mode is StorageMode.CINDER_SERVER else None,
        ))
        self.layers: dict[Role, MailLayer] = {}
        for role, lc in layer_cfgs.items():
            layer_platform = platform
            if role is Role.MAILSTORE and Role.SMTP_OUT in self.layers:  # SMTP_OUT comes first (MAIL_LAYER_ROLES)
                layer_platform = replace(platform, relays=tuple(self.layers[Role.SMTP_OUT].addresses))
            self.layers[role] = MailLayer(self, role.slug, props=MailLayerProps(
                name_prefix=cfg.name,
                role=role,
                platform=layer_platform,
                network_id=lc.network_id or cfg.network.network_id,
                subnet_id=lc.subnet_id or cfg.network.subnet_id,
                # The layer's members name its subnet (LbaasVip.add_members): the amphorae reach them from
                # their own ports on that subnet, not from the VIP subnet (mailstrata.octavia).
                lb_source_cidrs=amphora_source_subnets(member_subnets=(lc.subnet_cidr or cfg.network.subnet_cidr,),
                                                       vip_subnets=(cfg.network.vip_subnet_cidr,)),
                admin_cidrs=cfg.network.admin_cidrs,
                count=lc.count,
                flavor=lc.flavor,
                image=lc.image,
                key_pair=lc.key_pair,
                spool_gb=lc.spool_gb,
                affinity=lc.affinity,
                vips=(self.vips[role],),
                storage=self.storage if role is Role.MAILSTORE else None,
                os=cfg.os.value,
            ))
        self._internal_relay()
        self.published = self._published()
        if cfg.dns.designate:
            self._designate()
        self._outputs()
        refuse_name_collisions(self)  # two constructs on one Terraform address would silently merge

    # ---- pieces ----------------------------------------------------------------------------------

    def _backend(self) -> None:
        b = self.config.backend
        if b.type is BackendType.S3:
            S3Backend(
                self,
                bucket=b.bucket or "",
                key=b.key or f"mailstrata/{self.config.name}.tfstate",
                region=b.region,
                endpoints={"s3": b.endpoint},
                use_path_style=True,  # Ceph RGW and Swift s3api serve buckets by path
                skip_credentials_validation=True,  # credentials are not AWS IAM ones
                skip_region_validation=True,
                skip_requesting_account_id=True,
                skip_metadata_api_check=True,
                skip_s3_checksum=True,
            )
        else:
            # Terraform runs in <outdir>/stacks/<name>/, and every synth rewrites <outdir>: the state lives
            # beside <outdir> instead (state/<name>.tfstate in the project folder for the default cdktf.out).
            # Relative to the stack's folder, so the JSON is the same from any checkout and any outdir.
            LocalBackend(self, path=f"../../../{self.config.state_path}")

    def _internal_relay(self) -> None:
        """SMTP-out's internal relay port, open to the mailstores' security group and nothing else: the one
        place where an address (the mailstore's own, no LB in between) lets mail relay without AUTH."""
        out, store = self.layers.get(Role.SMTP_OUT), self.layers.get(Role.MAILSTORE)
        if out is not None and store is not None:
            out.allow(RELAY, None, "internal relay: the mailstores' bounces and sieve mail",
                      id_suffix=f"{RELAY}-mailstores", remote_group_id=store.security_group.id)

    def _server_cidrs(self) -> tuple[str, ...]:
        net = self.config.network
        return tuple(sorted({lc.subnet_cidr or net.subnet_cidr for _, lc in self.config.layers.items()}))

    def _listeners(self, role: Role) -> tuple[ListenerProps, ...]:
        net = self.config.network
        audiences = {"internet": (), "clients": net.client_cidrs, "platform": self._server_cidrs(),
                     **{r.value: (lc.subnet_cidr or net.subnet_cidr,) for r, lc in self.config.layers.items()}}
        overrides = {o.port: o for o in self.config.listeners if o.layer == role.value}
        defaults: dict[int, ListenerDefault] = {d.port: d for d in DEFAULT_LISTENERS[role]}
        out = []
        for port in sorted({*defaults, *overrides}):
            d = defaults.get(port) or ListenerDefault(port=port, service=f"port {port}")
            o = overrides.get(port)
            allowed: tuple[str, ...] = tuple(sorted({c for a in d.audience for c in audiences.get(a, ())}))
            if "internet" in d.audience:
                allowed = ()
            persistence = d.persistence
            if o is not None and o.source_ip_persistence is not None:
                persistence = Persistence.SOURCE_IP if o.source_ip_persistence else None
            out.append(ListenerProps(
                port=port,
                service=d.service,
                protocol=(o.protocol if o and o.protocol else d.protocol),
                pool_protocol=(o.pool_protocol if o and o.pool_protocol else d.pool_protocol),
                algorithm=(o.algorithm if o and o.algorithm else d.algorithm),
                persistence=persistence,
                timeout_client_data_ms=(o.timeout_client_data_ms if o and o.timeout_client_data_ms else d.timeout_ms),
                timeout_member_data_ms=(o.timeout_member_data_ms if o and o.timeout_member_data_ms else d.timeout_ms),
                allowed_cidrs=(o.allowed_cidrs if o and o.allowed_cidrs is not None else allowed),
                tls_container_ref=o.tls_container_ref if o else None,
                member_port=443 if (o and o.protocol is ListenerProtocol.TERMINATED_HTTPS) else None,
                monitor=MonitorProps(type=d.monitor, url_path=d.monitor_path),
            ))
        return tuple(out)

    def _platform_context(self) -> Platform:
        cfg = self.config
        # A key per domain put 2.2 KB of incompressible PEM per domain into smtp-out's user-data: 30 domains
        # went over Nova's limit. One key signs for every domain (`from_config.platform_context`).
        self.dkim_key = PrivateKey(self, "dkim", algorithm="RSA", rsa_bits=2048)
        self.dkim_key.override_logical_id(DKIM_KEY_ID)
        self._names.claim(resource_type(PrivateKey), "dkim", logical=DKIM_KEY_ID)
        if cfg.layers.webmail is not None:
            w = cfg.webmail
            if w.database_password is not None:
                var = TerraformVariable(self, w.database_password.variable, type="string", sensitive=True,
                                        nullable=False, description=f"Password of the sogo user on {w.database_host}")
                var.override_logical_id(w.database_password.variable)
                self._names.claim("var", w.database_password.variable, logical=w.database_password.variable)
            else:
                # Local database: Terraform makes the password; letters and digits only, because SOGo's
                # database URLs and the setup script carry it unquoted.
                db = Password(self, "webmail-db-password", length=32, special=False)
                db.override_logical_id(WEBMAIL_DB_PASSWORD_ID)
                self._names.claim(resource_type(Password), "webmail-db-password", logical=WEBMAIL_DB_PASSWORD_ID)
        if cfg.tls.certificate is not None and cfg.tls.private_key is not None:
            for ref in (cfg.tls.certificate, cfg.tls.private_key):
                var = TerraformVariable(self, ref.variable, type="string", sensitive=True, nullable=False,
                                        description="PEM for the platform's TLS endpoints")
                var.override_logical_id(ref.variable)
                self._names.claim("var", ref.variable, logical=ref.variable)
        return platform_context(cfg, vips={r: v.vip_address for r, v in self.vips.items()},
                                directory=self.directory.settings)

    def _published(self) -> list[Record]:
        cfg = self.config
        mail_dns = MailDns(
            zone=cfg.dns.zone,
            domains=cfg.domains,
            vip_addresses={role: vip.floating_ip_address or vip.vip_address for role, vip in self.vips.items()},
            dkim_selector=cfg.mail.dkim_selector,
            dkim_txt=self._dkim_txt(),
            helo_names=tuple(server.fqdn for server in self.layers[Role.SMTP_OUT].servers),
            egress=self._egress(),
            spf=cfg.dns.spf,
            dmarc_policy=cfg.dns.dmarc_policy,
            dmarc_reports=cfg.dns.dmarc_reports,
            tls_reports=cfg.dns.tls_reports,
            mta_sts_id=self._mta_sts_id(),
        )
        self.ptrs: list[Ptr] = ptr_records(mail_dns)
        return records(mail_dns)

    def _mta_sts_id(self) -> str | None:
        """The `_mta-sts` TXT id: derived from the policy text the webmail layer serves (`mailstrata.mta_sts`),
        so it changes exactly when the policy does. None without a webmail layer: nothing serves a policy."""
        cfg = self.config
        if cfg.layers.webmail is None:
            return None
        # The same settings `userdata.from_config` hands webmail's nginx, so the id is that of the served text.
        settings = MtaStsSettings(mode=cfg.mail.mta_sts.mode, max_age=cfg.mail.mta_sts.max_age)
        return policy_id(settings.policy(cfg.dns.zone))

    def _egress(self) -> tuple[Egress, ...]:
        """The addresses smtp-out's mail leaves from: `dns.egress_addresses`, else looked up at plan time.

        smtp-out's servers have no floating IP (`floating_ips` offers the smtp_in and webmail VIPs only, and a
        VIP's floating IP carries inbound connections): their mail leaves through the router of their subnet,
        from its SNAT address. Found as Neutron knows it: the subnet's gateway address is a port of that
        router, whose external fixed IPs are the SNAT addresses. IPv4 only: Neutron does not NAT IPv6."""
        cfg = self.config
        if cfg.dns.egress_addresses:
            return egress_of(cfg.dns.egress_addresses)
        lc = cfg.layers.smtp_out
        subnet = DataOpenstackNetworkingSubnetV2(self, "egress-subnet",
                                                 subnet_id=lc.subnet_id or cfg.network.subnet_id)
        subnet.override_logical_id(EGRESS_SUBNET_ID)
        self._names.claim("data." + resource_type(DataOpenstackNetworkingSubnetV2), "egress-subnet",
                          logical=EGRESS_SUBNET_ID)
        port = DataOpenstackNetworkingPortV2(self, "egress-router-port", network_id=subnet.network_id,
                                             fixed_ip=subnet.gateway_ip)
        port.override_logical_id(EGRESS_PORT_ID)
        self._names.claim("data." + resource_type(DataOpenstackNetworkingPortV2), "egress-router-port",
                          logical=EGRESS_PORT_ID)
        v4 = '[for ip in self.external_fixed_ip : ip.ip_address if !strcontains(ip.ip_address, ":")]'
        router = DataOpenstackNetworkingRouterV2(
            self, "egress-router", router_id=port.device_id,
            lifecycle=TerraformResourceLifecycle(postcondition=[Postcondition(
                condition="${self.enable_snat && length(" + v4 + ") > 0}",
                error_message="dns.egress_addresses: smtp-out's mail leaves through the router of its subnet, but "
                              "that router has no IPv4 SNAT address to publish in SPF; set dns.egress_addresses to "
                              "the public addresses smtp-out's servers send from.",
            )]),
        )
        router.override_logical_id(EGRESS_ROUTER_ID)
        self._names.claim("data." + resource_type(DataOpenstackNetworkingRouterV2), "egress-router",
                          logical=EGRESS_ROUTER_ID)
        # A local, so the records carry a plain reference (`${local.smtp_out_egress}`): the expression's own
        # quotes would otherwise be escaped with the TXT text around them.
        rtype = resource_type(DataOpenstackNetworkingRouterV2)
        egress = TerraformLocal(self, EGRESS_LOCAL, "${" + v4.replace("self.", f"data.{rtype}.{EGRESS_ROUTER_ID}.")
                                + "[0]}")
        egress.override_logical_id(EGRESS_LOCAL)
        self._names.claim("local", EGRESS_LOCAL, logical=EGRESS_LOCAL)
        return (Egress(address="${local." + EGRESS_LOCAL + "}", version=4),)

    def _dkim_txt(self) -> str:
        """`"v=DKIM1; k=rsa; p=<first part>" "<rest>"`: the base64 body of the public key, in strings of at
        most `TXT_STRING_MAX` (253) characters (Designate refuses a string that is longer with its quotes, BIND
        one over 255). An RSA 2048 body is always 392 characters, so the split points are fixed."""
        pem = self.dkim_key.public_key_pem
        body = Fn.replace(Fn.replace(Fn.replace(pem, "-----BEGIN PUBLIC KEY-----", ""),
                                     "-----END PUBLIC KEY-----", ""), "\n", "")
        head = "v=DKIM1; k=rsa; p="
        first = TXT_STRING_MAX - len(head)
        return f'"{head}{Fn.substr(body, 0, first)}" "{Fn.substr(body, first, -1)}"'

    def _designate(self) -> None:
        dns = self.config.dns
        zone = DnsZoneV2(self, "zone", name=f"{dns.zone}.", email=dns.email, ttl=dns.ttl,
                         description="mailstrata: the platform's host names")
        self._names.claim(resource_type(DnsZoneV2), "zone")
        zones = {f"{dns.zone}.": zone}
        if dns.mail_domain_zones:
            for domain in self.config.domains:
                zones[f"{domain}."] = DnsZoneV2(self, f"zone-{domain}", name=f"{domain}.", email=dns.email,
                                                ttl=dns.ttl, description="mailstrata: mail domain")
                self._names.claim(resource_type(DnsZoneV2), f"zone-{domain}")
        by_name: dict[tuple[str, str], list[str]] = {}
        for rec in self.published:
            by_name.setdefault((rec.name, rec.type), []).append(rec.value)
        for (name, rtype), values in sorted(by_name.items()):
            zone_name = next((z for z in sorted(zones, key=len, reverse=True) if name.endswith(z)), None)
            if zone_name is None:
                continue
            record_id = f"record-{rtype}-{name.rstrip('.')}"
            DnsRecordsetV2(self, record_id, zone_id=zones[zone_name].id, name=name, type=rtype, records=values,
                           ttl=dns.ttl)
            self._names.claim(resource_type(DnsRecordsetV2), record_id)

    def _outputs(self) -> None:
        def output(output_id: str, **kwargs: Any) -> None:
            TerraformOutput(self, output_id, **kwargs)
            self._names.claim("output", output_id)

        for role, vip in self.vips.items():
            output(f"vip_{role.value}", value=vip.vip_address,
                   description=f"VIP address of the {role.slug} load balancer")
            if vip.floating_ip_address is not None:
                output(f"public_{role.value}", value=vip.floating_ip_address,
                       description=f"Floating IP of the {role.slug} VIP")
        output("mailbox_export", value=self.storage.export_location, description="NFS export holding the mailboxes")
        output("dns_records", description="Records to publish: created in Designate when dns.designate (the mail "
                                          "domains' only with dns.mail_domain_zones); add the rest to the zones "
                                          "that hold them",
               value=[{"name": r.name, "type": r.type, "value": r.value} for r in self.published])
        output("ptr_records", description="Reverse DNS the cloud or the operator must set: each address smtp-out "
                                          "sends from, and the name its PTR must give (Designate's floating IP "
                                          "PTR, or the address's owner)",
               value=[{"address": p.address, "name": p.name} for p in self.ptrs])
