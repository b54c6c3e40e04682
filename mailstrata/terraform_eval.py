"""Real Terraform as the one evaluator of the expressions mailstrata writes (tests and the local twin).

Nothing here interprets Terraform's language. `evaluate()` writes a throwaway configuration and lets
`terraform apply` compute the values:

- the stack's `variable` blocks and `locals`, verbatim from `cdk.tf.json` (so variable validations run
  on the values given, and every local is evaluated exactly as it would be at deploy time);
- stand-ins for resource attributes: resources cannot exist without their providers, which are not
  installed, so each reference to a resource (`openstack_lb_loadbalancer_v2.vip_lb.vip_address`)
  becomes a reference to a variable holding its stand-in (`var.standin_openstack_lb_loadbalancer_v2.
  vip_lb.vip_address`); every other character of every expression stays as synthesized. Stand-ins
  and the stack's variables are set in a `.tfvars.json` file, whose values are data, never templates;
- one output per expression asked for.

The configuration has no provider, resource or backend, so `terraform apply` needs no `init`, no plugin
and no network; one run evaluates a whole stack in well under a second.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STANDIN_PREFIX = "standin_"
# A reference to a resource or data source: `type.name` (then `.attr`, `[i]`, ...), not preceded by
# anything that would make it part of a longer traversal (`local.x.y`, `var.x`).
_RESOURCE_REF = re.compile(
    r"(?<![\w.\-])(?P<data>data\.)?(?P<type>[a-z][a-z0-9]*_[a-z0-9_]+)\.(?P<name>[A-Za-z_][\w-]*)"
    r"(?:\.(?P<attr>[A-Za-z_]\w*))?"
)
# Environment that would change what Terraform reads: other CLI configs, extra arguments, the user's own
# TF_VAR_ values, a plugin cache, a different data directory or workspace.
_DROPPED_ENV = re.compile(
    r"^(TF_VAR_|TF_CLI_ARGS|TF_LOG|TF_DATA_DIR$|TF_WORKSPACE$|TF_CLI_CONFIG_FILE$|TF_PLUGIN_CACHE_DIR$)"
)
TIMEOUT_S = 120


class TerraformEvalError(RuntimeError):
    """Terraform refused the throwaway configuration, or a stand-in is missing; the message says which."""


@dataclass(frozen=True, kw_only=True)
class StandIns:
    """The values Terraform would know after apply.

    `attributes`: "type.name.attribute" -> value (a string, number, list or object as the provider
    would return it), e.g. "openstack_networking_port_v2.p.all_fixed_ips" -> ["10.10.1.11"].
    `variables`: input variable name -> value (strings; set as with TF_VAR_name).
    """

    attributes: Mapping[str, Any] = field(default_factory=dict)
    variables: Mapping[str, str] = field(default_factory=dict)

    def resources(self) -> dict[tuple[bool, str, str], dict[str, Any]]:
        """(is data source, type, name) -> {attribute: value}."""
        out: dict[tuple[bool, str, str], dict[str, Any]] = {}
        for path, value in self.attributes.items():
            data = path.startswith("data.")
            rtype, name, attr = path.removeprefix("data.").split(".", 2)
            out.setdefault((data, rtype, name), {})[attr] = value
        return out


def _declared(doc: Mapping[str, Any]) -> set[tuple[bool, str, str]]:
    found = {(False, t, n) for t, rs in doc.get("resource", {}).items() for n in rs}
    return found | {(True, t, n) for t, ds in doc.get("data", {}).items() for n in ds}


def _standin_name(data: bool, rtype: str) -> str:
    return f"{STANDIN_PREFIX}{'data_' if data else ''}{rtype}"


class _Rewriter:
    """Points each reference to a known resource at its stand-in local; records what was referenced."""

    def __init__(self, known: set[tuple[bool, str, str]]) -> None:
        self.known = known
        self.used: set[tuple[bool, str, str, str | None]] = set()

    def _one(self, m: re.Match[str]) -> str:
        key = (bool(m.group("data")), m.group("type"), m.group("name"))
        if key not in self.known:
            return m.group(0)
        self.used.add((*key, m.group("attr")))
        rest = f".{m.group('attr')}" if m.group("attr") else ""
        return f"var.{_standin_name(key[0], key[1])}.{key[2]}{rest}"

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return _RESOURCE_REF.sub(self._one, value) if "${" in value or "%{" in value else value
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        return value


def referenced_attributes(values: Iterable[Any]) -> set[str]:
    """Every resource attribute ("type.name.attribute", "data.type.name.attribute") that the templates in
    `values` (strings, or lists/objects holding them) refer to; for building stand-ins."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            for m in _RESOURCE_REF.finditer(value):
                if m.group("attr"):
                    found.add((m.group("data") or "") + f"{m.group('type')}.{m.group('name')}.{m.group('attr')}")
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)

    for v in values:
        walk(v)
    return found


