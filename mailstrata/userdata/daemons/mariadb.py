"""MariaDB for SOGo: the local server's settings and the client option file of SOGo's account.

The database is local to each webmail server by default (`Database.external_host` None); then the server
listens on loopback only. Either way the role script checks SOGo's login with the client option file
before sogod starts, since SOGo creates its tables on first use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailstrata.userdata.context import Database
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile

PORT = 3306
LOCAL_HOST = "127.0.0.1"  # the local server's address, and the host part of SOGo's account there
MAX_ALLOWED_PACKET = "64M"  # ActiveSync keeps large cache rows for big mailboxes (SOGo's guide: 64M or more)

_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]+$")


def require_identifier(path: str, value: str) -> str:
    # A database or user name goes into a URL, an SQL statement and a shell heredoc unquoted.
    if not _IDENTIFIER.match(value):
        raise ValueError(f"{path}: must be letters, digits and '_' only, got {value!r}")
    return value


@dataclass(frozen=True, kw_only=True)
class Account:
    """One application's database and account on the server it uses (local or external)."""

    database: str
    user: str
    password: str  # a Terraform reference at synth time
    host: str
    port: int = PORT
    local: bool  # a MariaDB server on this host, set up by the role script

    @classmethod
    def of(cls, db: Database, *, where: str = "webmail.database") -> Account:
        return cls(
            database=require_identifier(f"{where}.name", db.name),
            user=require_identifier(f"{where}.user", db.user),
            password=db.password.ref,
            host=db.external_host if db.external_host is not None else LOCAL_HOST,
            local=db.external_host is None,
        )


@dataclass(frozen=True, kw_only=True)
class MariadbConf:
    bind_address: str
    port: int
    charset: str
    collation: str
    max_allowed_packet: str


@dataclass(frozen=True, kw_only=True)
class DbCredentials:
    user: str
    password: str  # a Terraform reference at synth time
    host: str
    port: int
    database: str


def server_conf_file(os: OsProfile) -> FileSpec:
    """The local server's settings (`paths.mariadb_conf`, in the OS's include folder)."""
    return FileSpec(
        dest=os.paths.mariadb_conf,
        template="mariadb/etc/my.cnf.d/mailstrata-sogo.cnf.j2",
        context={
            "mariadb": MariadbConf(
                bind_address=LOCAL_HOST,
                port=PORT,
                charset=os.values.db_charset,
                collation=os.values.db_collation,
                max_allowed_packet=MAX_ALLOWED_PACKET,
            )
        },
    )


def credentials_file(account: Account, dest: str) -> FileSpec:
    """A client option file with the account (for `mysql --defaults-extra-file=`); root-only."""
    return FileSpec(
        dest=dest,
        template="mariadb/etc/sogo/mailstrata-db.cnf.j2",
        context={
            "db": DbCredentials(
                user=account.user,
                password=account.password,
                host=account.host,
                port=account.port,
                database=account.database,
            )
        },
        mode="0600",  # the database password; read by the role script only
    )


def secure_root_needed(os: OsProfile) -> bool:
    """MariaDB before 10.4 lets root in without a password (10.4+: unix_socket authentication)."""
    return not os.version_at_least("mariadb", "10.4")
