"""Files and packages of the mailstore layer (the seed's POP-IMAP-LDA).

Mail flow: SMTP-in and SMTP-out hand mail to the delivery VIP on port 25; Postfix accepts it for the
served domains only (LDAP people map; AD groups expand to their members), and passes it over LMTP on a
unix socket to Dovecot, which runs the global sieve (spam into Junk) and the user's own, applies the
quota and writes the maildir under `/var/vmail`, a symlink into the NFS share that every mailstore
server mounts. IMAP, POP3 and ManageSieve reach Dovecot through the LB's PROXY-protocol pools.
Dovecot's settings (and the NFS caveat) live in `mailstrata.userdata.daemons.dovecot`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstrata.userdata.context import LayerContext
from mailstrata.userdata.daemons import dovecot, nfs, postfix, spool
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile

LMTP_SOCKET = "private/dovecot-lmtp"  # relative to Postfix's queue directory, where its lmtp client runs


@dataclass(frozen=True, kw_only=True)
class RoleScript:
    vmail_uid: int
    vmail_user: str
    vmail_home: str
    mount_point: str | None  # None: no NFS share, mail stays on the local disk
    share_dir: str | None  # <mount_point>/<vmail_subdir>
    mount_wait_seconds: int
    sievec: str
    sieve_scripts: tuple[str, ...]
    newaliases: str
    daemon_reload: str


def role_script(ctx: LayerContext, os: OsProfile) -> RoleScript:
    nfs = ctx.nfs
    return RoleScript(
        vmail_uid=ctx.platform.vmail_uid,
        vmail_user=str(os.users.vmail),
        vmail_home=str(os.paths.vmail_home),
        mount_point=nfs.mount_point if nfs else None,
        share_dir=f"{nfs.mount_point.rstrip('/')}/{nfs.vmail_subdir}" if nfs else None,
        mount_wait_seconds=int(os.values.nfs_mount_wait_seconds),
        sievec=str(os.commands.sievec),
        sieve_scripts=(dovecot.global_sieve(os),),
        newaliases=str(os.commands.newaliases),
        daemon_reload=str(os.commands.daemon_reload),
    )


# ---- the layer --------------------------------------------------------------------------------------


def files(ctx: LayerContext, os: OsProfile) -> list[FileSpec]:
    specs = [
        # Postfix hands every accepted message to Dovecot over LMTP on this socket.
        *dovecot.files(ctx, os, lmtp_socket=LMTP_SOCKET),
        # Postfix accepts mail for the served domains and delivers it to Dovecot's LMTP socket.
        *postfix.delivery(ctx, os, lmtp_socket=LMTP_SOCKET).files(ctx, os),
        FileSpec(
            dest=os.paths.role_script,
            template="mailstore/usr/local/sbin/mailstrata-setup-role.j2",
            context={"ctx": ctx, "script": role_script(ctx, os)},
            mode="0755",
        ),
    ]
    if ctx.nfs is not None:
        specs.append(dovecot.systemd_dropin(os, requires_mount=ctx.nfs.mount_point))
    specs.extend(nfs.client_files(ctx, os))  # statd's and lockd's ports: the NFSv3 server's lock callbacks
    # The slot's spool volume keeps the queue; Dovecot's LMTP socket is in it, so Dovecot waits for it too.
    specs.extend(spool.files(ctx, os, (spool.postfix_queue(os, also=("dovecot",)),)))
    return specs


def packages(ctx: LayerContext, os: OsProfile) -> list[str]:
    return []
