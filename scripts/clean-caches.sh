#!/bin/bash
# Removes what tests reuse between runs, so that the next run takes the cold path (.ci/run calls it first):
#   - everything under the clone's .cache/ (the Samba AD template in .cache/samba-ad, the CLI clone in
#     .cache/cli-clone, ...), except the fresh-check root and its logs, which `make test` does not read;
#   - the local twin's folder ($MAILSTRATA_TWIN_ROOT, else /var/lib/mailstrata-twin): its compiled loopback
#     shim, its server certificates and secrets, which `twin up` would otherwise reuse. A twin still up is
#     taken down first; a mount left below either folder is unmounted before anything is deleted.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="$(realpath -m .cache)"
TWIN_ROOT="$(realpath -m "${MAILSTRATA_TWIN_ROOT:-/var/lib/mailstrata-twin}")"

mounts_under() {  # every mount point at or below $1, deepest first
  awk -v r="$1" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}
remove() {  # remove PATH: unmount what is below it, then delete it (never across a mount)
  local mp
  [ -e "$1" ] || return 0
  for mp in $(mounts_under "$1"); do
    umount "$mp" 2>/dev/null || umount -l "$mp"
  done
  if [ -n "$(mounts_under "$1")" ]; then
    echo "clean-caches: $1 still has mounts below it; not deleting it" >&2
    return 1
  fi
  rm -rf --one-file-system "$1"
  echo "clean-caches: removed $1"
}

if [ -f "$TWIN_ROOT/state.json" ] && [ -x .venv/bin/python ]; then
  MAILSTRATA_TWIN_ROOT="$TWIN_ROOT" .venv/bin/python -m mailstrata.cli twin down || true
fi
remove "$TWIN_ROOT"
if [ -d "$CACHE" ]; then
  for entry in "$CACHE"/* "$CACHE"/.[!.]*; do
    [ -e "$entry" ] || continue
    case "$(basename "$entry")" in
      fresh-root|fresh-logs|fresh-base-*) continue ;;
    esac
    remove "$entry"
  done
fi
