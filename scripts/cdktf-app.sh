#!/bin/bash
# The app that `cdktf.json` gives the cdktf CLI (`npx cdktf synth|diff|deploy`): installs the pinned Python
# environment first, exactly as `make synth` does (scripts/bootstrap-python.sh, then `pipenv sync` into
# .venv/, skipped when already done), then runs main.py in it. The install's output goes to a log, and
# its last lines to stderr (which the CLI shows) when it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v make >/dev/null; then
  echo "cdktf app: make is needed to install the Python environment (Debian: sudo apt-get install make)" >&2
  exit 1
fi
if ! make -s -q .venv/.installed 2>/dev/null; then
  log=.cache/cdktf-app-install.log
  mkdir -p .cache
  echo "cdktf app: installing the pinned Python environment into .venv/ (first run only; log: $log)" >&2
  make -s .venv/.installed >"$log" 2>&1 || { tail -40 "$log" >&2; exit 1; }
fi
exec .venv/bin/python main.py "$@"
