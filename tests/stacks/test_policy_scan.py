"""The default synth passes checkov: the built-in checks and mailstrata's own, 0 failed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from mailstrata.policies import CHECKS_DIR
from tests.support.synth import default_platform

ROOT = Path(__file__).resolve().parents[2]


def test_checkov_reports_no_failed_check_on_the_default_platform(tmp_path: Path) -> None:
    stack = tmp_path / "stacks" / "mail"
    stack.mkdir(parents=True)
    (stack / "cdk.tf.json").write_text(json.dumps(default_platform(), indent=2))
    result = subprocess.run(
        [str(ROOT / ".venv/bin/checkov"), "-d", str(stack), "--framework", "terraform_json", "--skip-download",
         "--external-checks-dir", str(CHECKS_DIR), "--output", "json"],
        env={**os.environ, "CHECKPOINT_DISABLE": "1"}, capture_output=True, text=True, check=False,
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert summary["failed"] == 0
    custom = {c["check_id"] for c in report["results"]["passed_checks"] if c["check_id"].startswith("CKV_MAILSTRATA")}
    assert custom == {f"CKV_MAILSTRATA_{n}" for n in range(1, 7)}
