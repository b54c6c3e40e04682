"""The four public constructs, and the small interfaces they take from each other
(`interfaces`). A top-level package named `constructs` would shadow the `constructs`
library that cdktf imports, which is why this lives at `mailstrata.constructs`."""

from mailstrata.constructs.ad_binding import AdBinding, AdBindingProps
from mailstrata.constructs.interfaces import IMemberGroup, IStorageClient, Member, MemberGroup, StorageClient
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
    "IMemberGroup",
    "IStorageClient",
    "LbaasVip",
    "LbaasVipProps",
    "ListenerProps",
    "ListenerProtocol",
    "MailLayer",
    "MailLayerProps",
    "Member",
    "MemberGroup",
    "MonitorProps",
    "MonitorType",
    "NfsShare",
    "NfsShareProps",
    "Persistence",
    "PoolProtocol",
    "StorageClient",
    "StorageMode",
]
