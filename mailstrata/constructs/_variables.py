"""A construct that writes a reference to a Terraform variable declares the variable.

A `MailLayer` built from a `Platform` of the user's own (not from an `AdBinding`, which declares
`ad_bind_password` with its validation) would otherwise reference `var.ad_bind_password` in user-data with
no `variable` block, and `terraform init`/`plan` would fail with "Reference to undeclared input variable".

The variables mailstrata declares are claimed in the stack's `TerraformNames` (`_names.py`): asking cdktf
means a round trip per construct of the stack, so it is asked only about a name not claimed there.
"""

from __future__ import annotations

import re

from cdktf import TerraformStack, TerraformVariable
from constructs import Construct

from mailstrata.constructs._names import names_of

_REF = re.compile(r"\$\{([^{}]*)\}")
_VAR = re.compile(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)")


def referenced_variables(text: str) -> list[str]:
    """The variables named in the Terraform references (`${...}`) of `text`, sorted."""
    return sorted({name for ref in _REF.findall(text) for name in _VAR.findall(ref)})


def _walked_variables(stack: TerraformStack) -> set[str]:
    """Names of the variables in `stack`, asked of cdktf (one round trip per construct: only on a miss)."""
    return {c.friendly_unique_id for c in stack.node.find_all() if isinstance(c, TerraformVariable)}


def is_declared(stack: TerraformStack, name: str) -> bool:
    """Whether `stack` declares the variable `name`: mailstrata's own declarations are claimed in the stack's
    `TerraformNames`; a name not claimed there is looked up in the whole stack, in case it was declared some
    other way (e.g. a `TerraformVariable` of the user's own)."""
    return name in names_of(stack).variables() or name in _walked_variables(stack)


def declare_variables(scope: Construct, text: str) -> list[str]:
    """Declare, at the stack's top level, each variable `text` references that the stack does not declare yet:
    a sensitive, non-null string (the only variables mailstrata references are secrets). Returns their names."""
    referenced = referenced_variables(text)
    if not referenced:
        return []
    stack = TerraformStack.of(scope)
    names = names_of(stack)
    missing = [name for name in referenced if name not in names.variables()]
    if missing:  # not declared by mailstrata: maybe by someone else
        walked = _walked_variables(stack)
        missing = [name for name in missing if name not in walked]
    for name in missing:
        var = TerraformVariable(stack, f"variable-{name}", type="string", sensitive=True, nullable=False,
                                description=f"Secret referenced by mailstrata's user-data. Set TF_VAR_{name}.")
        var.override_logical_id(name)
        names.claim("var", f"variable-{name}", logical=name)
    return missing


DRAIN_VARIABLE = "mailstrata_drain"
OFFLINE_VARIABLE = "mailstrata_offline"


def _server_list_variable(scope: Construct, name: str, description: str) -> str:
    """`var.<name>`, a list of server names, declared once per stack (empty by default)."""
    stack = TerraformStack.of(scope)
    names = names_of(stack)
    if name not in names.variables() and name not in _walked_variables(stack):
        var = TerraformVariable(stack, f"variable-{name}", type="list(string)", default=[], nullable=False,
                                description=description)
        var.override_logical_id(name)
        names.claim("var", f"variable-{name}", logical=name)
    return f"var.{name}"


def drain_variable(scope: Construct) -> str:
    """`var.mailstrata_drain`: the servers a rollout is draining (by name). Their load balancer members get
    weight 0 (Octavia keeps their sessions and sends them no new ones) and their metadata says so.
    `mailstrata rollout` sets it for the step it runs; a plain deploy leaves it empty, so every server is in
    service."""
    return _server_list_variable(scope, DRAIN_VARIABLE,
                                 "Servers a rollout is draining (set by `mailstrata rollout`; leave it empty).")


def offline_variable(scope: Construct) -> str:
    """`var.mailstrata_offline`: the servers a rollout is replacing right now (by name). Their load balancer
    members get `admin_state_up = false`: a weight-0 member still takes the clients that source-IP persistence
    sticks to it (HAProxy's `weight`: "will still accept persistent connections"); a disabled one takes none,
    and those clients go to another member. A plain deploy leaves it empty."""
    return _server_list_variable(scope, OFFLINE_VARIABLE,
                                 "Servers a rollout is replacing (set by `mailstrata rollout`; leave it empty).")
