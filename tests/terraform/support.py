"""Real Terraform on synthesized stacks: `terraform init` with no plugins, `terraform plan` on variable blocks.

Providers cannot be downloaded on the build machines, so `init` ends with one error per provider; every
other diagnostic is a problem in what mailstrata wrote. `MISSING_PROVIDERS` names the only ones allowed.
"""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailstrata.terraform_eval import run_terraform
from tests.support.requires import requires_terraform

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

# The providers mailstrata requires, by source address as `terraform init` reports them.
MISSING_PROVIDERS = {
    "openstack": "registry.terraform.io/terraform-provider-openstack/openstack",
    "tls": "registry.terraform.io/hashicorp/tls",
    "random": "registry.terraform.io/hashicorp/random",
}
_NOT_FOUND = re.compile(
    r"^Could not retrieve the list of available versions for provider [\w./-]+: "
    r"provider (?P<addr>[\w./-]+) was not found in any of the search locations\n"
)


@dataclass(frozen=True)
class Diagnostic:
    severity: str
    summary: str
    detail: str
    where: str  # "cdk.tf.json:4411" or ""

    def __str__(self) -> str:
        return f"{self.severity}: {self.summary} ({self.where}) {self.detail}".strip()


def _diagnostics(stdout: str) -> list[Diagnostic]:
    out = []
    for line in stdout.splitlines():
        msg = json.loads(line)
        if msg.get("type") != "diagnostic":
            continue
        d = msg["diagnostic"]
        rng = d.get("range") or {}
        where = f"{rng['filename']}:{rng['start']['line']}" if rng else ""
        out.append(Diagnostic(d["severity"], d["summary"], d.get("detail", ""), where))
    return out


def init_diagnostics(cdk_tf_json: Path, workdir: Path) -> list[Diagnostic]:
    """`terraform init -backend=false` on a copy of the stack with an empty plugin directory."""
    (workdir / "plugins").mkdir(parents=True, exist_ok=True)
    stack = workdir / "stack"
    stack.mkdir(exist_ok=True)
    (stack / "cdk.tf.json").write_bytes(cdk_tf_json.read_bytes())
    requires_terraform("for terraform init")
    proc = run_terraform(["init", "-backend=false", "-input=false", "-json", f"-plugin-dir={workdir / 'plugins'}"],
                         stack)
    return _diagnostics(proc.stdout)


def missing_provider(d: Diagnostic) -> str | None:
    """The source address of a provider `init` could not find, if that is all this diagnostic says."""
    if d.severity != "error" or d.summary != "Failed to query available provider packages":
        return None
    m = _NOT_FOUND.match(d.detail)
    return m.group("addr") if m else None


def plan_variables(variables: Mapping[str, Any], values: Mapping[str, str], workdir: Path) -> list[Diagnostic]:
    """`terraform plan` on `variable` blocks alone (as given: verbatim from a cdk.tf.json), values set
    with TF_VAR_; the diagnostics (none when every validation passes)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "main.tf.json").write_text(json.dumps({"variable": dict(variables)}, indent=1))
    requires_terraform("for terraform plan")
    proc = run_terraform(["plan", "-input=false", "-lock=false", "-json"], workdir, values)
    diags = _diagnostics(proc.stdout)
    assert (proc.returncode == 0) == (not [d for d in diags if d.severity == "error"]), proc.stderr
    return diags


def validation_failure(d: Diagnostic) -> str | None:
    """The error_message of a failed variable validation (Terraform appends where the rule is)."""
    if d.summary != "Invalid value for variable":
        return None
    return d.detail.split("\n\nThis was checked by the validation rule at ")[0]


# ---- every stack the project can produce --------------------------------------------------------------


@dataclass(frozen=True)
class StackSource:
    """One way of producing stacks; `synth(outdir)` returns each stack's cdk.tf.json. For a config file
    (or the default, `config` None), `is_config` is set and the platform stack can be built in-process."""

    id: str
    synth: Callable[[Path], list[Path]]
    is_config: bool = False
    config: Path | None = None


def _stack_files(outdir: Path) -> list[Path]:
    found = sorted(outdir.glob("stacks/*/cdk.tf.json"))
    assert found, f"no stack synthesized into {outdir}"
    return found


def _config(path: Path | None) -> Callable[[Path], list[Path]]:
    def run(outdir: Path) -> list[Path]:
        from mailstrata.app import synth

        synth([str(path) if path else None], str(outdir))
        return _stack_files(outdir)

    return run


def _example_app(path: Path) -> Callable[[Path], list[Path]]:
    def run(outdir: Path) -> list[Path]:
        proc = subprocess.run([sys.executable, str(path), str(outdir)], cwd=REPO, capture_output=True, text=True,
                              timeout=600, check=False)
        assert proc.returncode == 0, f"{path.name} failed:\n{proc.stderr}"
        return _stack_files(outdir)

    return run


def _composition(outdir: Path) -> list[Path]:
    """The org stacks of tests/stacks/test_composition.py, captured as its tests synthesize them."""
    import tests.stacks.test_composition as composition

    docs: list[dict[str, Any]] = []
    original = composition.synth

    def capture(stack: Any) -> dict[str, Any]:
        doc = original(stack)
        docs.append(doc)
        return doc

    composition.synth = capture  # type: ignore[assignment]
    try:
        for name in sorted(n for n in dir(composition) if n.startswith("test_")):
            test = getattr(composition, name)
            if not inspect.signature(test).parameters:  # those needing fixtures build their stacks elsewhere
                test()
    finally:
        composition.synth = original  # type: ignore[assignment]
    assert docs, "tests/stacks/test_composition.py synthesized no stack"
    out = []
    for i, doc in enumerate(docs):
        path = outdir / "stacks" / f"composition-{i}" / "cdk.tf.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2))
        out.append(path)
    return out


def stack_sources() -> Iterator[StackSource]:
    yield StackSource("default", _config(None), is_config=True)
    for path in sorted(EXAMPLES.glob("*.yaml")):
        yield StackSource(f"examples/{path.name}", _config(path), is_config=True, config=path)
    for path in sorted(EXAMPLES.glob("*.py")):
        yield StackSource(f"examples/{path.name}", _example_app(path))
    yield StackSource("tests/stacks/test_composition.py", _composition)
