"""A construct that writes a reference to a Terraform variable declares the variable.

A `MailLayer` built from a `PlatformContext` of the user's own (not from an `AdBinding`, which declares
`ad_bind_password` with its validation) would otherwise reference `var.ad_bind_password` in user-data with
no `variable` block, and `terraform init`/`plan` would fail with "Reference to undeclared input variable".
"""

from __future__ import annotations

import re

from cdktf import TerraformStack, TerraformVariable
from constructs import Construct

_REF = re.compile(r"\$\{([^{}]*)\}")
_VAR = re.compile(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)")


def referenced_variables(text: str) -> list[str]:
    """The variables named in the Terraform references (`${...}`) of `text`, sorted."""
    return sorted({name for ref in _REF.findall(text) for name in _VAR.findall(ref)})


def declared_variables(stack: TerraformStack) -> set[str]:
    """Names (logical IDs) of the variables already declared anywhere in `stack`."""
    return {c.friendly_unique_id for c in stack.node.find_all() if isinstance(c, TerraformVariable)}


def declare_variables(scope: Construct, text: str) -> list[str]:
    """Declare, at the stack's top level, each variable `text` references that the stack does not declare yet:
    a sensitive, non-null string (the only variables mailstrata references are secrets). Returns their names."""
    stack = TerraformStack.of(scope)
    missing = [name for name in referenced_variables(text) if name not in declared_variables(stack)]
    for name in missing:
        var = TerraformVariable(stack, f"variable-{name}", type="string", sensitive=True, nullable=False,
                                description=f"Secret referenced by mailstrata's user-data. Set TF_VAR_{name}.")
        var.override_logical_id(name)
    return missing

