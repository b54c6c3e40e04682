"""Sample values standing in for what Terraform supplies at apply time, and the rendered layers.

The rendered text comes from `render_layer` with a context like the default platform's; the lead will
switch this to read `cdk.tf.json` of the default synth once the stack exists.
"""

from __future__ import annotations

import re
from functools import cache

from mailstrata.directory import DirectorySettings, LdapTls
from mailstrata.roles import Role
from mailstrata.userdata.context import (
    Database,
    DkimKey,
    Networks,
    NfsMount,
    PlatformContext,
    Secret,
    Vips,
    Webmail,
)
from mailstrata.userdata.render import render_layer
from mailstrata.userdata.terraform_text import escape

SAMPLE_DKIM_KEY = "SAMPLE-DKIM-KEY"  # replaced by a real PEM in tests that need one
SAMPLE_VALUES: dict[str, str] = {
    "var.ad_bind_password": "Bind-Pa55word",
    "random_password.webmail_db.result": "Db-Pa55word",
    "vip.smtp_in": "10.20.0.10",
    "vip.smtp_out": "10.20.0.11",
    "vip.mailstore": "10.20.0.12",
    "vip.webmail": "10.20.0.13",
    "nfs.export": "10.10.5.20:/NFSVOL",
}

DIRECTORY = DirectorySettings(
    urls=("ldaps://dc1.domain01.dom:636",),
    tls=LdapTls.LDAPS,
    base_dn="dc=domain01,dc=dom",
    bind_dn="cn=correoapp,ou=mailapps,dc=domain01,dc=dom",
    bind_password="${var.ad_bind_password}",
    domains=("domain01.dom", "domain02.dom"),
)


def context(role: Role) -> PlatformContext:
    return PlatformContext(
        role=role,
        stack_name="mail",
        domains=DIRECTORY.domains,
        dns_zone="cloud0.hc.mycompany.dom",
        directory=DIRECTORY,
        vips=Vips(
            smtp_in="${vip.smtp_in}",
            smtp_out="${vip.smtp_out}",
            mailstore="${vip.mailstore}",
            webmail="${vip.webmail}",
        ),
        networks=Networks(
            servers={
                Role.SMTP_IN: ("10.10.1.0/24",),
                Role.SMTP_OUT: ("10.10.2.0/24",),
                Role.MAILSTORE: ("10.10.3.0/24",),
                Role.WEBMAIL: ("10.10.4.0/24",),
                Role.NFS_SERVER: ("10.10.5.0/24",),
            },
            vip_subnet=("10.20.0.0/24",),
            clients=("10.0.0.0/8",),
            admin=("10.99.0.0/24",),
        ),
        proxy_ports={
            Role.SMTP_IN: frozenset({25}),
            Role.SMTP_OUT: frozenset({25, 587}),
            Role.MAILSTORE: frozenset({110, 143, 993, 995, 4190}),
        }.get(role, frozenset()),
        dkim=tuple(
            DkimKey(domain=d, selector="mail2026", private_key=Secret(ref=f"${{tls_private_key.dkim_{i}.private_key_pem}}"))
            for i, d in enumerate(DIRECTORY.domains)
        ),
        nfs=NfsMount(source="${nfs.export}") if role is Role.MAILSTORE else None,
        webmail=Webmail(database=Database(password=Secret(ref="${random_password.webmail_db.result}")))
        if role is Role.WEBMAIL
        else None,
    )


_REF = re.compile(r"(?<!\$)\$\{([^{}]*)\}")


def _resolve(expr: str) -> str:
    if expr.startswith("base64encode(") and "private_key_pem" in expr:
        import base64

        return base64.b64encode(SAMPLE_DKIM_KEY.encode()).decode()
    return SAMPLE_VALUES[expr]


@cache
def cloud_config_text(role: Role) -> str:
    """The full cloud-config of the role's first server, references resolved like Terraform would."""
    body = render_layer(context(role)).body_text()
    header = f"#cloud-config\nhostname: {role.slug}-01\nfqdn: {role.slug}-01.cloud0.hc.mycompany.dom\n"
    text = escape(header + body)
    return _REF.sub(lambda m: _resolve(m.group(1)), text).replace("$${", "${").replace("%%{", "%{")
