"""The smtp_out role: the platform's authenticated relay. A composition of Postfix, saslauthd, ClamAV and OpenDKIM.

Mail flow: users, webmail (SOGo) included, submit on 587 through the LB's PROXY pool (STARTTLS required,
then SASL AUTH checked by saslauthd against the directory; no address is trusted there, since a PROXY
header can name any). The mailstores' bounces and sieve mail arrive on the internal relay port
(contract.RELAY) of each server directly, without AUTH: no LB and no PROXY header in between, so the
address is the mailstore's own, and the security group admits only the mailstores' group. Every message
goes through clamav-milter (its own clamd) and OpenDKIM (signing only, with the platform's one key for
every served domain, the same on every server). Mail for the platform's own domains goes to the mailstore
(delivery) VIP through the transport map; everything else goes to the Internet.

Choices where the issue is silent, each with its reason:
- Submission requires AUTH from everyone (RFC 6409), and an authenticated user may only use an envelope
  sender whose directory entry is theirs (`smtpd_sender_login_maps`, LDAP, answers the login and the
  address, so both login forms work); the internal relay offers no AUTH at all. There is no port 25.
- `milter_default_action = tempfail` (in `daemons/postfix.py`): if a milter is down, mail waits in the
  client's queue instead of leaving unscanned or unsigned (an unsigned message fails DMARC at the receiver,
  silently for the user). clamav-milter keeps the seed's `OnFail Accept` for clamd errors and scan
  timeouts, which are transient and frequent (signature reloads, huge archives).
- SASL (saslauthd, LDAP) and DKIM signing (OpenDKIM, one platform key for every served domain): their
  choices live with them, in `daemons/saslauthd.py` and `daemons/opendkim.py`. OpenDKIM signs mail from
  this host and the mailstores (InternalHosts) and everything submitted on 587 (MacroList
  daemon_name|ORIGINATING); webmail's mail is signed because it is submitted, not because of its address.
- Virus scanning (clamav-milter and its own clamd, on a unix socket; infected mail is refused with the
  virus name): its choices live with it, in `daemons/clamav.py`.
- The header From of submitted mail must be one of the logged-in user's own addresses (the milter
  `mailstrata-from-check`, between the virus scan and OpenDKIM, asking the envelope's sender-login map):
  its choices live with it, in `daemons/from_check.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstrata.roles import Role
from mailstrata.userdata.context import LayerContext
from mailstrata.userdata.daemons import clamav, from_check, opendkim, postfix, saslauthd, spool
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile

# What the milters see first and in this order: the virus scan and the header From check may reject, so
# nothing is signed in vain, and nothing the From check refuses is ever signed.
MILTER_ORDER = ("clamav", "from_check", "opendkim")
ORIGINATING = "ORIGINATING"  # submission's milter_macro_daemon_name: OpenDKIM signs what comes from it


@dataclass(frozen=True, kw_only=True)
class RoleScript:
    postmap: str
    newaliases: str
    hash_maps: tuple[str, ...]
    aliases: str
    opendkim_keys_dir: str
    opendkim_user: str
    clamav_milter_user: str
    clamd_socket_group: str
    freshclam: str
    from_check_user: str  # the header From milter's own system user
    nologin: str
    daemon_reload: str  # systemd learns the milter's unit before the services start


def relay_clients(ctx: LayerContext) -> tuple[str, ...]:
    """Who may relay without AUTH (on the internal relay port, which no LB and no PROXY header reach): the
    mailstores' networks; their security group narrows that to the mailstore servers themselves.

    Never webmail (SOGo submits on 587 with the user's login, like any client) and never the VIP subnet.
    """
    return ctx.platform.networks.of(Role.MAILSTORE)


def internal_networks(ctx: LayerContext) -> tuple[str, ...]:
    """Whose mail OpenDKIM signs without a submission login: this host and the internal relay's clients."""
    return (postfix.LOOPBACK_NET, *relay_clients(ctx))


def files(ctx: LayerContext, os: OsProfile) -> list[FileSpec]:
    p, u = os.paths, os.users
    internal = internal_networks(ctx)
    milters = {"clamav": clamav.milter_socket(os), "from_check": from_check.milter_socket(os),
               "opendkim": opendkim.milter_socket(os)}
    mta = postfix.relay(ctx, os, postfix.Submission(
        sasl_config_dir=str(p.sasl_config_dir),
        relay_clients=relay_clients(ctx),
        smtpd_milters=tuple(milters[m] for m in MILTER_ORDER),
        non_smtpd_milters=(milters["opendkim"],),  # mail made on this host is only signed
        originating=ORIGINATING,
    ))
    return [
        *mta.files(ctx, os),
        *saslauthd.files(ctx.platform.directory, os),
        *clamav.milter_files(ctx.platform.limits, ctx.platform.antivirus, os),
        *from_check.files(os),
        *opendkim.files(ctx, os, internal_hosts=internal, originating_daemon_name=ORIGINATING),
        *spool.files(ctx, os, (spool.postfix_queue(os),)),  # the slot's spool volume keeps the queue
        FileSpec(
            dest=os.paths.role_script,
            template="smtp_out/usr/local/sbin/mailstrata-setup-role.j2",
            context={
                "role": RoleScript(
                    postmap=str(os.commands.postmap),
                    newaliases=str(os.commands.newaliases),
                    hash_maps=(f"{p.postfix_dir}/transport",),
                    aliases=str(p.aliases),
                    opendkim_keys_dir=str(p.opendkim_keys_dir),
                    opendkim_user=str(u.opendkim),
                    clamav_milter_user=str(u.clamav_milter),
                    clamd_socket_group=str(u.clamd_socket_group),
                    freshclam=str(p.freshclam),
                    from_check_user=str(u.from_check),
                    nologin=str(p.nologin),
                    daemon_reload=str(os.commands.daemon_reload),
                )
            },
            mode="0755",
        ),
        opendkim.key_file(ctx, os),
    ]


def packages(ctx: LayerContext, os: OsProfile) -> list[str]:
    return []
