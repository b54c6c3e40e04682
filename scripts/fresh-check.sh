#!/bin/bash
# `make fresh-check`: proves the README's two commands, `make synth` and `make test`, on a fresh Debian 12.
#
# Builds a stock Debian 12 (bookworm) root with debootstrap (the default variant: required and important
# packages, as a fresh install without tasks) under the clone (.cache/fresh-root, ignored by
# git), clones the committed HEAD into it (a git bundle, so it is what a user's `git clone` gets: no work
# tree changes, no .venv, no node_modules, no caches), installs only the README's prerequisites, then runs
# `make synth` and `make test` there as root with CI=true. Everything else must come from the project's own
# installers (scripts/bootstrap-python.sh, scripts/install-node.sh, scripts/install-debian-packages.sh).
#
# The README's prerequisites, installed here as a user would:
#   - apt: make, git, python3 (and ca-certificates);
#   - terraform: not a Debian package, and its download site is not reachable from the build machines, so
#     this script copies the host's `terraform` (which the tests use, and deploying needs) into the root's
#     /usr/local/bin. Set FRESH_TERRAFORM=/path/to/terraform to choose another; without one it stops.
#
# Root is a chroot, not a machine: it shares the host's kernel and network (the registries are reached as
# from the host; the tests still make their own network namespaces inside it). Two differences from a
# real machine, both on purpose: /usr/sbin/policy-rc.d forbids package scripts to start daemons (there is
# no init, and a daemon started by a postinst would listen in the host's network namespace), and the whole
# run happens in a private mount namespace (unshare), so every mount it makes (/proc, /sys, /dev, the
# tests' namespaces) disappears with it, whatever happens; the EXIT trap also unmounts them explicitly.
#
# Environment: FRESH_ROOT (default .cache/fresh-root), FRESH_MIRROR (default http://deb.debian.org/debian),
# FRESH_REUSE_BASE=1 reuses a tarball of the bare debootstrap (.cache/fresh-base-bookworm.tar) to save its
# minutes while developing this script; FRESH_STEPS (default "synth test") picks the make targets.
# Timings go to stdout and to .cache/fresh-logs/timings.txt; full logs to .cache/fresh-logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
CLONE=$PWD
ROOT="$(realpath -m "${FRESH_ROOT:-$CLONE/.cache/fresh-root}")"
MIRROR="${FRESH_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
BASE_TAR="$CLONE/.cache/fresh-base-$SUITE.tar"
LOGS="$CLONE/.cache/fresh-logs"
STEPS="${FRESH_STEPS:-synth test}"
PREREQS=(make git python3 ca-certificates)
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

if [ "$(id -u)" -ne 0 ]; then
  echo "fresh-check: needs root (debootstrap, chroot, mounts)" >&2
  exit 1
fi

# Re-run inside a private mount namespace: nothing mounted below can leak to the host or outlive us.
if [ -z "${FRESH_IN_MOUNT_NS:-}" ]; then
  exec unshare --mount --propagation private env FRESH_IN_MOUNT_NS=1 "$CLONE/scripts/fresh-check.sh" "$@"
fi

say() { printf 'fresh-check: %s\n' "$*"; }

mounts_under() {  # every mount point at or below $1, deepest first
  awk -v r="$1" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}

stop_root_processes() {  # processes whose root is $ROOT: only ones this script started (by pid)
  local pid link
  for link in /proc/[0-9]*/root; do
    pid=${link#/proc/}; pid=${pid%/root}
    [ "$(readlink "$link" 2>/dev/null)" = "$ROOT" ] && kill -9 "$pid" 2>/dev/null || true
  done
}

cleanup() {
  stop_root_processes
  local mp
  for mp in $(mounts_under "$ROOT"); do
    umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
  done
}
trap cleanup EXIT INT TERM

TIMINGS=()
timed() {  # timed NAME command...: runs it, records its duration
  local name=$1 t0 rc=0
  shift
  t0=$(date +%s)
  "$@" || rc=$?
  local secs=$(( $(date +%s) - t0 ))
  TIMINGS+=("$name: ${secs} s (exit $rc)")
  say "$name took ${secs} s (exit $rc)"
  return $rc
}

TERRAFORM="${FRESH_TERRAFORM:-$(command -v terraform || true)}"
if [ -z "$TERRAFORM" ] || [ ! -x "$TERRAFORM" ]; then
  echo "fresh-check: terraform not found: it is a prerequisite (see README); set FRESH_TERRAFORM" >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null \
    || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }
fi
if ! git diff --quiet HEAD 2>/dev/null; then
  say "note: the work tree has uncommitted changes; only the committed HEAD ($(git rev-parse --short HEAD)) is checked"
