"""A layer's servers planned by real Terraform through a stand-in for terraform-provider-openstack (issue 12).

terraform-provider-openstack cannot be downloaded here, and `terraform test`'s mock providers still need the
provider's binary for its schema, so the servers are planned through a stand-in: each `openstack_compute_instance_v2`
of a layer becomes a `terraform_data` (built into Terraform) whose `triggers_replace` holds the arguments the
provider's schema marks ForceNew (`mailstrata.diff.FORCE_NEW`, cited from the provider there) and whose `input`
holds the rest. Its `lifecycle` is the synthesized one, with `ignore_changes` names pointed into those two objects;
`replace_triggered_by`, the slot's `revision-NN`/`rollout-NN` (real `terraform_data`), the stack's variables and
the layer's user-data local are verbatim. Other resources' attributes are sample stand-ins (`tests/userdata/_sample`).
So Terraform itself decides what `ignore_changes`, `replace_triggered_by` and `-replace` do with what mailstrata
wrote; only "which server arguments are ForceNew" is the provider's fact, carried over.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

import mailstrata.config
from mailstrata import cli
from mailstrata import terraform_eval as te
from mailstrata.diff import FORCE_NEW, SERVER
from tests.userdata import _sample

DEFAULT = Path(mailstrata.config.__file__).parent / "default.yaml"


def synth(folder: Path, change: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    doc = yaml.safe_load(DEFAULT.read_text())
    if change is not None:
        change(doc)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert cli.main(["synth", "--config", str(config), "--outdir", str(folder / "out")]) == 0
    stack: dict[str, Any] = json.loads((folder / "out" / "stacks" / "mail" / "cdk.tf.json").read_text())
    return stack


def standin_config(doc: Mapping[str, Any], layer: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(configuration, stand-in values, server name -> its stand-in address) for `layer`'s servers."""
    servers = {k: v for k, v in doc["resource"][SERVER].items() if k.startswith(f"{layer}_server-")}
    slots = {k: v for k, v in doc["resource"]["terraform_data"].items() if k.startswith(f"{layer}_")}
    local_names = {n for n in doc["locals"] if n.startswith("user_data_") and n.endswith(layer.replace("-", "_"))}
    locals_ = {n: doc["locals"][n] for n in local_names}
    bodies = [locals_, slots, {k: {a: b for a, b in v.items() if a != "lifecycle"} for k, v in servers.items()}]
    sample = _sample.standins({"locals": locals_, "variable": doc["variable"]})
    paths = {p for p in te.referenced_attributes(bodies) if not p.startswith("terraform_data.")}
    standins = te.StandIns(attributes={**sample.attributes, **{p: _sample.sample_attribute(p) for p in paths}},
                           variables={k: v for k, v in sample.variables.items()
                                      if "default" not in doc["variable"].get(k, {})})
    # terraform_data (revisions, rollouts, the stand-ins) is real here: only the provider's resources stand in
    rewrite = te._Rewriter({k for k in te._declared(doc) | set(standins.resources()) if k[1] != "terraform_data"})
    resources: dict[str, Any] = {name: rewrite(body) for name, body in slots.items()}
    addresses = {}
    for name, body in servers.items():
        body = {k: v for k, v in body.items() if k != "//"}
        lifecycle = body.pop("lifecycle", {})
        forced = {k: v for k, v in body.items() if k in FORCE_NEW[SERVER]}
        kept = {k: v for k, v in body.items() if k not in forced}
        # `input.a`, not `input["a"]`: Terraform 1.11 keeps the whole of a dynamic value for an index step
        ignored = [f"triggers_replace.{a}" if a in forced else f"input.{a}"
                   for a in lifecycle.get("ignore_changes", [])]
        resources[f"stand-in_{name}"] = {
            "triggers_replace": rewrite(forced), "input": rewrite(kept),
            "lifecycle": {**lifecycle, "ignore_changes": ignored},
        }
        addresses[body["name"]] = f"terraform_data.stand-in_{name}"
    variables = dict(doc["variable"])
    values = te.standin_values(standins)
    for var in set(values) - set(variables):
        variables[var] = {"type": "any"}
    for var, spec in variables.items():
        if "default" not in spec and var not in values:
            values[var] = _sample.sample_variable(var)
    config = {"variable": variables, "locals": rewrite(locals_), "resource": {"terraform_data": resources}}
    return config, values, addresses


class Workspace:
    """One Terraform working directory with local state: apply a config, then plan others against it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    def write(self, config: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        (self.path / "main.tf.json").write_text(json.dumps(config, indent=1))
        (self.path / "values.auto.tfvars.json").write_text(json.dumps(values))

    def run(self, *args: str) -> str:
        proc = te.run_terraform(list(args), self.path)
        assert proc.returncode == 0, proc.stderr or proc.stdout
        return proc.stdout

    def apply(self, *args: str) -> None:
        if not (self.path / ".terraform").exists():
            self.run("init", "-backend=false", "-input=false", "-no-color")
        self.run("apply", "-auto-approve", "-input=false", "-no-color", "-lock=false", *args)

    def plan(self, *args: str) -> dict[str, tuple[str, ...]]:
        """Resource address -> Terraform's planned actions (("no-op",), ("update",), ("delete", "create"), ...)."""
        self.run("plan", "-input=false", "-no-color", "-lock=false", "-out=plan.bin", *args)
        shown = json.loads(self.run("show", "-json", "plan.bin"))
        return {c["address"]: tuple(c["change"]["actions"]) for c in shown.get("resource_changes", [])}
