"""The whole platform in an app of your own: one `MailPlatformStack` per config.

    python examples/whole_platform.py <outdir> [config.yaml ...]

synthesizes one stack per config (default: examples/minimal.yaml) into <outdir>/stacks/<config name>/.
`main.py` and `mailstrata synth` do the same, and also keep the output folder's other files and report every
config problem at once (`mailstrata.app.synth`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from cdktf import App

from mailstrata.config import load_config
from mailstrata.stacks import MailPlatformStack

EXAMPLES = Path(__file__).resolve().parent


def main(outdir: str, configs: list[str]) -> None:
    app = App(outdir=outdir)
    for path in configs or [str(EXAMPLES / "minimal.yaml")]:
        config = load_config(path)
        MailPlatformStack(app, config.name, config=config)  # the stack's name is the config's `name`
    app.synth()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cdktf.out", sys.argv[2:])
