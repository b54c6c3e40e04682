#!/bin/bash
# Makes sure Node.js and npm are there for the cdktf CLI (cdktf-cli 0.20.12 needs Node.js >= 18.12).
# A machine that has them (any Node.js from 18.12 on) keeps its own; stock Debian 12 has neither, so as
# root this installs Debian's `nodejs` (18.20, security-supported by Debian) and `npm` (9.2) packages.
set -euo pipefail
node_ok() {
  command -v node >/dev/null && command -v npm >/dev/null \
    && node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 18 || (a === 18 && b >= 12) ? 0 : 1)'
}
if node_ok; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "node: installing Debian's nodejs and npm (Node.js >= 18.12 and npm are needed for the cdktf CLI)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends nodejs npm
  node_ok && exit 0
fi
echo "node: Node.js >= 18.12 and npm are needed (Debian: sudo apt-get install nodejs npm); found: $(node --version 2>/dev/null || echo none)" >&2
exit 1
