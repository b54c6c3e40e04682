"""Puts a role's rendered cloud-config into Terraform: one `locals` list of lines per layer, and a
per-server `user_data` expression that prepends the server's host name. Shared by MailLayer and NfsShare.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformLocal
from constructs import Construct

from mailstrata.errors import ConfigError
from mailstrata.userdata import limits
from mailstrata.userdata.context import LayerContext
from mailstrata.userdata.limits import NOVA_USER_DATA_LIMIT
from mailstrata.userdata.render import LayerUserData, render_layer
from mailstrata.userdata.terraform_text import escape, user_data_expression

__all__ = ["NOVA_USER_DATA_LIMIT", "AttachedUserData", "attach_user_data"]


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


def attach_user_data(scope: Construct, ctx: LayerContext, os: str, name_prefix: str, where: str) -> AttachedUserData:
    """Render `ctx.role`'s cloud-config and store its body as a Terraform local (a list of lines)."""
    rendered = render_layer(ctx, os)
    body = rendered.body_text()
    local_name = f"user_data_{name_prefix.replace('-', '_')}_{ctx.role.value}"
    # What Terraform will hand Nova, with random stand-ins of the real size for every reference.
    size, gzip = limits.estimate(body, ctx)
    if size > NOVA_USER_DATA_LIMIT:
        raise ConfigError([limits.too_big(where, size, ctx, os)])
    local = TerraformLocal(scope, "user-data", escape(body).rstrip("\n").split("\n"))
    local.override_logical_id(local_name)
    return AttachedUserData(rendered, local_name, gzip, size, ctx.platform.dns_zone)
