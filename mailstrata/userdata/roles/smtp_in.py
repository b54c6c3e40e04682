"""The smtp_in role: the MX. A composition of Postfix, amavisd-new, ClamAV, SpamAssassin and policyd-spf.

Mail flow on one server::

    Internet -> LB (PROXY pool) -> smtpd :25 (PROXY, STARTTLS; HELO/sender/recipient checks, LDAP
    recipient check, DNSBLs, SPF policy) -> queue -> smtp-amavis -> amavisd :10024 (SpamAssassin,
    ClamAV through its own clamd, INSTREAM) -> smtpd 127.0.0.1:10025 (re-injection) -> queue ->
    transport map -> smtp:[delivery VIP]:25

The values that must agree between daemons are handed from one room to the other here: the smtp-amavis
process limit and amavisd's `$max_servers` both come from `spam.amavis_processes`; the re-injection port is
both amavisd's `$forward_method` and a master.cf service; the ClamAV socket is both clamd's `LocalSocket`
and amavisd's scanner address.
"""

from __future__ import annotations

from mailstrata.errors import Problems
from mailstrata.userdata.context import LayerContext
from mailstrata.userdata.daemons import amavis, clamav, policyd_spf, postfix, spamassassin, spool
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile

AMAVIS_TRANSPORT = "smtp-amavis"  # the master.cf service that talks to amavisd
SPF_SERVICE = "policyd-spf"  # the master.cf spawn service of the SPF policy server


def validate(ctx: LayerContext) -> None:
    """Raise one ConfigError listing every smtp_in input the daemons would reject."""
    problems = Problems()
    if not ctx.platform.domains:
        problems.add("domains", "must list at least one mail domain, got none; the MX relays only for these")
    amavis.check(ctx.platform.spam, problems)
    policyd_spf.check(ctx.platform.spam, problems)
    postfix.check_dnsbls(ctx.platform.spam.dnsbls, problems)
    problems.raise_if_any()


def files(ctx: LayerContext, os: OsProfile) -> list[FileSpec]:
    validate(ctx)
    scanner = clamav.clamd(clamav.for_amavis(os), ctx.platform.limits, os)
    amavis_ctx = amavis.settings(ctx, os, clamd_socket=scanner.socket)
    mta = postfix.mx(
        ctx, os,
        content_filter=postfix.ContentFilter(transport=AMAVIS_TRANSPORT, port=amavis.AMAVIS_PORT,
                                             reinject_port=amavis.REINJECT_PORT,
                                             processes=amavis.processes(ctx.platform.spam)),
        spf=postfix.Spawned(service=SPF_SERVICE, spawn=policyd_spf.spawn_argv(os)),
    )
    return [
        *mta.files(ctx, os),
        *policyd_spf.files(ctx.platform.spam, os),
        amavis.conf_file(amavis_ctx, os),
        *clamav.scanner_files(scanner, ctx.platform.antivirus, os),
        *spamassassin.files(ctx.platform.spam, os),
        amavis.cleanup_cron_file(amavis_ctx, os),
        amavis.quarantine_tool_file(amavis_ctx),
        amavis.stop_dropin_file(os),
        # the slot's spool volume keeps the queue and the quarantine (issue 9: quarantined mail is released)
        *spool.files(ctx, os, (spool.postfix_queue(os), spool.amavis_quarantine(os))),
        FileSpec(
            dest=os.paths.role_script,
            template="smtp_in/usr/local/sbin/mailstrata-setup-role.j2",
            context={"ctx": ctx, "a": amavis_ctx, "transport": f"{os.paths.postfix_dir}/transport"},
            mode="0755",
        ),
    ]


def packages(ctx: LayerContext, os: OsProfile) -> list[str]:
    return []
