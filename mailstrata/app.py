"""Build the cdktf App from configs; reports config errors once and leaves no half-written output."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mailstrata.config.loader import load_configs
from mailstrata.errors import ConfigError

ENV_VAR = "MAILSTRATA_CONFIG"
CONTEXT_KEY = "mailstrataConfig"


def config_paths(context: str | None = None) -> list[str | None]:
    raw = os.environ.get(ENV_VAR) or context or ""
    paths = [p.strip() for p in raw.split(",") if p.strip()]
    return list(paths) if paths else [None]


def synth(paths: Sequence[str | None], outdir: str = "cdktf.out") -> Path:
    """Validate every config first, synthesize into a temporary folder, then swap it into place."""
    configs = load_configs(list(paths))

    from cdktf import App

    from mailstrata.stacks import MailPlatformStack

    target = Path(outdir)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".cdktf.out.", dir=target.parent))
    try:
        app = App(outdir=str(staging), skip_validation=False)
        for cfg in configs:
            MailPlatformStack(app, cfg.name, config=cfg)
        app.synth()
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def main(argv: Sequence[str] | None = None) -> int:
    outdir = os.environ.get("CDKTF_OUTDIR", "cdktf.out")
    context = None
    raw_ctx = os.environ.get("CDKTF_CONTEXT_JSON")
    if raw_ctx:
        import json

        context = json.loads(raw_ctx).get(CONTEXT_KEY)
    try:
        synth(config_paths(context), outdir)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    return 0
