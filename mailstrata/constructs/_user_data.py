"""Puts a role's rendered cloud-config into Terraform: one `locals` list of lines per layer, and a
per-server `user_data` expression that prepends the server's host name. Shared by MailLayer and NfsShare.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cdktf import TerraformLocal
from constructs import Construct

from mailstrata.errors import ConfigError, Problem
from mailstrata.userdata.context import PlatformContext
from mailstrata.userdata.render import LayerUserData, render_layer
from mailstrata.userdata.terraform_text import escape, size_after_base64, user_data_expression

NOVA_USER_DATA_LIMIT = 65535  # bytes after base64, Nova's cap
_REF = re.compile(r"\$\{[^{}]*\}")
# Room left for each Terraform reference when estimating the size before apply (an IPv4 address is
# 15 bytes, a generated password 32); whole-file secrets (PEM keys) are counted at 4 KiB.
_REF_ESTIMATE = 64
_PEM_ESTIMATE = 4096


@dataclass(frozen=True)
class AttachedUserData:
    rendered: LayerUserData
    local_name: str
    gzip: bool
    size: int  # estimated bytes Nova counts (after base64, and gzip when used)
    dns_zone: str

    def expression(self, hostname: str) -> str:
        """The `user_data` of one server: its host name, then the layer's shared body."""
        head = [
            "#cloud-config",
            f"hostname: {hostname}",
            f"fqdn: {hostname}.{self.dns_zone}",
            # CentOS 7's cloud-init (19.4) already prefers the FQDN; newer ones need to be told.
            "prefer_fqdn_over_hostname: true",
            "manage_etc_hosts: true",
        ]
        return user_data_expression(head, self.local_name, gzip_it=self.gzip)


def _estimate(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        return "x" * (_PEM_ESTIMATE if "private_key_pem" in m.group(0) else _REF_ESTIMATE)

    return _REF.sub(one, text)


def attach_user_data(scope: Construct, ctx: PlatformContext, os: str, name_prefix: str, where: str) -> AttachedUserData:
    """Render `ctx.role`'s cloud-config and store its body as a Terraform local (a list of lines)."""
    rendered = render_layer(ctx, os)
    body = rendered.body_text()
    local_name = f"user_data_{name_prefix.replace('-', '_')}_{ctx.role.value}"
    sample = "#cloud-config\nhostname: " + "h" * 40 + "\nfqdn: " + "h" * 80 + "\n" + body
    estimate = _estimate(sample)
    gzip = size_after_base64(estimate, gzip_it=False) > NOVA_USER_DATA_LIMIT
    size = size_after_base64(estimate, gzip_it=gzip)
    if size > NOVA_USER_DATA_LIMIT:
        raise ConfigError([Problem(
            where,
            f"user data is {size} bytes after gzip and base64, over Nova's limit of {NOVA_USER_DATA_LIMIT}; "
            "turn off optional features of this layer",
        )])
    local = TerraformLocal(scope, "user-data", escape(body).rstrip("\n").split("\n"))
    local.override_logical_id(local_name)
    return AttachedUserData(rendered, local_name, gzip, size, ctx.dns_zone)
