"""Two constructs must never write one Terraform address: cdktf merges them into one JSON object, so one
resource silently disappears (`zone-ab.c.dom` and `zone-a.bc.dom` both become `zone-abcdom`)."""

from __future__ import annotations

from cdktf import TerraformStack, TerraformVariable


def terraform_name_collisions(stack: TerraformStack) -> list[tuple[str, list[str]]]:
    """Terraform addresses (`openstack_dns_zone_v2.zone-abcdom`, `var.x`, `local.x`) that two constructs of
    `stack` would both write. cdktf merges such elements into one JSON object, so one of them silently
    disappears or both blend. Each entry: the address and the construct paths that share it."""
    from cdktf import TerraformDataSource, TerraformLocal, TerraformOutput, TerraformResource

    seen: dict[str, list[str]] = {}
    for c in stack.node.find_all():
        if isinstance(c, TerraformResource):
            kind = c.terraform_resource_type
        elif isinstance(c, TerraformDataSource):
            kind = f"data.{c.terraform_resource_type}"
        elif isinstance(c, TerraformVariable):
            kind = "var"
        elif isinstance(c, TerraformLocal):
            kind = "local"
        elif isinstance(c, TerraformOutput):
            kind = "output"
        else:
            continue
        seen.setdefault(f"{kind}.{c.friendly_unique_id}", []).append(c.node.path)
    return [(address, paths) for address, paths in sorted(seen.items()) if len(paths) > 1]


def refuse_name_collisions(stack: TerraformStack) -> None:
    """Raise one `ConfigError` naming every Terraform address two constructs of `stack` share."""
    from mailstrata.errors import ConfigError, Problem

    problems = [
        Problem(path, f"would write the same Terraform address as {paths[0]}, got {address}; give the two "
                      "constructs ids that differ in letters or digits (Terraform names keep only letters, digits, "
                      "- and _)")
        for address, paths in terraform_name_collisions(stack) for path in paths[1:]
    ]
    if problems:
        raise ConfigError(problems)
