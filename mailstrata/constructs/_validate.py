"""Small pure validators for construct props. Each returns problems, never raises on its own.

Unresolved Terraform tokens (`${...}`) are skipped, not guessed at.

`check_props` is the first check of every construct: the type of each prop (enums, construct objects,
tuples, whole numbers), so a Python mistake gets the same one-exception grammar as a config mistake
(`props.role: must be a Role, got 'smtp_in'; use Role.SMTP_IN`) instead of an AttributeError deep inside.
Every field typed `Secret`, in the props or in a value object they hold (`Platform.tls.private_key`),
must be a `Secret` holding a Terraform reference: a plain str is refused, and its text is never shown.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import types
from collections.abc import Mapping
from enum import Enum
from functools import cache
from typing import Any, Union, get_args, get_origin, get_type_hints

from constructs import Construct

from mailstrata.errors import Problems
from mailstrata.types import Secret

# Terraform identifiers the constructs build from a prop (variable and local names).
NAME_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
VARIABLE = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
RESERVED_VARIABLES = frozenset({"source", "version", "providers", "count", "for_each", "lifecycle", "depends_on",
                                "locals"})
MAX_SIZE_GB = 2_147_483_647  # Cinder's and Manila's limit for a size


def is_token(value: object) -> bool:
    return isinstance(value, str) and "${" in value


def network_port(p: Problems, path: str, value: int) -> None:
    if not 1 <= value <= 65535:
        p.add(path, f"must be a TCP port between 1 and 65535, got {value}")


def at_least(p: Problems, path: str, value: int, minimum: int) -> None:
    if value < minimum:
        p.add(path, f"must be at least {minimum}, got {value}")


def at_most(p: Problems, path: str, value: int, maximum: int, minimum: int = 1) -> None:
    if value > maximum:
        p.add(path, f"must be at most {maximum}, got {value}; use a whole number from {minimum} to {maximum}")


def cidr(p: Problems, path: str, v: str) -> None:
    if is_token(v):
        return
    if "/" not in v:  # ipaddress would read a bare address as a /32
        p.add(path, f"has no prefix length, got {v!r}; write the network with its prefix, e.g. 10.0.0.0/24, or "
                    f"{v}/32 for this one address")
        return
    try:
        ipaddress.ip_network(v, strict=True)
    except ValueError:
        p.add(path, f"must be a CIDR such as 10.0.0.0/24, got {v!r}")


def cidrs(p: Problems, path: str, values: tuple[str, ...]) -> None:
    for i, v in enumerate(values):
        cidr(p, f"{path}[{i}]", v)


def non_empty(p: Problems, path: str, value: str | None, *, optional: bool = False) -> None:
    if value is not None and not is_token(value) and not value.strip():
        p.add(path, f"must not be empty, got {value!r}; give a value{', or None to leave it out' if optional else ''}")


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def openstack_id(p: Problems, path: str, value: str | None, what: str) -> None:
    """terraform-provider-openstack takes an ID (a UUID) here, never a name; a reference is skipped."""
    if value is None or is_token(value) or not value.strip() or _UUID.match(value):
        return
    p.add(path, f"is not a {what} ID (a UUID), got {value!r}; give its ID (`openstack {what} show -f value -c id "
                f"NAME`), or the `.id` of a data source or resource that looks it up")


def name_prefix(p: Problems, path: str, value: str) -> None:
    """The prefix of OpenStack names and of Terraform local names: it must be a valid identifier part."""
    if not NAME_PREFIX.match(value):
        p.add(path, f"must be lower-case letters, digits and -, starting with a letter, at most 31 characters, got "
                    f"{value!r}; use e.g. 'mail'")


def variable_name(p: Problems, path: str, value: str) -> None:
    if not VARIABLE.match(value):
        p.add(path, f"must be a Terraform variable name (lower-case letters, digits and _), got {value!r}; use e.g. "
                    "'ad_bind_password'")
    elif value in RESERVED_VARIABLES:
        p.add(path, f"is a name Terraform reserves for itself, got {value!r}; use e.g. 'mail_{value}'")


# ---- prop types ---------------------------------------------------------------------------------------


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)  # each props module imports the construct classes its fields name


def describe(value: object) -> str:
    if isinstance(value, Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, str):
        return f"the text {value!r}" if len(value) < 60 else "a text"
    if isinstance(value, bool | int | float) or value is None:
        return repr(value)
    if isinstance(value, Construct):
        return f"the {type(value).__name__} construct {value.node.id!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a dict"
    return f"a {type(value).__name__}"


def _name(tp: Any) -> str:
    if isinstance(tp, type):
        if issubclass(tp, Construct):
            return f"an {tp.__name__} construct" if tp.__name__[0] in "AEIOU" else f"a {tp.__name__} construct"
        return {int: "a whole number (int)", str: "text (str)", bool: "True or False", float: "a number"}.get(
            tp, f"{'an' if tp.__name__[0] in 'AEIOU' else 'a'} {tp.__name__}")
    origin = get_origin(tp)
    if origin is tuple:
        item = _name(get_args(tp)[0]).removeprefix("a ").removeprefix("an ")
        return f"a tuple of {item}s" if item.endswith("construct") else f"a tuple of {item}"
    return str(tp)


def _matches(value: object, tp: Any) -> bool:
    """Whether `value` is a `tp`, items included (no message)."""
    return not _check(Problems(), "", value, tp)


def _check(p: Problems, path: str, value: object, tp: Any) -> bool:
    """Add a problem when `value` is not a `tp`; return whether one was added."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return False
        options = [a for a in args if a is not type(None)]
        if any(_matches(value, a) for a in options):
            return False
        if len(options) == 1:
            return _check(p, path, value, options[0])
        p.add(path, f"must be {' or '.join(_name(a) for a in options)}, got {describe(value)}")
        return True
    if origin is tuple:
        item = get_args(tp)[0]
        if not isinstance(value, tuple):
            example = f"({value!r},)" if isinstance(value, str | Enum) else "(a, b)"
            if dataclasses.is_dataclass(value):
                example = f"({type(value).__name__}(...),)"
            elif isinstance(value, list):
                example = "a tuple instead: tuple(the_list)"
            elif isinstance(value, Construct):
                example = f"a one-item tuple holding the object: (<the {type(value).__name__}>,)"
            p.add(path, f"must be {_name(tp)}, got {describe(value)}; write {example}")
            return True
        found = False
        for i, v in enumerate(value):
            found = _check(p, f"{path}[{i}]", v, item) or found
        return found
    if origin in (frozenset, set):
        if not isinstance(value, frozenset | set):
            p.add(path, f"must be a frozenset, got {describe(value)}; write frozenset({{...}})")
            return True
        return False
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        if not isinstance(value, Mapping):
            p.add(path, f"must be a mapping, got {describe(value)}")
            return True
        return False
    if tp is Any:
        return False
    if tp is Secret:
        return secret(p, path, value)
    if not isinstance(tp, type):
        return False  # an annotation this checker does not know: leave it to the construct
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, tp)
    if ok:
        if dataclasses.is_dataclass(tp) and tp.__module__.startswith("mailstrata.constructs"):
            before = len(p)
            check_props(p, value, tp, path)  # type: ignore[arg-type]
            return len(p) > before
        if dataclasses.is_dataclass(tp):  # a value object (Platform, ...): only its secrets are checked
            before = len(p)
            secrets_in(p, path, value)
            return len(p) > before
        return False
    p.add(path, f"must be {_name(tp)}, got {describe(value)}; {_fix(value, tp)}")
    return True


