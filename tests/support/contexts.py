"""Small building blocks for construct tests: a stack, a platform context, synth to a dict."""

from __future__ import annotations

import json
from typing import Any

from cdktf import App, TerraformStack, Testing

from mailstrata.directory import DirectorySettings, LdapTls
from mailstrata.roles import Role
from mailstrata.userdata.context import Database, Networks, Platform, Secret, Vips, Webmail

DIRECTORY = DirectorySettings(
    urls=("ldaps://dc1.domain01.dom:636",),
    tls=LdapTls.LDAPS,
    base_dn="dc=domain01,dc=dom",
    bind_dn="cn=correoapp,ou=mailapps,dc=domain01,dc=dom",
    bind_password=Secret(ref="${var.ad_bind_password}"),
    domains=("domain01.dom", "domain02.dom"),
)


def platform_context(vips: Vips | None = None) -> Platform:
    return Platform(
        stack_name="t",
        domains=DIRECTORY.domains,
        dns_zone="cloud0.example.dom",
        directory=DIRECTORY,
        vips=vips or Vips(smtp_in="10.20.0.10", smtp_out="10.20.0.11", mailstore="10.20.0.12", webmail="10.20.0.13"),
        networks=Networks(
            servers={r: ("10.10.0.0/24",) for r in Role},
            vip_subnet=("10.20.0.0/24",),
            clients=("10.0.0.0/8",),
            admin=("10.99.0.0/24",),
        ),
        webmail=Webmail(database=Database(password=Secret(ref="${random_password.webmail_db.result}"))),
    )


def new_stack(name: str = "t") -> TerraformStack:
    app: App = Testing.app()
    return TerraformStack(app, name)


def synth(stack: TerraformStack) -> dict[str, Any]:
    return json.loads(Testing.synth(stack))


def of_type(doc: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return list(doc.get("resource", {}).get(rtype, {}).values())
