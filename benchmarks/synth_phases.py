"""Where one synth's time goes, without a profiler's overhead (issue 8). Prints numbers.

    MAILSTRATA_CONFIG=big.yaml .venv/bin/python benchmarks/synth_phases.py

Runs what `python main.py` runs, in this process, timing the phases (importing the config package,
loading and checking the config, importing cdktf and the stack, constructing, writing) and the functions
issue 8 suspects, wrapped with a clock: template rendering and Jinja's parse/compile, the user-data size
estimate, the name-collision walk, the variable lookup. A function a restructuring renamed or moved is
skipped, not an error. For a call tree, use pyinstrument on the whole process:
`.venv/bin/python -m pyinstrument -i 0.001 main.py` (docs/benchmarks.md).
"""

from __future__ import annotations

import collections
import functools
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

T0 = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
ACC: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0])


def wrap(module: str, owner: str | None, name: str, label: str) -> None:
    """Accumulate the wall time of `module.[owner.]name` under `label` (skipped when it does not exist)."""
    try:
        target: Any = importlib.import_module(module)
        if owner:
            target = getattr(target, owner)
        fn = getattr(target, name)
    except (ImportError, AttributeError):
        print(f"  (not found: {module}.{owner + '.' if owner else ''}{name})")
        return

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            ACC[label][0] += time.perf_counter() - start
            ACC[label][1] += 1

    setattr(target, name, timed)


def main() -> None:
    wrap("jinja2", "Environment", "_parse", "jinja2 Environment._parse")
    wrap("jinja2", "Environment", "_generate", "jinja2 Environment._generate")
    wrap("jinja2", "Environment", "_compile", "jinja2 Environment._compile")
    wrap("jinja2", "Template", "render", "jinja2 Template.render")
    start = time.perf_counter()
    import mailstrata.app as app

    t_import_config = time.perf_counter() - start
    for module, name in (("mailstrata.userdata.limits", "user_data_problems"),
                         ("mailstrata.userdata.limits", "estimate"),
                         ("mailstrata.userdata.render", "render_layer"),
                         ("mailstrata.userdata.render", "_layer_module"),
                         ("mailstrata.userdata.profiles", "load_profile")):
        wrap(module, None, name, f"{module.removeprefix('mailstrata.')}.{name}")
    start = time.perf_counter()
    configs = app.check(app.config_paths())
    t_load = time.perf_counter() - start
    start = time.perf_counter()
    from cdktf import App

    from mailstrata.stacks import MailPlatformStack

    t_import_cdktf = time.perf_counter() - start
    for module, name in (("mailstrata.constructs._names", "terraform_name_collisions"),
                         ("mailstrata.constructs._variables", "declared_variables")):
        wrap(module, None, name, f"{module.removeprefix('mailstrata.')}.{name}")
    start = time.perf_counter()
    cdk = App(outdir=tempfile.mkdtemp(prefix="synth-phases."))
    for cfg in configs:
        MailPlatformStack(cdk, cfg.name, config=cfg)
    t_construct = time.perf_counter() - start
    start = time.perf_counter()
    cdk.synth()
    t_synth = time.perf_counter() - start
    print(f"config: {os.environ.get('MAILSTRATA_CONFIG') or 'default'}")
    print(f"  import mailstrata.app (config models, pydantic, yaml): {t_import_config:6.3f} s")
    print(f"  load and check the config (incl. user-data size):    {t_load:6.3f} s")
    print(f"  import cdktf, providers (jsii start), the stack:      {t_import_cdktf:6.3f} s")
    print(f"  construct the stack:                                  {t_construct:6.3f} s")
    print(f"  app.synth (write cdk.tf.json):                        {t_synth:6.3f} s")
    print(f"  total in this process:                                {time.perf_counter() - T0:6.3f} s")
    for label, (seconds, calls) in sorted(ACC.items(), key=lambda kv: -kv[1][0]):
        print(f"    {seconds:7.3f} s {int(calls):6d} calls  {label}")


if __name__ == "__main__":
    main()
