"""The platform config: YAML loads into these typed models; every default lives here, once.

Field docs are the config reference (the JSON Schema and README are generated from them).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from mailstrata.directory import AttributeMap, DirectorySettings, LdapTls
from mailstrata.roles import MAIL_LAYER_ROLES, Role
from mailstrata.types import Affinity, Algorithm, ListenerProtocol, PoolProtocol, StorageMode
from mailstrata.userdata.context import FtsBackend, OverQuota, TlsSource

# ---- small reusable validators (messages name the value and the fix) ---------------------------------

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}[a-z0-9]$")
_DN_PART = re.compile(r"^[A-Za-z][A-Za-z0-9-]*=[^,=]+$")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_SELECTOR = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_VARIABLE = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")


def _cidr(value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"must be a CIDR such as 10.0.0.0/24, got {value!r}") from None
        raise ValueError(
            f"has host bits set, got {value!r}; use {ipaddress.ip_network(value, strict=False)}"
        ) from None
    return str(net)


def _domain(value: str) -> str:
    if not _DOMAIN.match(value):
        raise ValueError(f"must be a lower-case DNS domain such as domain01.dom, got {value!r}")
    return value


def _dn(value: str) -> str:
    parts = [p.strip() for p in value.split(",")]
    if not value or not all(_DN_PART.match(p) for p in parts):
        raise ValueError(f"must be an LDAP DN such as dc=domain01,dc=dom, got {value!r}")
    return ",".join(parts)


def _ldap_url(value: str) -> str:
    if not re.match(r"^ldaps?://[A-Za-z0-9.-]+(:\d{1,5})?/?$", value):
        raise ValueError(f"must be an LDAP URL such as ldaps://dc1.domain01.dom:636, got {value!r}")
    return value.rstrip("/")


Cidr = Annotated[str, AfterValidator(_cidr)]
Domain = Annotated[str, AfterValidator(_domain)]
Dn = Annotated[str, AfterValidator(_dn)]
LdapUrl = Annotated[str, AfterValidator(_ldap_url)]
Port = Annotated[int, Field(ge=1, le=65535)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False, validate_default=True)


# ---- secrets ----------------------------------------------------------------------------------------


class SecretRef(_Model):
    """A secret is never written in the config: name the sensitive Terraform variable that carries it."""

    variable: Annotated[str, Field(pattern=_VARIABLE.pattern)] = Field(
        description="Name of a sensitive Terraform variable (set it with TF_VAR_<name> at plan/apply time)."
    )


def _secret_ref(value: object) -> object:
    if isinstance(value, str):
        raise ValueError(
            "is a literal secret; secrets never go in the config. Use {variable: <name>} and set "
            "TF_VAR_<name> when you run cdktf deploy"
        )
    return value


Secret = Annotated[SecretRef, BeforeValidator(_secret_ref)]


# ---- sections ---------------------------------------------------------------------------------------


class BackendType(StrEnum):
    LOCAL = "local"
    S3 = "s3"


class Backend(_Model):
    """Where Terraform keeps state. Default: a local file next to the synthesized stack."""

    type: BackendType = BackendType.LOCAL
    path: str | None = Field(default=None, description="local: state file (relative). Default: terraform.<name>.tfstate")
    bucket: str | None = Field(default=None, description="s3: bucket (Ceph RGW or Swift s3api work).")
    key: str | None = Field(default=None, description="s3: object key. Default: mailstrata/<name>.tfstate")
    endpoint: str | None = Field(default=None, description="s3: endpoint URL of the S3-compatible store.")
    region: str = Field(default="us-east-1", description="s3: region name the store expects.")

    @model_validator(mode="after")
    def _check(self) -> Backend:
        if self.type is BackendType.S3:
            missing = [k for k in ("bucket", "endpoint") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"an s3 backend needs {' and '.join(missing)}; add backend.{missing[0]}")
        if self.path is not None and self.path.startswith("/"):
            raise ValueError(f"path must be relative so synth output is the same everywhere, got {self.path!r}")
        return self


class Network(_Model):
    """Existing networks the platform plugs into (the platform creates no networks or routers)."""

    network_id: str = Field(description="Neutron network of the servers.")
    subnet_id: str = Field(description="Neutron subnet of the servers.")
    subnet_cidr: Cidr = Field(description="CIDR of subnet_id (security rules and mynetworks need it offline).")
    vip_subnet_id: str = Field(description="Subnet the load balancers' VIPs are allocated on.")
    vip_subnet_cidr: Cidr = Field(description="CIDR of vip_subnet_id: where LB traffic to the members comes from.")
    external_network: str = Field(default="public", description="Floating-IP pool for Internet-facing VIPs.")
    admin_cidrs: tuple[Cidr, ...] = Field(min_length=1, description="The only sources allowed to SSH to servers.")
    client_cidrs: tuple[Cidr, ...] = Field(
        default=("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"),
        description="Corporate clients allowed on IMAP, POP3, ManageSieve and submission.",
    )


class AttributeMapping(_Model):
    login: str = "sAMAccountName"
    mail: str = "mail"
    quota: str = Field(default="info", description="Attribute holding the mailbox quota in bytes.")
    person_class: str = "person"
    group_class: str = "group"
    member: str = "member"


class Directory(_Model):
    """The existing Active Directory (or LDAP / Samba 4 AD) every layer authenticates against."""

    urls: tuple[LdapUrl, ...] = Field(min_length=1)
    tls: LdapTls = Field(default=LdapTls.LDAPS, description="plain, starttls or ldaps.")
    ca_cert_file: str | None = Field(default=None, description="PEM CA certificate of the directory (path).")
    base_dn: Dn
    bind_dn: Dn
    bind_password: Secret = Field(
        default=SecretRef(variable="ad_bind_password"),
        description="Sensitive Terraform variable holding the bind password.",
    )
    attributes: AttributeMapping = AttributeMapping()

    @model_validator(mode="after")
    def _tls_matches_urls(self) -> Directory:
        for u in self.urls:
            if self.tls is LdapTls.LDAPS and not u.startswith("ldaps://"):
                raise ValueError(f"__path__:urls:tls is ldaps but {u!r} is not an ldaps:// URL; use ldaps:// or tls: starttls")
            if self.tls is not LdapTls.LDAPS and u.startswith("ldaps://"):
                raise ValueError(f"__path__:urls:{u!r} is an ldaps:// URL but tls is {self.tls.value}; set tls: ldaps")
        return self


class Layer(_Model):
    """One group of identical servers for one role."""

    count: int = Field(default=2, ge=1, le=500)
    flavor: str = "m1.medium"
    image: str = "CentOS-7-x86_64-GenericCloud-2009"
    key_pair: str | None = Field(default=None, description="Nova key pair for SSH. Default: none.")
    affinity: Affinity = Affinity.ANTI_AFFINITY
    network_id: str | None = Field(default=None, description="Default: network.network_id")
    subnet_id: str | None = Field(default=None, description="Default: network.subnet_id")
    subnet_cidr: Cidr | None = Field(default=None, description="Default: network.subnet_cidr")


class ListenerOverride(_Model):
    """Change one listener of a layer's VIP, or add one. Unset fields keep the platform's default."""

    layer: str = Field(description="smtp_in, smtp_out, mailstore or webmail")
    port: Port
    protocol: ListenerProtocol | None = None
    pool_protocol: PoolProtocol | None = None
    algorithm: Algorithm | None = None
    source_ip_persistence: bool | None = None
    timeout_client_data_ms: int | None = Field(default=None, ge=1000, le=86400000)
    timeout_member_data_ms: int | None = Field(default=None, ge=1000, le=86400000)
    allowed_cidrs: tuple[Cidr, ...] | None = None
    tls_container_ref: str | None = Field(default=None, description="Barbican container (TERMINATED_HTTPS).")


class Storage(_Model):
    """The NFS share holding every mailbox."""

    mode: StorageMode = StorageMode.CINDER_SERVER
    size_gb: int = Field(default=2000, ge=1)
    share_network_id: str | None = Field(default=None, description="manila: share network (if the backend needs one).")
    share_type: str | None = Field(default=None, description="manila: share type. Default: the cloud's default.")
    export: str | None = Field(default=None, description="existing: NAS export as host:/path.")
    flavor: str = Field(default="m1.medium", description="cinder_server: flavor of the NFS server.")
    image: str | None = Field(default=None, description="cinder_server: image. Default: layers' image.")
    volume_type: str | None = None

    @model_validator(mode="after")
    def _mode_fields(self) -> Storage:
        if self.mode is StorageMode.EXISTING and not self.export:
            raise ValueError("__path__:export:is required when mode is existing; give the NAS export as host:/path")
        if self.export is not None and not re.match(r"^[A-Za-z0-9.:\[\]-]+:/\S*$", self.export):
            raise ValueError(f"__path__:export:must be host:/path, got {self.export!r}")
        return self


class Dns(_Model):
    zone: Domain = Field(default="cloud0.hc.mycompany.dom", description="Zone holding the platform's host names.")
    designate: bool = Field(default=False, description="Create the zone and records in Designate.")
    mail_domain_zones: bool = Field(default=False, description="Also create each mail domain's zone (MX, SPF, DKIM).")
    email: str = Field(default="hostmaster@domain01.dom", description="SOA contact of created zones.")
    ttl: int = Field(default=300, ge=30)
    spf: str = Field(
        default="v=spf1 mx ~all",
        description="SPF TXT of each mail domain. List the addresses your smtp-out servers leave from.",
    )


class Spam(_Model):
    tag2_level: float = 9.0
    kill_level: float = 12.0
    dsn_cutoff_level: float = 15.0
    amavis_processes: int = Field(default=16, ge=1, le=200, description="amavisd $max_servers = smtp-amavis maxproc.")
    dnsbls: tuple[Domain, ...] = Field(
        default=("zen.spamhaus.org", "bl.spamcop.net"),
        description="DNSBL zones. Spamhaus refuses queries through public resolvers: use your own resolver or DQS.",
    )
    spf_reject_softfail: bool = False

    @model_validator(mode="after")
    def _levels(self) -> Spam:
        if not self.tag2_level < self.kill_level <= self.dsn_cutoff_level:
            raise ValueError(
                f"__path__:kill_level:must lie between tag2_level and dsn_cutoff_level, got tag2 {self.tag2_level}, "
                f"kill {self.kill_level}, dsn cut-off {self.dsn_cutoff_level}"
            )
        dead = [d for d in self.dnsbls if "sorbs.net" in d]
        if dead:
            raise ValueError(f"__path__:dnsbls:{dead[0]!r} is dead (SORBS closed in 2024); remove it")
        return self


class Quota(_Model):
    default_storage: Annotated[str, Field(pattern=r"^\d+[KMGT]?$")] = "2G"
    default_messages: int = Field(default=100000, ge=0)
    trash_extra: Annotated[str, Field(pattern=r"^\d+[KMGT]?$")] = "100M"
    over_quota: OverQuota = OverQuota.DEFER


class Mail(_Model):
    spam: Spam = Spam()
    quota: Quota = Quota()
    fts: FtsBackend = FtsBackend.LUCENE
    solr_url: str = "http://127.0.0.1:8983/solr/dovecot"
    message_size_limit: int = Field(default=26214400, ge=1048576)
    dkim_selector: Annotated[str, Field(pattern=_SELECTOR.pattern)] = Field(
        default="mail", description="DKIM selector, the same for every domain and server."
    )


class Tls(_Model):
    source: TlsSource = TlsSource.SELF_SIGNED
    certificate: Secret | None = Field(default=None, description="provided: variable with the PEM chain.")
    private_key: Secret | None = Field(default=None, description="provided: variable with the PEM key.")

    @model_validator(mode="after")
    def _provided(self) -> Tls:
        if self.source is TlsSource.PROVIDED and (self.certificate is None or self.private_key is None):
            raise ValueError(
                "__path__:source:provided needs certificate and private_key ({variable: <name>} each)"
            )
        return self


class WebmailSettings(_Model):
    sogo_repo_url: str | None = Field(
        default=None, description="Yum repository with SOGo for the target OS (RHEL 7 packages are not public)."
    )
    database_host: str | None = Field(default=None, description="External MariaDB/Galera host. Default: local.")
    timezone: str = "UTC"


class Layers(_Model):
    smtp_in: Layer | None = None
    smtp_out: Layer | None = None
    mailstore: Layer | None = None
    webmail: Layer | None = None

    def items(self) -> list[tuple[Role, Layer]]:
        return [(r, getattr(self, r.value)) for r in MAIL_LAYER_ROLES if getattr(self, r.value) is not None]


class OsChoice(StrEnum):
    CENTOS7 = "centos7"


class PlatformConfig(_Model):
    """A whole mail platform: one stack."""

    name: Annotated[str, Field(pattern=_NAME.pattern)] = Field(
        default="mail", description="Stack name and prefix of every OpenStack resource name."
    )
    os: OsChoice = OsChoice.CENTOS7
    region: str | None = Field(default=None, description="OpenStack region. Default: from clouds.yaml / OS_REGION_NAME.")
    cloud: str | None = Field(default=None, description="clouds.yaml entry. Default: OS_CLOUD or OS_* variables.")
    backend: Backend = Backend()
    domains: tuple[Domain, ...] = Field(min_length=1, description="Mail domains served; the first is the primary.")
    dns: Dns = Dns()
    network: Network
    directory: Directory
    storage: Storage = Storage()
    layers: Layers
    listeners: tuple[ListenerOverride, ...] = ()
    mail: Mail = Mail()
    tls: Tls = Tls()
    webmail: WebmailSettings = WebmailSettings()
    floating_ips: tuple[Literal["smtp_in", "webmail"], ...] = Field(
        default=("smtp_in", "webmail"), description="Layers whose VIP gets a floating IP (public exposure)."
    )

    def directory_settings(self, *, bind_password: str) -> DirectorySettings:
        """The typed directory settings, with `bind_password` (a reference, or a real value for check-ad)."""
        d = self.directory
        a = d.attributes
        return DirectorySettings(
            urls=d.urls,
            tls=d.tls,
            base_dn=d.base_dn,
            bind_dn=d.bind_dn,
            bind_password=bind_password,
            domains=self.domains,
            attributes=AttributeMap(
                login=a.login, mail=a.mail, quota=a.quota, person_class=a.person_class,
                group_class=a.group_class, member=a.member,
            ),
            ca_cert_pem=Path(d.ca_cert_file).read_text(encoding="utf-8") if d.ca_cert_file else None,
        )
