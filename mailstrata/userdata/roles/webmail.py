"""Files and packages of the webmail layer: SOGo behind nginx, with MariaDB and memcached.

Mail flow: a browser (or an ActiveSync device) reaches nginx on 443 through the webmail VIP; nginx
proxies `/SOGo` and `/Microsoft-Server-ActiveSync` to sogod on 127.0.0.1:20000. SOGo authenticates the
user against AD (an indirect bind: search by sAMAccountName, then bind as the user), then logs in to
the mailstore VIP with the same credentials over IMAPS 993 and ManageSieve 4190 (STARTTLS), and sends
through the smtp-out VIP on submission 587 (STARTTLS, AUTH PLAIN with the user's credentials). User
profiles, folder info and sessions live in MariaDB (local to each server by default), the session
cache in memcached on 127.0.0.1.

Each daemon's settings live in its module (`daemons/sogo.py`, `nginx.py`, `mariadb.py`, `memcached.py`);
this role composes them and adds its first-boot script (SOGo's packages, httpd kept off, the database).
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstrata.userdata.context import LayerContext, Webmail
from mailstrata.userdata.daemons import mariadb, memcached, nginx, sogo
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile


def _webmail(ctx: LayerContext) -> Webmail:
    if ctx.platform.webmail is None:
        raise ValueError("webmail: the webmail layer needs ctx.platform.webmail (database, SOGo repository, time zone)")
    return ctx.platform.webmail


@dataclass(frozen=True, kw_only=True)
class RoleScript:
    sogo_packages: tuple[str, ...]
    sogo_repo_url: str | None
    sogo_service: str
    conflicting_services: tuple[str, ...]
    local_database: bool
    mariadb_service: str
    secure_mariadb_root: bool  # MariaDB before 10.4 lets root in without a password
    root_credentials: str
    db_credentials: str
    db_name: str
    db_user: str
    db_client_host: str  # the host part of the MariaDB account ('127.0.0.1' for the local database)
    db_charset: str
    db_collation: str
    mysql: str
    mysqladmin: str
    sogo_user: str
    sogo_conf: str


def files(ctx: LayerContext, os: OsProfile) -> list[FileSpec]:
    wm = _webmail(ctx)
    sogo.check_version(os)
    account = mariadb.Account.of(wm.database)
    # The order is the setup script's order of handing files to their daemons.
    specs = [
        sogo.conf_file(ctx, os, database=account, memcached=memcached.ADDRESS),
        sogo.sysconfig_file(ctx, os, prefork=wm.prefork),
        sogo.cron_file(os),
        mariadb.credentials_file(account, os.paths.sogo_db_credentials),
        nginx.conf_file(ctx, os, sogo_listen=sogo.LISTEN),
        nginx.mta_sts_file(ctx, os),
        memcached.conf_file(os),
        FileSpec(
            dest=os.paths.role_script,
            template="webmail/usr/local/sbin/mailstrata-setup-role.j2",
            context={"ctx": ctx, "role": _role_script(os, wm, account)},
            mode="0755",
        ),
    ]
    if account.local:
        specs.append(mariadb.server_conf_file(os))
    if wm.sogo_repo_url is not None:
        specs.append(sogo.repo_file(os, url=wm.sogo_repo_url, gpg_key=wm.sogo_repo_gpg_key))
    return specs


def _role_script(os: OsProfile, wm: Webmail, account: mariadb.Account) -> RoleScript:
    return RoleScript(
        sogo_packages=tuple(os.values.sogo_packages),
        sogo_repo_url=wm.sogo_repo_url,
        sogo_service=os.values.sogo_service,
        conflicting_services=tuple(os.values.conflicting_services),
        local_database=account.local,
        mariadb_service=os.values.mariadb_service,
        secure_mariadb_root=mariadb.secure_root_needed(os),
        root_credentials=os.paths.mariadb_root_credentials,
        db_credentials=os.paths.sogo_db_credentials,
        db_name=account.database,
        db_user=account.user,
        db_client_host=mariadb.LOCAL_HOST,
        db_charset=os.values.db_charset,
        db_collation=os.values.db_collation,
        mysql=os.commands.mysql,
        mysqladmin=os.commands.mysqladmin,
        sogo_user=os.users.sogo,
        sogo_conf=os.paths.sogo_conf,
    )


def packages(ctx: LayerContext, os: OsProfile) -> list[str]:
    wm = _webmail(ctx)
    out: list[str] = []
    # Without a repository yum cannot find SOGo; the role script then stops with a message that names
    # webmail.sogo_repo_url (an image with SOGo preinstalled also passes that check).
    if wm.sogo_repo_url is not None:
        out.extend(os.values.sogo_packages)
    if wm.database.external_host is None:
        out.extend(os.values.mariadb_server_packages)
    return out
