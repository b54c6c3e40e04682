"""The smtp_out role: the platform's authenticated relay. A composition of Postfix, saslauthd, ClamAV and OpenDKIM.

Mail flow: users submit on 587 (STARTTLS required, then SASL AUTH checked by saslauthd against the
directory); webmail and the mailstores' bounces arrive on 25 without AUTH, trusted by `mynetworks`
(the LB pools send the PROXY protocol on both ports, so Postfix sees the real client and `mynetworks`
means something behind the LB). Every message goes through clamav-milter (its own clamd) and OpenDKIM
(signing only, with the platform's one key for every served domain, the same on every server). Mail for
the platform's own domains goes to the mailstore (delivery) VIP through the transport map; everything
else goes to the Internet.

Choices where the issue is silent, each with its reason:
- Submission requires AUTH even from `mynetworks` (RFC 6409), and an authenticated user may only use
  an envelope sender whose directory entry is theirs (`smtpd_sender_login_maps`, LDAP, answers the
  login and the address, so both login forms work); port 25 offers no AUTH at all.
- `milter_default_action = tempfail` (in `daemons/postfix.py`): if a milter is down, mail waits in the
  client's queue instead of leaving unscanned or unsigned (an unsigned message fails DMARC at the receiver,
  silently for the user). clamav-milter keeps the seed's `OnFail Accept` for clamd errors and scan
  timeouts, which are transient and frequent (signature reloads, huge archives).
- SASL (saslauthd, LDAP) and DKIM signing (OpenDKIM, one platform key for every served domain): their
  choices live with them, in `daemons/saslauthd.py` and `daemons/opendkim.py`. OpenDKIM signs mail from
  `mynetworks` (InternalHosts) and everything submitted on 587 (MacroList daemon_name|ORIGINATING).
- Virus scanning (clamav-milter and its own clamd, on a unix socket; infected mail is refused with the
  virus name): its choices live with it, in `daemons/clamav.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstrata.roles import Role
from mailstrata.userdata.context import LayerContext
from mailstrata.userdata.daemons import clamav, opendkim, postfix, saslauthd
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile

# What the milters see first and in this order: the virus scan may reject, so nothing is signed in vain.
MILTER_ORDER = ("clamav", "opendkim")
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


def internal_networks(ctx: LayerContext) -> tuple[str, ...]:
    """Who may relay without AUTH, and whose mail OpenDKIM signs: this host, webmail and the mailstores.

    Never the VIP subnet: the LB sends PROXY, so the LB's own address is never the client.
    """
    return (postfix.LOOPBACK_NET, *ctx.platform.networks.of(Role.WEBMAIL, Role.MAILSTORE))


def files(ctx: LayerContext, os: OsProfile) -> list[FileSpec]:
    p, u = os.paths, os.users
    internal = internal_networks(ctx)
    milters = {"clamav": clamav.milter_socket(os), "opendkim": opendkim.milter_socket(os)}
    mta = postfix.relay(ctx, os, postfix.Submission(
        sasl_config_dir=str(p.sasl_config_dir),
        mynetworks=internal,
        smtpd_milters=tuple(milters[m] for m in MILTER_ORDER),
        non_smtpd_milters=(milters["opendkim"],),  # mail made on this host is only signed
        originating=ORIGINATING,
    ))
    return [
        *mta.files(ctx, os),
        *saslauthd.files(ctx.platform.directory, os),
        *clamav.milter_files(ctx.platform.limits, os),
        *opendkim.files(ctx, os, internal_hosts=internal, originating_daemon_name=ORIGINATING),
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
                )
            },
            mode="0755",
        ),
        opendkim.key_file(ctx, os),
    ]


def packages(ctx: LayerContext, os: OsProfile) -> list[str]:
    return []
