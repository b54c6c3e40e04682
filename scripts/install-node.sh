#!/bin/bash
# Makes sure Node.js and an npm that can read package-lock.json are there: cdktf-cli 0.20.12 and the jsii
# runtime need Node.js >= 18.12, and `npm ci` of our lockfile needs npm >= 10 (npm 9's arborist throws
# "Invalid comparator: next" on the downlevel-dts override in package.json).
# A machine that has them keeps its own. Stock Debian 12 has neither, so as root this installs Debian's
# `nodejs` (18.20, security-supported by Debian) and `npm` (9.2) packages; when the npm found is older than
# 10, it installs the pinned npm 10 (which supports Node.js 18.17+) into .tools/npm/, which the Makefile puts
# first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
NPM_VERSION="10.9.4"
LOCAL_NPM=".tools/npm/node_modules/.bin"
export PATH="$PWD/$LOCAL_NPM:$PATH"

node_ok() {
  command -v node >/dev/null && command -v npm >/dev/null \
    && node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 18 || (a === 18 && b >= 17) ? 0 : 1)'
}
npm_ok() {
  [ "$(npm --version 2>/dev/null | cut -d. -f1)" -ge 10 ] 2>/dev/null
}

if ! node_ok; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "node: installing Debian's nodejs and npm (Node.js >= 18.17 and npm are needed for cdktf)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends nodejs npm
    hash -r
  fi
  if ! node_ok; then
    echo "node: Node.js >= 18.17 and npm are needed (Debian: sudo apt-get install nodejs npm); found: $(node --version 2>/dev/null || echo none)" >&2
    exit 1
  fi
fi
if ! npm_ok; then
  echo "node: npm $(npm --version) cannot read package-lock.json; installing npm $NPM_VERSION into .tools/npm/"
  rm -rf .tools/npm
  npm install --prefix .tools/npm --no-audit --no-fund --no-save "npm@$NPM_VERSION" >&2
  hash -r  # forget the npm found before
  npm_ok || { echo "node: npm $NPM_VERSION did not install into .tools/npm/" >&2; exit 1; }
fi
