"""The server roles as compositions of daemons: the registry `render_layer` reads.

Each role module lists the files its daemons write (`files(ctx, os)`, built by the daemon modules under
`mailstrata.userdata.daemons` with the role's differences as data) and any packages beyond its OS
profile's (`packages(ctx, os)`):

- `smtp_in`: Postfix (the MX), amavisd-new, ClamAV (amavis's clamd), SpamAssassin, policyd-spf.
- `smtp_out`: Postfix (the relay), saslauthd, ClamAV (clamd + clamav-milter), OpenDKIM.
- `mailstore`: Postfix (delivery), Dovecot.
- `webmail`: SOGo, nginx, memcached, MariaDB.
- `nfs_server`: the NFS server (`NfsShare` in Cinder mode).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

from mailstrata.roles import Role
from mailstrata.userdata.context import LayerContext
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile
from mailstrata.userdata.roles import mailstore, nfs_server, smtp_in, smtp_out, webmail


class RoleModule(Protocol):
    """What a role module provides."""

    def files(self, ctx: LayerContext, os: OsProfile) -> list[FileSpec]: ...

    def packages(self, ctx: LayerContext, os: OsProfile) -> list[str]: ...


def _module(m: RoleModule) -> RoleModule:
    return m


ROLES: Mapping[Role, RoleModule] = MappingProxyType({
    Role.SMTP_IN: _module(smtp_in),
    Role.SMTP_OUT: _module(smtp_out),
    Role.MAILSTORE: _module(mailstore),
    Role.WEBMAIL: _module(webmail),
    Role.NFS_SERVER: _module(nfs_server),
})
