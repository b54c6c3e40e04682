"""Custom checkov checks for synthesized mailstrata stacks (CKV_MAILSTRATA_1..6).

Run them with checkov's terraform_json framework (see docs/policies.md and `make scan`):

    checkov -d cdktf.out/stacks/<stack> --framework terraform_json --skip-download \
        --external-checks-dir mailstrata/policies/checks

`CHECKS_DIR` is the folder to pass as `--external-checks-dir`; `CHECK_IDS` lists the checks it holds.
"""

from __future__ import annotations

from pathlib import Path

CHECKS_DIR: Path = Path(__file__).resolve().parent / "checks"
"""Folder of the custom checks, for `checkov --external-checks-dir`."""

CHECK_IDS: tuple[str, ...] = tuple(f"CKV_MAILSTRATA_{n}" for n in range(1, 7))
"""IDs of the checks in `CHECKS_DIR`."""

__all__ = ["CHECKS_DIR", "CHECK_IDS"]
