"""Closed choices shared by the constructs and the config (no cdktf import, so the config and
`check-ad` load without the jsii runtime). The constructs re-export them."""

from __future__ import annotations

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
