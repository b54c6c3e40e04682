"""Terraform names, worked out in Python: no round trip to cdktf's Node.js process per construct.

Two constructs must never write one Terraform address: cdktf merges them into one JSON object, so one
resource silently disappears (`zone-ab.c.dom` and `zone-a.bc.dom` both become `zone-abcdom`).

Which names can collide. cdktf names an element by its construct ids below the stack (`logical_id`, cdktf's
`makeUniqueId`): an element directly in the stack gets its id with every character other than letters,
digits, `-` and `_` removed, which two ids can share; an element deeper down gets a readable part plus a
hash of its whole path, which no other path shares. So only the stack's own elements and the ids set with
`override_logical_id` can collide, and mailstrata claims exactly those in the stack's `TerraformNames` as
it creates them (`claim`): the stack's zones, records, variables, keys and outputs, `AdBinding`'s password
variable and the variables `declare_variables` adds. (`_user_data`'s one local per layer is named after the
stack and the role, so two layers never share it.) `tests/constructs/test_names.py` checks these rules
against the ids cdktf itself gives, for every example config.
"""

from __future__ import annotations

import functools
import hashlib
import re

from cdktf import TerraformStack

_DISALLOWED = re.compile(r"[^A-Za-z0-9_-]")
_HIDDEN_ID = "Default"  # left out of the logical id altogether
_HIDDEN_FROM_HUMAN_ID = "Resource"  # left out of the readable part, kept in the hash
_MAX_ID_LEN = 255
_MAX_HUMAN_LEN = 240
_HASH_LEN = 8


def logical_id(*components: str) -> str:
    """The logical id cdktf 0.20 gives an element whose construct ids below its stack are `components`
    (`makeUniqueId` in cdktf's lib/private/unique.js): `zone-ab.c.dom` -> `zone-abcdom`,
    (`smtp-in`, `port-01`) -> `smtp-in_port-01_9FE6FF1B`."""
    parts = [c for c in components if c != _HIDDEN_ID]
    if not parts:
        raise ValueError("a logical id needs at least one construct id")
    if len(parts) == 1:
        candidate = _DISALLOWED.sub("", parts[0])
        if len(candidate) <= _MAX_ID_LEN:
            return candidate
    digest = hashlib.md5("/".join(parts).encode(), usedforsecurity=False).hexdigest()[:_HASH_LEN].upper()
    human: list[str] = []
    for part in parts:  # cdktf's removeDupes: a part the previous one ends with is left out
        if not human or not human[-1].endswith(part):
            human.append(part)
    readable = "_".join(_DISALLOWED.sub("", p) for p in human if p != _HIDDEN_FROM_HUMAN_ID)[:_MAX_HUMAN_LEN]
    return f"{readable}_{digest}"


@functools.cache
def resource_type(cls: type) -> str:
    """`openstack_dns_zone_v2` for `DnsZoneV2`: the class constant, read once per class."""
    return str(cls.TF_RESOURCE_TYPE)  # type: ignore[attr-defined]


class TerraformNames:
    """The Terraform addresses claimed in one stack, and the construct paths that claimed each."""

    def __init__(self, stack_path: str) -> None:
        self.stack_path = stack_path
        self._paths: dict[str, list[str]] = {}

    def claim(self, kind: str, construct_id: str, *, logical: str | None = None, under: str | None = None) -> str:
        """Record that the element `construct_id`, directly in the stack or in the construct at path `under`,
        writes `<kind>.<logical id>`. `logical`: the id it was given with `override_logical_id`; without it,
        the element is directly in the stack and named by cdktf's rule. `kind`: a resource type, `data.<type>`,
        `var`, `local` or `output`. Returns the address."""
        if logical is None:
            if under is not None:
                raise ValueError("an element below a construct is claimed only with the logical id it overrides")
            logical = logical_id(construct_id)
        address = f"{kind}.{logical}"
        self._paths.setdefault(address, []).append(f"{under or self.stack_path}/{construct_id}")
        return address

    def variables(self) -> set[str]:
        """The names of the variables claimed so far."""
        return {address[4:] for address in self._paths if address.startswith("var.")}

    def collisions(self) -> list[tuple[str, list[str]]]:
        """Each address two elements claimed, with their construct paths in the order they claimed it."""
        return [(address, paths) for address, paths in sorted(self._paths.items()) if len(paths) > 1]


def names_of(stack: TerraformStack) -> TerraformNames:
    """`stack`'s record of claimed names, made on first use (kept on the stack's Python object)."""
    names: TerraformNames | None = stack.__dict__.get("_mailstrata_names")
    if names is None:
        names = TerraformNames(stack.node.path)
        stack.__dict__["_mailstrata_names"] = names
    return names


def terraform_name_collisions(stack: TerraformStack) -> list[tuple[str, list[str]]]:
    """Terraform addresses (`openstack_dns_zone_v2.zone-abcdom`, `var.x`, `local.x`) that two elements claimed in
    `stack` would both write. cdktf merges such elements into one JSON object, so one of them silently
    disappears or both blend. Each entry: the address and the construct paths that share it."""
    return names_of(stack).collisions()


def refuse_name_collisions(stack: TerraformStack) -> None:
    """Raise one `ConfigError` naming every Terraform address two elements claimed in `stack` share."""
    from mailstrata.errors import ConfigError, Problem

    problems = [
        Problem(path, f"would write the same Terraform address as {paths[0]}, got {address}; give the two "
                      "constructs ids that differ in letters or digits (Terraform names keep only letters, digits, "
                      "- and _)")
        for address, paths in terraform_name_collisions(stack) for path in paths[1:]
    ]
    if problems:
        raise ConfigError(problems)
