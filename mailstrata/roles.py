"""The closed set of server roles the platform knows."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A server role. Each `MailLayer` has one; `NFS_SERVER` is used only by `NfsShare` in Cinder mode."""

    SMTP_IN = "smtp_in"  # the MX, Internet-facing on 25
    SMTP_OUT = "smtp_out"  # authenticated relay (submission 587, internal 25)
    MAILSTORE = "mailstore"  # POP-IMAP-LDA: Postfix delivery + Dovecot on NFS
    WEBMAIL = "webmail"  # SOGo behind nginx
    NFS_SERVER = "nfs_server"  # the seed's own NFS server on a Cinder volume

    @property
    def slug(self) -> str:
        """The role as used in names and host names (`smtp-in`)."""
        return self.value.replace("_", "-")


MAIL_LAYER_ROLES: tuple[Role, ...] = (Role.SMTP_IN, Role.SMTP_OUT, Role.MAILSTORE, Role.WEBMAIL)
# The layers whose Postfix queues mail: each server slot keeps its queue on a volume of its own, which outlives
# the server (issue 12).
QUEUEING_ROLES = frozenset({Role.SMTP_IN, Role.SMTP_OUT, Role.MAILSTORE})