def secret(p: Problems, path: str, value: object) -> bool:
    """`value` is a `Secret` holding a Terraform reference; add a problem (never showing the text) if not."""
    fix = ('keep the value in a sensitive Terraform variable and write Secret(ref="${var.<name>}") (from '
           "mailstrata.types import Secret)")
    if isinstance(value, str):
        p.add(path, f"must be a Secret, never a plain str, got a text (not shown); {fix}")
    elif not isinstance(value, Secret):
        p.add(path, f"must be a Secret, got {describe(value)}; {fix}")
    elif not isinstance(value.ref, str) or not is_token(value.ref):
        got = "a literal text (not shown)" if isinstance(value.ref, str) else describe(value.ref)
        p.add(f"{path}.ref", f"must be a Terraform reference such as ${{var.<name>}}, got {got}; {fix}")
    else:
        return False
    return True


def _mentions_secret(tp: Any) -> bool:
    return tp is Secret or (get_origin(tp) in (Union, types.UnionType) and Secret in get_args(tp))


def secrets_in(p: Problems, path: str, value: object) -> None:
    """Check every `Secret` field of the dataclass `value`, and of the dataclasses it holds."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return
    hints = _hints(type(value))
    for f in dataclasses.fields(value):
        item, tp = getattr(value, f.name), hints.get(f.name)
        if _mentions_secret(tp):
            if item is not None or type(None) not in get_args(tp):
                secret(p, f"{path}.{f.name}", item)
        else:
            secrets_in(p, f"{path}.{f.name}", item)


# Props types a user does not write by hand: the public helper that builds one.
_BUILT_BY = {"Platform": "mailstrata.compose.platform_context(directory=<your AdBinding>, vips=..., ...)"}


def _fix(value: object, tp: type) -> str:
    if issubclass(tp, Enum):
        members = list(tp)
        if isinstance(value, str):
            for m in members:
                if value in (m.value, m.name) or value.lower() in (str(m.value).lower(), m.name.lower()):
                    return f"use {tp.__name__}.{m.name}"
        return "use one of " + ", ".join(f"{tp.__name__}.{m.name}" for m in members)
    if issubclass(tp, Construct):
        if isinstance(value, str):
            return f"pass the {tp.__name__} object itself: constructs take other constructs, never their IDs"
        return f"pass the {tp.__name__} object itself"
    if tp is int and isinstance(value, str) and value.strip().isdigit():
        return f"write {value.strip()} without quotes"
    if tp is int and isinstance(value, float) and value.is_integer():
        return f"write {int(value)}"
    if tp is int and isinstance(value, bool):
        return "write a whole number such as 2: True and False are not numbers"
    if tp.__name__ in _BUILT_BY:
        return f"build it with {_BUILT_BY[tp.__name__]}"
    if dataclasses.is_dataclass(tp):
        where = "" if tp.__module__.startswith("mailstrata.constructs") else \
            f" (from {tp.__module__} import {tp.__name__})"
        kwargs = " with these values as keyword arguments" if isinstance(value, dict) else ""
        return f"write {tp.__name__}(...){kwargs}{where}"
    if tp is str and isinstance(value, Enum):
        return f"use {value.value!r}"
    return f"give {_name(tp)}"


def unique_id(p: Problems, scope: object, id: object) -> Problems:
    """The construct `id` is text and not taken in `scope` (jsii would raise a bare RuntimeError)."""
    if not isinstance(scope, Construct):
        p.add("scope", f"must be a Construct (your stack), got {describe(scope)}; pass the stack, usually self")
    elif not isinstance(id, str) or not id:
        p.add("id", f"must be non-empty text, got {describe(id)}; name the construct, e.g. 'mailstore'")
    elif scope.node.try_find_child(id) is not None:
        taken = scope.node.try_find_child(id)
        p.add("id", f"is already used by {describe(taken)} in {scope.node.path or 'the app'}, got {id!r}; give each "
                    "construct its own id")
    return p


def check_props(p: Problems, props: object, cls: type, path: str = "props") -> Problems:
    """Check that `props` is a `cls` and each field has its annotated type (items of tuples included)."""
    if not isinstance(props, cls):
        p.add(path, f"must be {_name(cls)}, got {describe(props)}; {_fix(props, cls)}")
        return p
    hints = _hints(cls)
    for f in dataclasses.fields(props):  # type: ignore[arg-type]
        _check(p, f"{path}.{f.name}", getattr(props, f.name), hints[f.name])
    return p
