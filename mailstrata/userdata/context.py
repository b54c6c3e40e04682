"""Typed inputs of the templates: `Platform`, the platform's facts (the same for every layer), and
`LayerContext`, one layer's view of them (its role, the ports its load balancer sends PROXY on, the share it
mounts). Defaults come from `mailstrata.defaults`.

Values that are only known when Terraform applies (VIP addresses, the NFS export of a Manila share,
secrets) are Terraform references here (`${openstack_lb_loadbalancer_v2.x.vip_address}` at synth time,
or cdktf tokens that resolve to them). The twin builds the same objects with real values.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mailstrata import defaults as D
from mailstrata.directory import DirectorySettings
from mailstrata.errors import Problems
from mailstrata.mta_sts import MtaStsSettings
from mailstrata.octavia import amphora_source_subnets
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
    message_size_limit: int = D.MESSAGE_SIZE_LIMIT
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
    tag2_level: float = D.SPAM_TAG2_LEVEL
    kill_level: float = D.SPAM_KILL_LEVEL
    dsn_cutoff_level: float = D.SPAM_DSN_CUTOFF_LEVEL
    amavis_processes: int = D.AMAVIS_PROCESSES  # one value: master.cf process limit and $max_servers
    dnsbls: tuple[str, ...] = D.DNSBLS
    # Fail, or SPF_Not_Pass to also reject softfail
    spf_mail_from_reject: str = "SPF_Not_Pass" if D.SPF_REJECT_SOFTFAIL else "Fail"
    quarantine_days: int = D.SPAM_QUARANTINE_DAYS  # discarded mail stays this long in amavis's quarantine, then goes


@dataclass(frozen=True, kw_only=True)
class AntivirusPolicy:
    """Where freshclam fetches ClamAV's signatures (daemons/clamav.py): ClamAV's CDN or a private mirror."""

    database_mirror: str = D.CLAMAV_DATABASE_MIRROR
    private_mirror: str | None = None  # a URL; None: database_mirror


@dataclass(frozen=True, kw_only=True)
class QuotaPolicy:
    default_storage: str = D.QUOTA_STORAGE
    default_messages: int = D.QUOTA_MESSAGES
    trash_extra: str = D.QUOTA_TRASH_EXTRA
    over_quota: OverQuota = D.OVER_QUOTA


@dataclass(frozen=True, kw_only=True)
class DkimKey:
    """The platform's DKIM key: one key signs every mail domain's mail (d= the sender's domain), on every
    SMTP-out server. Each domain's `<selector>._domainkey.<domain>` is a CNAME to the one published TXT."""

    selector: str
    private_key: Secret


@dataclass(frozen=True, kw_only=True)
class Tls:
    source: TlsSource = D.TLS_SOURCE
    certificate: Secret | None = None  # PEM chain, when source is PROVIDED
    private_key: Secret | None = None


@dataclass(frozen=True, kw_only=True)
class NfsMount:
    """How mailstore servers mount the shared mailbox storage."""

    source: str  # "server:/export" (may hold a Terraform reference)
    mount_point: str = D.MAILBOX_MOUNT_POINT
    options: str = "rw,hard,intr,vers=3,tcp,nordirplus,rsize=32768,wsize=32768,_netdev"
    vmail_subdir: str = "vmail"
    # NFSv3 locking calls back: the server's lockd grants a blocked lock to the client's lockd (NLM) and its
    # statd tells the client's statd of a reboot (NSM), both found through the client's rpcbind. Pinned on
    # the client by daemons/nfs.py (`client_files`), opened to the NFS server by NfsShare.grant_mount.
    statd_port: int = 662
    lockd_tcp_port: int = 32803
    lockd_udp_port: int = 32769


@dataclass(frozen=True, kw_only=True)
class NfsServer:
    """The seed's own NFS server (`NfsShare` in Cinder mode): the volume it formats once and exports.

    NFSv3 needs rpcbind (111) and nfsd (2049) plus mountd, statd and lockd, which pick random ports
    unless pinned; the ports here are pinned by the server's user-data, so security groups can name them.
    """

    device: str = "/dev/vdb"  # the attached Cinder volume; /dev/disk/by-id/virtio-<volume id> is steadier
    # Other names the same volume may have (virtio-scsi's scsi-0QEMU_QEMU_HARDDISK_<id>, ...): the role
    # script takes whichever appears first (NfsShare fills these in; roles/nfs_server.py).
    device_aliases: tuple[str, ...] = ()
    filesystem: Filesystem = Filesystem.XFS
    export_path: str = "/NFSVOL"
    device_wait_seconds: int = 600  # the volume is attached after the server is created
    mountd_port: int = 20048
    statd_port: int = 662
    lockd_tcp_port: int = 32803
    lockd_udp_port: int = 32769


@dataclass(frozen=True, kw_only=True)
class Spool:
    """A queueing server's spool volume (issue 12): one Cinder volume per server slot, kept when the server is
    replaced and attached to the replacement, holding what must survive it: Postfix's queue (and, on smtp-in,
    amavisd's quarantine). `MailLayer` makes the volumes; the slot's own cloud-config head writes its volume's
    ID to `id_file` at boot (`bootcmd`), and the setup script finds the disk by that ID (the same
    /dev/disk/by-id names as the NFS server's volume), formats it only when blank, and mounts it."""

    id_file: str = "/run/mailstrata/spool-volume-id"
    filesystem: Filesystem = Filesystem.XFS
    device_wait_seconds: int = 600  # the volume is attached after the server is created
    size_gb: int = D.SPOOL_GB


@dataclass(frozen=True)
class Peer:
    """One server of this layer: its name and its address (a Terraform reference at synth time)."""

    name: str
    address: str


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
    timezone: str = D.WEBMAIL_TIMEZONE
    prefork: int = D.SOGO_PREFORK
    vmem_limit_mb: int = D.SOGO_VMEM_LIMIT_MB
    sogo_repo_gpg_key: str | None = None  # URL of the key signing sogo_repo_url's packages; None: unchecked


@dataclass(frozen=True, kw_only=True)
class Platform:
    """The platform's facts, the same for every layer: what the templates may use. Every value typed."""

    stack_name: str
    domains: tuple[str, ...]
    dns_zone: str
    directory: DirectorySettings
    vips: Vips
    networks: Networks
    limits: Limits = field(default_factory=Limits)
    spam: SpamPolicy = field(default_factory=SpamPolicy)
    antivirus: AntivirusPolicy = field(default_factory=AntivirusPolicy)
    quota: QuotaPolicy = field(default_factory=QuotaPolicy)
    fts: FtsBackend = D.FTS
    solr_url: str = D.SOLR_URL
    dkim: DkimKey | None = None  # required by smtp_out, the layer that signs
    tls: Tls = field(default_factory=Tls)
    webmail: Webmail | None = None
    mta_sts: MtaStsSettings = field(default_factory=MtaStsSettings)  # the policy webmail's nginx serves
    vmail_uid: int = 5000
    # The SMTP-out servers' own addresses (Terraform references at synth time): the internal relay the
    # mailstores send bounces and sieve mail to, on contract.RELAY. Empty: no SMTP-out layer.
    relays: tuple[str, ...] = ()

    @property
    def primary_domain(self) -> str:
        return self.domains[0]


@dataclass(frozen=True, kw_only=True)
class LayerContext:
    """One layer's view: the platform's facts, and what only this layer has (its role, the ports its load
    balancer sends PROXY on, the share it mounts). `MailLayer` and `NfsShare` build it; nothing else is
    per layer."""

    platform: Platform
    role: Role
    proxy_ports: frozenset[int] = frozenset()  # this layer's ports whose LB pool sends the PROXY protocol
    nfs: NfsMount | None = None  # the mailbox share, on mailstores
    nfs_server: NfsServer = field(default_factory=NfsServer)  # used by the nfs_server role only
    spool: Spool | None = None  # the slot's spool volume, on the queueing layers (smtp-in, smtp-out, mailstore)
    peers: tuple[Peer, ...] = ()  # this layer's servers, in slot order (the mailstores place users on them)

    def with_platform(self, **changes: Any) -> LayerContext:
        """This layer's view of a platform with `changes` (e.g. another directory)."""
        return replace(self, platform=replace(self.platform, **changes))

    def proxy_sources(self) -> tuple[str, ...]:
        """Where a PROXY header may name the client (Dovecot's haproxy_trusted_networks, nginx's
        set_real_ip_from): the networks Octavia's amphorae connect to this layer's members from.

        `mailstrata.octavia.amphora_source_subnets`, the model the security groups use too: the layer's members
        name the layer's subnet (LbaasVip.add_members), so the amphorae reach them from their ports there; the
        VIP subnet only when the layer has no subnet of its own to name. A /0 would let any client claim any
        address, so it is refused.
        """
        net = self.platform.networks
        members = net.of(self.role) or (None,)
        nets = amphora_source_subnets(member_subnets=members, vip_subnets=net.vip_subnet)
        problems = Problems()
        for n in nets:
            if ipaddress.ip_network(n, strict=False).prefixlen == 0:
                where = f"networks.servers.{self.role.value}" if n in members else "networks.vip_subnet"
                problems.add(where, f"a PROXY-protocol source must not be the whole Internet, got {n}; name the LB "
                                    "subnets")
        problems.raise_if_any()
        return nets
