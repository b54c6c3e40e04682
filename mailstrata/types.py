"""Closed choices and value types shared by the config, the constructs and the templates (no cdktf import,
so the config and `check-ad` load without the jsii runtime). The constructs re-export them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ListenerProtocol(StrEnum):
    TCP = "TCP"
    HTTP = "HTTP"
    HTTPS = "HTTPS"
    TERMINATED_HTTPS = "TERMINATED_HTTPS"  # TLS ends on the amphora; needs a Barbican container


class PoolProtocol(StrEnum):
    TCP = "TCP"
    HTTP = "HTTP"
    # PROXY protocol v1: the member learns the real client address. Not PROXYV2: CentOS 7's
    # Postfix 2.10 speaks only v1.
    PROXY = "PROXY"


class Algorithm(StrEnum):
    ROUND_ROBIN = "ROUND_ROBIN"
    LEAST_CONNECTIONS = "LEAST_CONNECTIONS"
    SOURCE_IP = "SOURCE_IP"


class Persistence(StrEnum):
    SOURCE_IP = "SOURCE_IP"
    HTTP_COOKIE = "HTTP_COOKIE"


class MonitorType(StrEnum):
    TCP = "TCP"
    HTTP = "HTTP"
    HTTPS = "HTTPS"
    TLS_HELLO = "TLS-HELLO"


class Affinity(StrEnum):
    ANTI_AFFINITY = "anti-affinity"  # never two servers of the layer on one hypervisor
    SOFT_ANTI_AFFINITY = "soft-anti-affinity"  # spread when possible, still boot when not


class StorageMode(StrEnum):
    MANILA = "manila"  # an NFS share from OpenStack Manila
    CINDER_SERVER = "cinder_server"  # the seed's setup: an NFS server on a Cinder volume
    EXISTING = "existing"  # a NAS that already exports the mail volume


class OverQuota(StrEnum):
    """What happens to a message for a mailbox that is over its quota."""

    # Dovecot's `quota_full_tempfail = yes`: LMTP answers 4xx, the message waits in the mailstore's Postfix
    # queue until the user frees space or `maximal_queue_lifetime` passes. The seed's `= no` is a bounce,
    # although its comment promised a wait.
    DEFER = "defer"
    BOUNCE = "bounce"  # `quota_full_tempfail = no`: LMTP answers 5xx and the sender gets a bounce at once


class FtsBackend(StrEnum):
    """Dovecot full-text search backend."""

    LUCENE = "lucene"  # indexes inside each mailbox on NFS (the seed's default)
    SOLR = "solr"  # indexes in Solr, off the shared storage


class TlsSource(StrEnum):
    """Where a layer's TLS certificate comes from."""

    SELF_SIGNED = "self_signed"  # made at first boot on each server; replace before production
    PROVIDED = "provided"  # PEM certificate and key given as sensitive Terraform variables


class Filesystem(StrEnum):
    """The filesystem the NFS server makes on its blank volume."""

    XFS = "xfs"  # CentOS 7's default, as in the seed
    EXT4 = "ext4"


@dataclass(frozen=True, kw_only=True)
class Secret:
    """A secret: a Terraform reference (``${var.x}``, ``${random_password.y.result}``) at synth time, never a
    literal in the synthesized JSON; `mailstrata check-ad` alone holds a real value in one."""

    ref: str = field(repr=False)

    def __str__(self) -> str:
        return self.ref
