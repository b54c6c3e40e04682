"""The one place a `PlatformConfig` becomes the `Platform` (the facts) the templates render from.

`MailPlatformStack` calls it with the addresses of its VIPs (cdktf tokens) and its `AdBinding`'s settings;
`mailstrata validate` calls it with placeholder references of the same kinds, to measure user-data before
any construct exists (`userdata.limits`). The references to resources the stack makes are named here once:
the stack gives those resources these logical IDs.
"""

from __future__ import annotations

from collections.abc import Mapping

from mailstrata.config.model import PlatformConfig
from mailstrata.directory import DirectorySettings
from mailstrata.mta_sts import MtaStsSettings
from mailstrata.roles import Role
from mailstrata.userdata.context import (
    AntivirusPolicy,
    Database,
    DkimKey,
    Limits,
    Networks,
    Platform,
    QuotaPolicy,
    Secret,
    SpamPolicy,
    Tls,
    Vips,
    Webmail,
)

DKIM_KEY_ID = "dkim"  # tls_private_key.dkim: the platform's one DKIM key
WEBMAIL_DB_PASSWORD_ID = "webmail_db"  # random_password.webmail_db: the local database's password


def variable_ref(name: str) -> str:
    return f"${{var.{name}}}"


def webmail_db_password_ref(cfg: PlatformConfig) -> str:
    """The external database's password variable, else the password Terraform makes for the local one."""
    w = cfg.webmail
    if w.database_password is not None:
        return variable_ref(w.database_password.variable)
    return f"${{random_password.{WEBMAIL_DB_PASSWORD_ID}.result}}"


def platform_context(cfg: PlatformConfig, *, vips: Mapping[Role, str], directory: DirectorySettings) -> Platform:
    """The platform's facts every layer renders from (`MailLayer` adds its own part); `vips`: role -> VIP address."""
    mail, net = cfg.mail, cfg.network
    webmail = None
    if cfg.layers.webmail is not None:
        w = cfg.webmail
        webmail = Webmail(
            database=Database(external_host=w.database_host, password=Secret(ref=webmail_db_password_ref(cfg))),
            sogo_repo_url=w.sogo_repo_url,
            sogo_repo_gpg_key=w.sogo_repo_gpg_key,
            timezone=w.timezone,
            prefork=w.prefork,
            vmem_limit_mb=w.vmem_limit_mb,
        )
    tls = Tls()
    if cfg.tls.certificate is not None and cfg.tls.private_key is not None:
        tls = Tls(source=cfg.tls.source,
                  certificate=Secret(ref=variable_ref(cfg.tls.certificate.variable)),
                  private_key=Secret(ref=variable_ref(cfg.tls.private_key.variable)))
    return Platform(
        stack_name=cfg.name,
        domains=cfg.domains,
        dns_zone=cfg.dns.zone,
        directory=directory,
        vips=Vips(smtp_in=vips[Role.SMTP_IN], smtp_out=vips[Role.SMTP_OUT], mailstore=vips[Role.MAILSTORE],
                  webmail=vips.get(Role.WEBMAIL, "")),
        networks=Networks(
            servers={r: (lc.subnet_cidr or net.subnet_cidr,) for r, lc in cfg.layers.items()}
            | {Role.NFS_SERVER: (net.subnet_cidr,)},
            vip_subnet=(net.vip_subnet_cidr,),
            clients=net.client_cidrs,
            admin=net.admin_cidrs,
        ),
        limits=Limits(message_size_limit=mail.message_size_limit),
        spam=SpamPolicy(
            tag2_level=mail.spam.tag2_level,
            kill_level=mail.spam.kill_level,
            dsn_cutoff_level=mail.spam.dsn_cutoff_level,
            amavis_processes=mail.spam.amavis_processes,
            quarantine_days=mail.spam.quarantine_days,
            dnsbls=mail.spam.dnsbls,
            spf_mail_from_reject="SPF_Not_Pass" if mail.spam.spf_reject_softfail else "Fail",
        ),
        antivirus=AntivirusPolicy(database_mirror=mail.antivirus.database_mirror,
                                  private_mirror=mail.antivirus.private_mirror),
        quota=QuotaPolicy(default_storage=mail.quota.default_storage, default_messages=mail.quota.default_messages,
                          trash_extra=mail.quota.trash_extra, over_quota=mail.quota.over_quota),
        fts=mail.fts,
        solr_url=mail.solr_url,
        # One DKIM key for the platform, given to every smtp-out server (the seed made one per server); it
        # signs every mail domain's mail, and each domain's selector is a CNAME to its one published record.
        dkim=DkimKey(selector=mail.dkim_selector,
                     private_key=Secret(ref=f"${{tls_private_key.{DKIM_KEY_ID}.private_key_pem}}")),
        tls=tls,
        webmail=webmail,
        mta_sts=MtaStsSettings(mode=mail.mta_sts.mode, max_age=mail.mta_sts.max_age),
    )
