"""`platform_context`: what `MailLayerProps.platform` needs, for a stack of your own.

`MailPlatformStack` builds the `Platform` its layers render from out of the YAML config. A stack that
composes the constructs itself builds it with this helper from constructs it already has: the `AdBinding`
(which declares the sensitive bind-password variable the templates reference), the VIPs (`LbaasVip` objects,
or the address of a VIP outside the stack) and the networks' CIDRs.
"""

from __future__ import annotations

from collections.abc import Mapping

from mailstrata.constructs._validate import secrets_in
from mailstrata.constructs.ad_binding import AdBinding
from mailstrata.constructs.lbaas_vip import LbaasVip
from mailstrata.errors import Problems
from mailstrata.roles import MAIL_LAYER_ROLES, Role
from mailstrata.userdata.context import DkimKey, Networks, Platform, Vips, Webmail

# The other layers' VIPs each layer's daemons talk to (smtp-in hands clean mail to the mailstore, ...).
NEEDS: Mapping[Role, tuple[Role, ...]] = {
    Role.SMTP_IN: (Role.MAILSTORE,),
    Role.SMTP_OUT: (Role.MAILSTORE,),
    Role.MAILSTORE: (Role.SMTP_OUT,),
    Role.WEBMAIL: (Role.MAILSTORE, Role.SMTP_OUT),
}


def platform_context(
    *,
    name: str,
    directory: AdBinding,
    dns_zone: str,
    layers: Mapping[Role, tuple[str, ...]],
    vips: Mapping[Role, LbaasVip | str],
    vip_subnet_cidr: str,
    admin_cidrs: tuple[str, ...],
    client_cidrs: tuple[str, ...] = (),
    dkim: DkimKey | None = None,
    webmail: Webmail | None = None,
) -> Platform:
    """The platform as the templates of every layer in `layers` see it.

    `name`: the stack's name in the servers' metadata. `directory`: the AD binding; its mail domains are the
    platform's. `layers`: each layer this stack builds, with the CIDRs of its servers' subnet(s).
    `vips`: each layer's VIP, and the VIP of every layer they talk to (an `LbaasVip`, or the address of a VIP
    another stack made). `client_cidrs`: corporate clients (submission, IMAP, POP3). Default: none.
    `dkim`: the platform's DKIM signing key, required with an smtp-out layer. Default: none.
    `webmail`: SOGo's settings, required with a webmail layer. Default: none.

    A `MailLayer` fills in its own role, PROXY ports and NFS mount. Raises `ConfigError` listing every missing
    piece, e.g. ``platform_context.vips: has no mailstore VIP, which the smtp_in layer talks to; ...``, and every
    secret that is not a `Secret` holding a Terraform reference (`platform_context.dkim.private_key`).
    """
    p = Problems()
    for role in layers:
        if role not in MAIL_LAYER_ROLES:
            p.add("platform_context.layers", f"must hold mail layer roles only, got {role!r}; use one of "
                  f"{', '.join(r.value for r in MAIL_LAYER_ROLES)}")
            continue
        for other in (role, *NEEDS[role]):
            if other not in vips:
                p.add("platform_context.vips", f"has no {other.value} VIP, which the {role.value} layer "
                      f"{'is served by' if other is role else 'talks to'}; add Role.{other.name}: <LbaasVip or "
                      "its address>")
    if Role.WEBMAIL in layers and webmail is None:
        p.add("platform_context.webmail", "is required with a webmail layer; give Webmail(database=...)")
    if Role.SMTP_OUT in layers and dkim is None:
        p.add("platform_context.dkim", "is required with an smtp_out layer; give the platform's DkimKey")
    if not admin_cidrs:
        p.add("platform_context.admin_cidrs", "must list at least one admin network for SSH")
    secrets_in(p, "platform_context.dkim", dkim)  # a Secret holding a Terraform reference, never a plain str
    secrets_in(p, "platform_context.webmail", webmail)
    p.raise_if_any()

    def address(role: Role) -> str:
        vip = vips.get(role, "")
        return vip.vip_address if isinstance(vip, LbaasVip) else vip

    settings = directory.settings
    return Platform(
        stack_name=name,
        domains=settings.domains,
        dns_zone=dns_zone,
        directory=settings,
        vips=Vips(smtp_in=address(Role.SMTP_IN), smtp_out=address(Role.SMTP_OUT),
                  mailstore=address(Role.MAILSTORE), webmail=address(Role.WEBMAIL)),
        networks=Networks(servers=dict(layers), vip_subnet=(vip_subnet_cidr,), clients=client_cidrs,
                          admin=admin_cidrs),
        dkim=dkim,
        webmail=webmail,
    )
