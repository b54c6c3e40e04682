#!/bin/bash
# The app that `cdktf.json` gives the cdktf CLI (`npx cdktf synth|diff|deploy`): installs the pinned Python
# environment first, exactly as `make synth` does (scripts/bootstrap-python.sh, then `pipenv sync` into
# .venv/, skipped when already done), then runs main.py in it. Everything but the app's own output goes
# to stderr, which the CLI shows when something fails.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v make >/dev/null; then
  echo "cdktf app: make is needed to install the Python environment (Debian: sudo apt-get install make)" >&2
  exit 1
fi
make -s .venv/.installed >&2
exec .venv/bin/python main.py "$@"
