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

    def expression(self, hostname: str, extra_head: tuple[str, ...] = ()) -> str:
        """The `user_data` of one server: its host name (and `extra_head`, the server's own cloud-config keys,
        which the shared body never uses), then the layer's shared body."""
        return user_data_expression(self._head(hostname, extra_head), self.local_name, gzip_it=self.gzip)

    def sha256_expression(self, hostname: str, extra_head: tuple[str, ...] = ()) -> str:
        """`${sha256(<the server's user_data>)}`: Terraform's hash of exactly what Nova receives, so a change of
        the rendered files, of a secret variable or of an address the user-data names changes it."""
        expr = self.expression(hostname, extra_head)
        return "${sha256(" + expr[2:-1] + ")}"

    def _head(self, hostname: str, extra_head: tuple[str, ...]) -> list[str]:
        return [
            "#cloud-config",
            f"hostname: {hostname}",
            f"fqdn: {hostname}.{self.dns_zone}",
            # CentOS 7's cloud-init (19.4) already prefers the FQDN; newer ones need to be told.
            "prefer_fqdn_over_hostname: true",
            "manage_etc_hosts: true",
            *extra_head,
        ]


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
