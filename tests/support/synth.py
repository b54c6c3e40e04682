"""Synthesize a platform once per test session and read the result like Terraform would."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from mailstrata.app import synth

_OUT = Path(tempfile.mkdtemp(prefix="mailstrata-test-synth-"))  # new per session: nothing is reused
atexit.register(shutil.rmtree, _OUT, ignore_errors=True)


def synth_config_file(path: str | None, name: str) -> dict[str, Any]:
    outdir = _OUT / name
    synth([path], str(outdir))
    stacks = sorted((outdir / "stacks").iterdir())
    return json.loads((stacks[0] / "cdk.tf.json").read_text())


@cache
def default_platform() -> dict[str, Any]:
    """The default platform's cdk.tf.json (the embedded example config)."""
    return synth_config_file(None, "default")


def resources(doc: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return doc.get("resource", {}).get(rtype, {})


def instances_of(doc: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return sorted(
        (r for r in resources(doc, "openstack_compute_instance_v2").values()
         if r.get("metadata", {}).get("mailstrata_role") == role),
        key=lambda r: r["name"],
    )
