"""Files and packages of the nfs_server layer."""

from __future__ import annotations

from mailstrata.userdata.context import PlatformContext
from mailstrata.userdata.profiles import OsProfile
from mailstrata.userdata.render import FileSpec


def files(ctx: PlatformContext, os: OsProfile) -> list[FileSpec]:
    return [
        FileSpec(
            dest=os.paths.role_script,
            template="nfs_server/usr/local/sbin/mailstrata-setup-role.j2",
            context={"ctx": ctx},
            mode="0755",
        ),
    ]


def packages(ctx: PlatformContext, os: OsProfile) -> list[str]:
    return []
