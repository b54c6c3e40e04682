"""Terraform's part in the twin: the values of the stack's expressions, computed by Terraform itself.

The synthesized JSON refers to values known only at apply time (`${openstack_lb_loadbalancer_v2.x.vip_address}`,
`${var.ad_bind_password}`, `${replace(tls_private_key.k.public_key_pem, "...", "")}`). The twin supplies
its own as stand-ins (127.x addresses, the Samba bind password, keys it made once: `StandIns`), and
`evaluate_stack` hands them, with the stack's variables and locals, to `terraform apply` in one run
(`mailstrata.terraform_eval`). The twin never interprets an expression itself: it puts Terraform's value
of each reference in place of the reference (`Values.substitute`), exactly where Terraform would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailstrata.terraform_eval import StandIns, evaluate
from mailstrata.userdata.terraform_text import interpolations, references, substitute


class UnresolvedReference(KeyError):
    """An expression the twin has no value for; names it."""


@dataclass
class Values:
    """What Terraform computed from the twin's stand-ins for one stack."""

    doc: Mapping[str, Any]
    standins: StandIns
    refs: dict[str, Any]  # a reference as written in the stack (`var.x`, `element(...)`) -> its value
    outputs: Mapping[str, Any]  # the stack's outputs that were asked for -> their values
    workdir: Path | None = field(default=None)

    def lookup(self, path: str) -> Any:
        """A stand-in itself: "tls_private_key.k.public_key_pem", or "var.name" for a variable."""
        if path.startswith("var.") and path[4:] in self.standins.variables:
            return self.standins.variables[path[4:]]
        try:
            return self.standins.attributes[path]
        except KeyError:
            raise UnresolvedReference(f"the twin has no value for {path}") from None

    def substitute(self, text: str, resolve: Callable[[str], str] = str) -> str:
        """Rendered text with each Terraform reference replaced by Terraform's value of it.

        `resolve` turns a cdktf token (`${TfToken[TOKEN.7]}`) into the expression it stands for in
        `cdk.tf.json` (`Synthesized.resolve`). References not seen in the stack's locals (none, normally)
        are evaluated in one more run.
        """
        exprs = {ref: _expression(resolve("${" + ref + "}")) for ref in references(text)}
        missing = [e for e in exprs.values() if e not in self.refs]
        if missing:
            self.refs.update(_evaluate_refs(missing, self.standins, self.doc, self.workdir))
        return substitute(text, {ref: _text(e, self.refs[e]) for ref, e in exprs.items()})

    def output(self, name: str) -> Any:
        return self.outputs[name]


def _expression(resolved: str) -> str:
    if not (resolved.startswith("${") and resolved.endswith("}")):
        raise UnresolvedReference(f"a token resolved to {resolved!r}, not to one Terraform expression")
    return resolved[2:-1]


def _text(ref: str, value: Any) -> str:
    if not isinstance(value, str):
        raise UnresolvedReference(f"${{{ref}}} is not a string in Terraform: {type(value).__name__}")
    return value


def _evaluate_refs(refs: Iterable[str], standins: StandIns, doc: Mapping[str, Any],
                   workdir: Path | None) -> dict[str, Any]:
    exprs = {r: "${" + r + "}" for r in refs}
    return evaluate(exprs, standins, doc=doc, workdir=workdir)


def stack_references(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """Every reference in the stack's locals (the user-data bodies)."""
    found: dict[str, None] = {}
    for value in doc.get("locals", {}).values():
        for line in value if isinstance(value, list) else [value]:
            if isinstance(line, str):
                found.update(dict.fromkeys(interpolations(line)))
    return tuple(found)


def evaluate_stack(doc: Mapping[str, Any], standins: StandIns, *, texts: Iterable[str] = (),
                   outputs: Iterable[str] = (), workdir: Path | None = None) -> Values:
    """One Terraform run: every reference in the stack's locals and in `texts`, and the named outputs."""
    refs = dict.fromkeys(stack_references(doc))
    for text in texts:
        refs.update(dict.fromkeys(references(text)))
    exprs: dict[str, Any] = {"${" + r + "}": "${" + r + "}" for r in refs}
    wanted = list(outputs)
    exprs |= {f"output.{name}": doc["output"][name]["value"] for name in wanted}
    values = evaluate(exprs, standins, doc=doc, workdir=workdir)
    return Values(doc=doc, standins=standins, refs={r: values["${" + r + "}"] for r in refs},
                  outputs={name: values[f"output.{name}"] for name in wanted}, workdir=workdir)


def resources(doc: Mapping[str, Any], rtype: str) -> Mapping[str, Mapping[str, Any]]:
    return dict(doc.get("resource", {}).get(rtype, {}))


def keys_by_name(doc: Mapping[str, Any], rtype: str) -> dict[str, str]:
    """Resource `name` attribute -> logical key, for one resource type."""
    return {str(r["name"]): k for k, r in resources(doc, rtype).items() if "name" in r}