fi

mkdir -p "$LOGS"
rm -f "$LOGS"/*.log "$LOGS/timings.txt"
if [ -e "$ROOT" ]; then
  say "removing the previous root $ROOT"
  cleanup
  if [ -n "$(mounts_under "$ROOT")" ]; then
    echo "fresh-check: $ROOT still has mounts; not removing it" >&2
    exit 1
  fi
  rm -rf --one-file-system "$ROOT"
fi
mkdir -p "$ROOT"

make_base() {
  if [ "${FRESH_REUSE_BASE:-}" = 1 ] && [ -f "$BASE_TAR" ]; then
    tar -xpf "$BASE_TAR" -C "$ROOT"
    return
  fi
  debootstrap "$SUITE" "$ROOT" "$MIRROR" >"$LOGS/debootstrap.log" 2>&1 \
    || { tail -30 "$LOGS/debootstrap.log"; return 1; }
  if [ "${FRESH_REUSE_BASE:-}" = 1 ]; then
    tar -cpf "$BASE_TAR" -C "$ROOT" .
  fi
}
say "debootstrap $SUITE from $MIRROR into $ROOT"
timed debootstrap make_base

# The chroot's own configuration: name resolution as on the host, no daemon starts from package scripts.
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp -L /etc/hosts "$ROOT/etc/hosts"
# The host's network setup, as a user's machine on the same network would have it: its local CAs (a
# TLS-inspecting proxy's, on networks that have one) and the variables that point clients at them.
LOCAL_CAS=(/usr/local/share/ca-certificates/*.crt)
if [ -e "${LOCAL_CAS[0]}" ]; then
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  cp -L "${LOCAL_CAS[@]}" "$ROOT/usr/local/share/ca-certificates/"
fi
NETWORK_ENV=()
for var in PIP_CERT REQUESTS_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR NODE_EXTRA_CA_CERTS \
    http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  [ -n "${!var:-}" ] && NETWORK_ENV+=("$var=${!var}")
done
printf '#!/bin/sh\n# fresh-check: no init in a chroot; package scripts must not start daemons\nexit 101\n' \
  >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"

# The root must be a mount point: `ip netns exec` and `ip -n` unshare a mount namespace and make "/"
# a slave mount, which fails with EINVAL ("mount --make-rslave / failed") when "/" is a plain folder.
mount --bind "$ROOT" "$ROOT"
mount -t proc proc "$ROOT/proc"
mount -t sysfs sysfs "$ROOT/sys"
mount --rbind /dev "$ROOT/dev"
mount --make-rslave "$ROOT/dev"
mount -t tmpfs -o mode=755 tmpfs "$ROOT/run"

in_root() {  # in_root LOGNAME 'shell command': runs it in the root with a clean environment, logs it
  local log="$LOGS/$1.log"
  shift
  chroot "$ROOT" /usr/bin/env -i PATH="$CHROOT_PATH" HOME=/root LANG=C.UTF-8 TERM=dumb CI=true \
    CHECKPOINT_DISABLE=1 DEBIAN_FRONTEND=noninteractive "${NETWORK_ENV[@]}" /bin/bash -c "$1" </dev/null >"$log" 2>&1 \
    || { local rc=$?; echo "--- last lines of $log:"; tail -40 "$log"; return $rc; }
  grep -E '^(=+ )?[0-9]+ (passed|failed|errors?)\b.* in [0-9.]+s' "$log" || true  # pytest's closing line, if any
}

say "prerequisites: apt-get install ${PREREQS[*]}; terraform from $TERRAFORM; ${#NETWORK_ENV[@]} network variable(s)"
timed prerequisites in_root prerequisites \
  "apt-get update -q && apt-get install -y -q --no-install-recommends ${PREREQS[*]} && update-ca-certificates"
install -m 755 "$TERRAFORM" "$ROOT/usr/local/bin/terraform"

say "cloning HEAD ($(git rev-parse --short HEAD)) into /root/mailstrata"
git bundle create -q "$ROOT/root/mailstrata.bundle" HEAD
in_root clone "git clone -q /root/mailstrata.bundle /root/mailstrata && rm /root/mailstrata.bundle"

rc=0
for step in $STEPS; do
  say "make $step (in the root, CI=true)"
  timed "make $step" in_root "make-$step" "cd /root/mailstrata && make $step" || { rc=$?; break; }
done

printf '%s\n' "${TIMINGS[@]}" | tee "$LOGS/timings.txt"
if [ "$rc" -ne 0 ]; then
  say "FAILED (exit $rc); logs in $LOGS"
  exit "$rc"
fi
say "passed: make ${STEPS// /, make } in a fresh Debian 12"
