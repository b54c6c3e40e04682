"""Typed inputs of the templates: what the constructs know about the platform, for one layer.

Values that are only known when Terraform applies (VIP addresses, the NFS export of a Manila share,
secrets) are Terraform references here (`${openstack_lb_loadbalancer_v2.x.vip_address}` at synth time,
or cdktf tokens that resolve to them). The twin builds the same objects with real values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mailstrata.directory import DirectorySettings
from mailstrata.roles import Role
from mailstrata.types import Filesystem, FtsBackend, OverQuota, Secret, TlsSource

__all__ = ["Filesystem", "FtsBackend", "OverQuota", "Secret", "TlsSource"]  # defined in mailstrata.types


@dataclass(frozen=True, kw_only=True)
class Vips:
    """The address of each layer's VIP (a Terraform reference at synth time)."""

    smtp_in: str
    smtp_out: str
    mailstore: str
    webmail: str


@dataclass(frozen=True, kw_only=True)
class Networks:
    """CIDRs the templates need for access rules (`mynetworks`, trusted PROXY sources)."""

    servers: Mapping[Role, tuple[str, ...]]  # the subnets each layer's servers live in
    vip_subnet: tuple[str, ...]  # where the load balancers' addresses come from
    clients: tuple[str, ...]  # corporate clients (IMAP, POP3, submission)
    admin: tuple[str, ...]  # SSH

    def of(self, *roles: Role) -> tuple[str, ...]:
        """The sorted, de-duplicated server CIDRs of `roles`."""
        return tuple(sorted({c for r in roles for c in self.servers.get(r, ())}))


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Postfix limits used on every Postfix layer (the seed's values)."""

    recipient_limit: int = 200
    message_size_limit: int = 26214400
    error_sleep_time: str = "1s"
    soft_error_limit: int = 10
    hard_error_limit: int = 20
    client_connection_count_limit: int = 10
    client_connection_rate_limit: int = 60
    default_process_limit: int = 200
    bounce_queue_lifetime: str = "1d"
    maximal_queue_lifetime: str = "1d"


@dataclass(frozen=True, kw_only=True)
class SpamPolicy:
    """amavisd-new / SpamAssassin thresholds and the SMTP-in filters."""

    tag_level: float = -999.0
    tag2_level: float = 9.0
    kill_level: float = 12.0
    dsn_cutoff_level: float = 15.0
    amavis_processes: int = 16  # one value: master.cf process limit and $max_servers
    dnsbls: tuple[str, ...] = ("zen.spamhaus.org", "bl.spamcop.net")
    spf_mail_from_reject: str = "Fail"  # Fail, or SPF_Not_Pass to also reject softfail
    quarantine_days: int = 14  # discarded viruses and spam stay this long in amavis's quarantine, then go


@dataclass(frozen=True, kw_only=True)
class QuotaPolicy:
    default_storage: str = "2G"
    default_messages: int = 100000
    trash_extra: str = "100M"
    over_quota: OverQuota = OverQuota.DEFER


@dataclass(frozen=True, kw_only=True)
class DkimKey:
    """The platform's DKIM key: one key signs every mail domain's mail (d= the sender's domain), on every
    SMTP-out server. Each domain's `<selector>._domainkey.<domain>` is a CNAME to the one published TXT."""

    selector: str
    private_key: Secret


@dataclass(frozen=True, kw_only=True)
class Tls:
    source: TlsSource = TlsSource.SELF_SIGNED
    certificate: Secret | None = None  # PEM chain, when source is PROVIDED
    private_key: Secret | None = None


@dataclass(frozen=True, kw_only=True)
class NfsMount:
    """How mailstore servers mount the shared mailbox storage."""

    source: str  # "server:/export" (may hold a Terraform reference)
    mount_point: str = "/MAILBOXES"
    options: str = "rw,hard,intr,vers=3,tcp,nordirplus,rsize=32768,wsize=32768,_netdev"
    vmail_subdir: str = "vmail"


@dataclass(frozen=True, kw_only=True)
class NfsServer:
    """The seed's own NFS server (`NfsShare` in Cinder mode): the volume it formats once and exports.

    NFSv3 needs rpcbind (111) and nfsd (2049) plus mountd, statd and lockd, which pick random ports
    unless pinned; the ports here are pinned by the server's user-data, so security groups can name them.
    """

    device: str = "/dev/vdb"  # the attached Cinder volume; /dev/disk/by-id/virtio-<volume id> is steadier
    filesystem: Filesystem = Filesystem.XFS
    export_path: str = "/NFSVOL"
    device_wait_seconds: int = 600  # the volume is attached after the server is created
    mountd_port: int = 20048
    statd_port: int = 662
    lockd_tcp_port: int = 32803
    lockd_udp_port: int = 32769


@dataclass(frozen=True, kw_only=True)
class Database:
    """SOGo's MariaDB: local on each webmail server by default."""

    external_host: str | None = None  # None: a local MariaDB on every webmail server
    name: str = "sogo"
    user: str = "sogo"
    password: Secret


@dataclass(frozen=True, kw_only=True)
class Webmail:
    database: Database
    sogo_repo_url: str | None = None  # RHEL 7 SOGo packages are not freely published: give a repository
    timezone: str = "UTC"
    prefork: int = 20
    vmem_limit_mb: int = 1024
    sogo_repo_gpg_key: str | None = None  # URL of the key signing sogo_repo_url's packages; None: unchecked


@dataclass(frozen=True, kw_only=True)
class PlatformContext:
    """Everything a layer's templates may use. One object per layer; every value typed."""

    role: Role
    stack_name: str
    domains: tuple[str, ...]
    dns_zone: str
    directory: DirectorySettings
    vips: Vips
    networks: Networks
    proxy_ports: frozenset[int]  # this layer's ports whose LB pool sends the PROXY protocol
    limits: Limits = field(default_factory=Limits)
    spam: SpamPolicy = field(default_factory=SpamPolicy)
    quota: QuotaPolicy = field(default_factory=QuotaPolicy)
    fts: FtsBackend = FtsBackend.LUCENE
    solr_url: str = "http://127.0.0.1:8983/solr/dovecot"
    dkim: DkimKey | None = None  # required by smtp_out, the layer that signs
    tls: Tls = field(default_factory=Tls)
    nfs: NfsMount | None = None
    webmail: Webmail | None = None
    vmail_uid: int = 5000
    nfs_server: NfsServer = field(default_factory=NfsServer)  # used by the nfs_server role only

    @property
    def primary_domain(self) -> str:
        return self.domains[0]
