"""The harness of the daemon tests: write rendered files, let the real daemon parse them, get its view.

Each `*_view` / parse function runs the daemon's own parser and returns what it understood as a dict;
`quiet()` asserts that the command succeeded and printed nothing on stderr (no warnings), and shows the
warnings when it did. Missing daemons skip through `tests.support.requires` (a failure under CI=true).

Static parses:
- `postconf(conf_dir, "-n")` -> {name: value}; `postconf_master(conf_dir)` -> {"service/type": fields}
- `doveconf(path)` -> {"section/sub/key": value}; `doveconf_value(path, key)` -> str
- the same through a `ServerView` (files at their real paths): `view_postconf(view, "-n")`,
  `view_postconf_master(view)`; `server_view(files, base)` builds one.
Live runs: `scratch_dir()`, `wait_for()`, `stop()`, `listening()`.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from tests.support.requires import requires
from tests.support.server_view import ServerView, write_tree

__all__ = [
    "ServerView",
    "doveconf",
    "doveconf_value",
    "flatten_doveconf",
    "listening",
    "master_rows",
    "parse_postconf",
    "postconf",
    "postconf_master",
    "quiet",
    "restrictions",
    "scratch_dir",
    "server_view",
    "stop",
    "view_postconf",
    "view_postconf_master",
    "wait_for",
    "write_file",
    "write_tree",
]

# ---- checks and parsers ------------------------------------------------------------------------------


def quiet(proc: subprocess.CompletedProcess[str], *, allowed: Iterable[str] = ()) -> str:
    """`proc`'s stdout, after asserting exit 0 and no stderr other than the `allowed` lines."""
    ok = set(allowed)
    warnings = [ln for ln in proc.stderr.splitlines() if ln not in ok]
    assert (proc.returncode, warnings) == (0, []), f"{proc.args!r} printed:\n{proc.stderr}"
    return proc.stdout


def parse_postconf(text: str) -> dict[str, str]:
    """`name = value` lines (postconf -n, -P) as a dict; an empty value is ``""``."""
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" =")
        out[name] = value.removeprefix(" ")
    return out


def master_rows(text: str) -> dict[str, list[str]]:
    """postconf -M lines keyed by `service/type`: [private, unpriv, chroot, wakeup, maxproc, command...]."""
    rows = {}
    for line in text.splitlines():
        fields = line.split()
        rows[f"{fields[0]}/{fields[1]}"] = fields[2:]
    return rows


def restrictions(value: str) -> list[str]:
    """A Postfix list parameter's value (`smtpd_*_restrictions`) as its items."""
    return [r.strip() for r in value.split(",")]


def flatten_doveconf(text: str) -> dict[str, str]:
    """`doveconf -n` output as {"section/sub/key": value}."""
    out: dict[str, str] = {}
    stack: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line == "}":
            stack.pop()
        elif line.endswith("{"):
            stack.append(line[:-1].strip())
        else:
            m = re.fullmatch(r"(\S+) =\s?(.*)", line)
            assert m, line
            out["/".join([*stack, m.group(1)])] = m.group(2)
    return out


# ---- Postfix -------------------------------------------------------------------------------------------


def postconf_text(conf_dir: Path, *args: str) -> str:
    """`postconf -c conf_dir args` output, asserting no warnings."""
    requires("postconf", why="to parse main.cf and master.cf with Postfix itself")
    return quiet(subprocess.run(["postconf", "-c", str(conf_dir), *args], capture_output=True, text=True))


def postconf(conf_dir: Path, *args: str) -> dict[str, str]:
    """Postfix's view (`postconf -c conf_dir -n` by default) as {name: value}, asserting no warnings."""
    return parse_postconf(postconf_text(conf_dir, *(args or ("-n",))))


def postconf_master(conf_dir: Path) -> dict[str, list[str]]:
    """`postconf -M` of master.cf in conf_dir, keyed by `service/type`, asserting no warnings."""
    return master_rows(postconf_text(conf_dir, "-M"))


def server_view(files: Mapping[str, str], base: Path) -> ServerView:
    """The files written under base/root and seen at their real paths by the commands of the view."""
    requires("unshare", "script", why="to show the daemons the rendered /etc", root=True)
    return ServerView(write_tree(files, base / "root"), base / "scratch")


def view_run_postconf(view: ServerView, *args: str) -> subprocess.CompletedProcess[str]:
    """`postconf args` inside the view (files at their real paths), unchecked: for tests of its stderr."""
    requires("postconf", why="to parse main.cf and master.cf with Postfix itself")
    return view.run(["postconf", *args])


def view_postconf(view: ServerView, *args: str, allowed: Iterable[str] = ()) -> dict[str, str]:
    """`postconf args` (default -n) inside the view as {name: value}, asserting no warnings beyond `allowed`."""
    return parse_postconf(quiet(view_run_postconf(view, *(args or ("-n",))), allowed=allowed))


def view_postconf_master(view: ServerView) -> dict[str, list[str]]:
    return master_rows(quiet(view_run_postconf(view, "-M")))


# ---- Dovecot -------------------------------------------------------------------------------------------


def doveconf(conf: Path) -> dict[str, str]:
    """Dovecot's own parse of `conf`; it exits 0 even on errors, so stderr must be empty."""
    requires("doveconf", why="to parse dovecot.conf with Dovecot itself")
    proc = subprocess.run(["doveconf", "-c", str(conf), "-n"], capture_output=True, text=True)
    return flatten_doveconf(quiet(proc))


def doveconf_value(conf: Path, key: str) -> str:
    """One setting's effective value (`doveconf -n` omits those equal to Dovecot's default); no stderr."""
    requires("doveconf", why="to parse dovecot.conf with Dovecot itself")
    proc = subprocess.run(["doveconf", "-c", str(conf), "-h", key], capture_output=True, text=True)
    assert proc.stderr == "", proc.stderr
    return proc.stdout.rstrip("\n")


# ---- files and live runs -------------------------------------------------------------------------------


def write_file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A scratch directory the daemons' own users (amavis, postfix) can traverse; removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"mailstrata-{prefix}-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def wait_for(
    ready: Callable[[], bool],
    what: str,
    timeout: float = 60.0,
    *,
    log: Callable[[], str] | None = None,
    interval: float = 0.1,
) -> None:
    """Poll `ready` until true; else fail naming `what` (and showing `log()`, when given)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s" + (f":\n{log()}" if log else ""))
        time.sleep(interval)


def stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Terminate a daemon started by a test (kill it when it does not stop within `timeout`)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def listening(netns: str, spec: str) -> bool:
    """Whether something listens on `spec` ("0.0.0.0:25", or a unix socket path) inside the namespace."""
    out = subprocess.run(
        ["ip", "netns", "exec", netns, "ss", "-Hlnx" if spec.startswith("/") else "-Hltn"],
        capture_output=True,
        text=True,
    ).stdout
    return any(spec in line.split() for line in out.splitlines())
