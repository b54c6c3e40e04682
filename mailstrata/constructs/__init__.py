"""The four public constructs. A top-level package named `constructs` would shadow the `constructs`
library that cdktf imports, which is why this lives at `mailstrata.constructs`."""

from mailstrata.constructs.ad_binding import AdBinding, AdBindingProps
from mailstrata.constructs.lbaas_vip import FloatingIpProps, LbaasVip, LbaasVipProps, ListenerProps, MonitorProps
from mailstrata.constructs.mail_layer import MailLayer, MailLayerProps
from mailstrata.constructs.nfs_share import CinderServerProps, NfsShare, NfsShareProps
from mailstrata.types import (
    Affinity,
    Algorithm,
    ListenerProtocol,
    MonitorType,
    Persistence,
    PoolProtocol,
    StorageMode,
)

__all__ = [
    "AdBinding",
    "AdBindingProps",
    "Affinity",
    "Algorithm",
    "CinderServerProps",
    "FloatingIpProps",
    "LbaasVip",
    "LbaasVipProps",
    "ListenerProps",
    "ListenerProtocol",
    "MailLayer",
    "MailLayerProps",
    "MonitorProps",
    "MonitorType",
    "NfsShare",
    "NfsShareProps",
    "Persistence",
    "PoolProtocol",
    "StorageMode",
]
