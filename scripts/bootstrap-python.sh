#!/bin/bash
# Makes .tools/, a project-local virtualenv holding the pinned pipenv, from nothing but python3.
# Stock Debian 12 has no pip for its Python and refuses `pip install` into it (PEP 668), and its
# python3 lacks ensurepip until python3-venv is installed: install that first when we are root.
set -euo pipefail
cd "$(dirname "$0")/.."
PIPENV_VERSION="2026.10.3"
TOOLS=".tools"

if [ -x "$TOOLS/bin/pipenv" ] && "$TOOLS/bin/pipenv" --version 2>/dev/null | grep -q "$PIPENV_VERSION"; then
  exit 0
fi
if ! command -v python3 >/dev/null; then
  echo "bootstrap: python3 is missing; on Debian: apt-get install python3 python3-venv" >&2
  exit 1
fi
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing python3-venv (python3 has no ensurepip)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends python3-venv
  else
    echo "bootstrap: python3 has no venv/ensurepip; install it (Debian: sudo apt-get install python3-venv)" >&2
    exit 1
  fi
fi
rm -rf "$TOOLS"
python3 -m venv "$TOOLS"
"$TOOLS/bin/python" -m pip install -q --disable-pip-version-check "pipenv==$PIPENV_VERSION"
echo "bootstrap: pipenv $PIPENV_VERSION in $TOOLS/"