def throwaway_config(expressions: Mapping[str, Any], standins: StandIns,
                     doc: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The configuration `evaluate()` applies: outputs `e0`, `e1`, ... in the order of `expressions`."""
    doc = doc or {}
    resources = standins.resources()
    rewrite = _Rewriter(_declared(doc) | set(resources))
    locals_ = rewrite(dict(doc.get("locals", {})))
    outputs = {f"e{i}": {"value": rewrite(expr), "sensitive": True} for i, expr in enumerate(expressions.values())}
    missing = sorted(
        ("data." if d else "") + f"{t}.{n}" + (f".{a}" if a else "")
        for d, t, n, a in rewrite.used
        if (d, t, n) not in resources or (a is not None and a not in resources[(d, t, n)])
    )
    if missing:
        raise TerraformEvalError("no stand-in value for " + ", ".join(missing))
    variables = dict(doc.get("variable", {}))
    for name in standins.variables:
        variables.setdefault(name, {"type": "string", "sensitive": True})
    # Stand-ins are variables, not locals: a value in a JSON-syntax config would be read as a template.
    for name in set(standin_values(standins)) - set(standins.variables):
        variables[name] = {"type": "any"}
    config: dict[str, Any] = {"output": outputs}
    if variables:
        config["variable"] = variables
    if locals_:
        config["locals"] = locals_
    return config


def standin_values(standins: StandIns) -> dict[str, Any]:
    """The values of the throwaway configuration's variables: the stack's, then one per resource type
    (`standin_<type>`: {name: {attribute: value}})."""
    values: dict[str, Any] = dict(standins.variables)
    for (data, rtype, name), attrs in sorted(standins.resources().items()):
        values.setdefault(_standin_name(data, rtype), {})[name] = attrs
    return values


def terraform_env(workdir: Path, variables: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a hermetic Terraform run in `workdir`: an empty CLI config, no telemetry,
    none of the caller's TF_VAR_ values (only `variables`)."""
    rc = workdir / ".terraformrc"
    if not rc.exists():
        rc.write_text("")
    env = {k: v for k, v in os.environ.items() if not _DROPPED_ENV.match(k)}
    env |= {"CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": str(rc.resolve()), "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0"}
    env |= {f"TF_VAR_{k}": v for k, v in (variables or {}).items()}
    return env


def terraform_binary() -> str:
    found = shutil.which("terraform")
    if found is None:
        raise TerraformEvalError("terraform is not installed (on PATH); mailstrata evaluates the expressions it "
                                 "writes with Terraform itself")
    return found


def run_terraform(args: list[str], workdir: Path, variables: Mapping[str, str] | None = None,
                  ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([terraform_binary(), *args], cwd=workdir, env=terraform_env(workdir, variables),
                          capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


@contextmanager
def _workdir(parent: Path | None) -> Iterator[Path]:
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="tf-eval-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def evaluate(expressions: Mapping[str, Any], standins: StandIns, *, doc: Mapping[str, Any] | None = None,
             workdir: Path | None = None) -> dict[str, Any]:
    """Each expression's value, computed by `terraform apply` with the stack's variables and locals.

    `expressions`: name -> a value in Terraform's JSON syntax as it appears in `cdk.tf.json` (a string
    template such as "${join(...)}", or a list/object holding templates). `doc`: the stack's
    `cdk.tf.json` (its `variable` and `locals` are copied verbatim). The run happens in a fresh folder
    under `workdir` (default: the system's temporary folder), removed afterwards.
    """
    config = throwaway_config(expressions, standins, doc)
    with _workdir(workdir) as wd:
        (wd / "main.tf.json").write_text(json.dumps(config, indent=1))
        (wd / "standins.auto.tfvars.json").write_text(json.dumps(standin_values(standins)))
        applied = run_terraform(["apply", "-auto-approve", "-input=false", "-no-color", "-lock=false"], wd)
        if applied.returncode != 0:
            raise TerraformEvalError(f"terraform apply failed:\n{applied.stderr.strip() or applied.stdout.strip()}")
        shown = run_terraform(["output", "-json", "-no-color"], wd)
        if shown.returncode != 0:
            raise TerraformEvalError(f"terraform output failed:\n{shown.stderr.strip()}")
    outputs = json.loads(shown.stdout)
    return {name: outputs[f"e{i}"]["value"] for i, name in enumerate(expressions)}


def nova_user_data(value: str) -> bytes:
    """The bytes Nova stores for a `user_data` string, as terraform-provider-openstack sends it.

    The provider (gophercloud) base64-encodes user data unless it already is base64, which is how
    `base64gzip(...)` reaches the server as gzip bytes. cloud-init then gunzips them.
    """
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value.encode()
