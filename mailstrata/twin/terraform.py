"""Evaluating the Terraform expressions of `cdk.tf.json` with the twin's values, as `terraform apply` would.

The synthesized JSON refers to values known only at apply time (`${openstack_lb_loadbalancer_v2.x.vip_address}`,
`${var.ad_bind_password}`, `${replace(tls_private_key.k.public_key_pem, "...", "")}`). The twin supplies
its own (127.x addresses, the Samba bind password, keys it made once) through `Values`, and this small
evaluator handles the subset of HCL the stack writes: references, string literals, numbers and the
functions `replace`, `base64encode`, `element`, `join`.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Value = str | int | list[Any]


class UnresolvedReference(KeyError):
    """An expression the twin has no value for; names it."""


_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>\d+)|(?P<id>[A-Za-z_][\w.-]*(?:\[\d+\])?)|(?P<p>[(),]))')


def _tokens(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        m = _TOKEN.match(expr, pos)
        if not m:
            raise UnresolvedReference(f"cannot parse Terraform expression {expr!r} at {expr[pos:pos + 20]!r}")
        kind = next(k for k in ("str", "num", "id", "p") if m.group(k) is not None)
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


FUNCTIONS: Mapping[str, Callable[..., Value]] = {
    "replace": lambda s, old, new: str(s).replace(str(old), str(new)),
    "base64encode": lambda s: base64.b64encode(str(s).encode()).decode(),
    "element": lambda lst, i: lst[int(i) % len(lst)],
    "join": lambda sep, lst: str(sep).join(str(x) for x in lst),
}


def evaluate(expr: str, lookup: Callable[[str], Value]) -> Value:
    """The value of one expression (the text inside `${...}`); `lookup` resolves a reference path."""
    toks = _tokens(expr)
    pos = 0

    def parse() -> Value:
        nonlocal pos
        kind, text = toks[pos]
        pos += 1
        if kind == "str":
            return str(json.loads(text))
        if kind == "num":
            return int(text)
        if kind == "id" and pos < len(toks) and toks[pos] == ("p", "("):
            pos += 1
            args: list[Value] = []
            while toks[pos] != ("p", ")"):
                args.append(parse())
                if toks[pos] == ("p", ","):
                    pos += 1
            pos += 1
            if text not in FUNCTIONS:
                raise UnresolvedReference(f"Terraform function {text}() is not known to the twin")
            return FUNCTIONS[text](*args)
        if kind == "id":
            return lookup(text)
        raise UnresolvedReference(f"unexpected {text!r} in Terraform expression {expr!r}")

    value = parse()
    if pos != len(toks):
        raise UnresolvedReference(f"trailing text in Terraform expression {expr!r}")
    return value


_INTERP = re.compile(r"(?<!\$)\$\{((?:[^{}\"]|\"(?:[^\"\\]|\\.)*\")*)\}")


def interpolate(text: str, lookup: Callable[[str], Value]) -> str:
    """A Terraform template string with every `${...}` evaluated (`$${` stays a literal `${`)."""
    out = _INTERP.sub(lambda m: str(evaluate(m.group(1), lookup)), text)
    return out.replace("$${", "${").replace("%%{", "%{")


@dataclass(frozen=True)
class Values:
    """What Terraform would know after apply: attributes of resources, variables and locals."""

    attributes: Mapping[str, Value]  # "openstack_lb_loadbalancer_v2.k.vip_address" -> "127.20.0.10"

    def lookup(self, path: str) -> Value:
        try:
            return self.attributes[path]
        except KeyError:
            raise UnresolvedReference(f"the twin has no value for {path}") from None

    def evaluate(self, expr: str) -> Value:
        return evaluate(expr, self.lookup)

    def interpolate(self, text: str) -> str:
        return interpolate(text, self.lookup)


def resources(doc: Mapping[str, Any], rtype: str) -> Mapping[str, Mapping[str, Any]]:
    return dict(doc.get("resource", {}).get(rtype, {}))


def keys_by_name(doc: Mapping[str, Any], rtype: str) -> dict[str, str]:
    """Resource `name` attribute -> logical key, for one resource type."""
    return {str(r["name"]): k for k, r in resources(doc, rtype).items() if "name" in r}
