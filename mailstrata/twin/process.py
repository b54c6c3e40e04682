"""Starting, watching and stopping the twin's daemons by hand (this machine has no systemd).

Every daemon runs in the twin's namespace, in its own session (so a stop signals its whole process
group), with stdout and stderr in the one logs folder. `start` waits until the daemon is ready (a TCP
port answers, a unix socket accepts, a file appears) within a timeout, and fails with a message naming
the daemon, its log files and their last lines.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mailstrata.twin.netns import in_netns


class DaemonError(RuntimeError):
    """A daemon did not start or stop in time; the message names it and its logs."""


@dataclass(frozen=True, kw_only=True)
class Ready:
    """When a daemon counts as started: every TCP endpoint answers and every path exists."""

    tcp: tuple[tuple[str, int], ...] = ()
    unix: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Daemon:
    """One long-running program of one server (or of the twin itself, `host` None)."""

    name: str  # "mail-smtp-in-01/postfix"
    argv: tuple[str, ...]
    log: Path  # stdout + stderr
    logs: tuple[Path, ...] = ()  # the daemon's own log files, cited in errors
    host: str | None = None  # the server's FQDN: the daemon runs in a UTS namespace with this host name
    ready: Ready = field(default_factory=Ready)
    timeout: float = 30.0
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None


def _tail(paths: Sequence[Path], lines: int = 15) -> str:
    out = []
    for p in paths:
        if p.is_file():
            text = p.read_text(errors="replace").splitlines()[-lines:]
            if text:
                out.append(f"--- {p} (last {len(text)} lines)\n" + "\n".join(text))
    return "\n".join(out) or "(the logs are empty)"


def _tcp_ok(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _unix_ok(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(path)
            return True
    except OSError:
        return False


def wrap(netns: str, host: str | None, argv: Sequence[str]) -> list[str]:
    """`argv` inside the namespace, and in a UTS namespace named `host` (as the server's own host name)."""
    if host is None:
        return ["ip", "netns", "exec", netns, *argv]
    # `hostname` then `exec`: the daemon's pid is the one Popen returns
    return ["ip", "netns", "exec", netns, "unshare", "--uts", "--", "/bin/sh", "-c",
            'hostname "$0" && exec "$@"', host, *argv]


class Supervisor:
    """Starts daemons in `netns` and remembers their pids (which the twin also writes to its state)."""

    def __init__(self, netns: str, logs_dir: Path, pids: Mapping[str, int] | None = None) -> None:
        self.netns = netns
        self.logs_dir = logs_dir
        self.pids: dict[str, int] = dict(pids or {})
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    def is_ready(self, ready: Ready) -> bool:
        def probe() -> bool:
            return all(_tcp_ok(h, p) for h, p in ready.tcp) and all(_unix_ok(u) for u in ready.unix)

        if not all(Path(f).exists() for f in ready.files):
            return False
        return in_netns(self.netns, probe) if (ready.tcp or ready.unix) else True

    def start(self, d: Daemon) -> int:
        if self.alive(d.name):
            return self.pids[d.name]
        d.log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **d.env}
        with d.log.open("ab") as out:
            out.write(f"\n=== mailstrata twin: starting {d.name}: {' '.join(d.argv)}\n".encode())
            out.flush()
            proc = subprocess.Popen(wrap(self.netns, d.host, d.argv), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, env=env, cwd=d.cwd)
        self._procs[d.name] = proc
        self.pids[d.name] = proc.pid
        deadline = time.monotonic() + d.timeout
        while True:
            code = proc.poll()
            if code is not None:
                raise DaemonError(f"{d.name} exited with status {code} while starting; see {d.log}"
                                  + "".join(f", {p}" for p in d.logs) + "\n" + _tail([d.log, *d.logs]))
            if self.is_ready(d.ready):
                return proc.pid
            if time.monotonic() > deadline:
                self.stop(d.name)
                raise DaemonError(f"{d.name} was not ready within {d.timeout:g} s (waiting for {d.ready}); see "
                                  f"{d.log}" + "".join(f", {p}" for p in d.logs) + "\n" + _tail([d.log, *d.logs]))
            time.sleep(0.1)

    def run(self, name: str, argv: Sequence[str], *, host: str | None, log: Path, timeout: float = 120.0,
            env: Mapping[str, str] | None = None) -> None:
        """Run a one-shot command (a setup script, postmap) to completion, or fail naming its log."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            out.write(f"\n=== mailstrata twin: {name}: {' '.join(argv)}\n".encode())
            out.flush()
            try:
                proc = subprocess.run(wrap(self.netns, host, argv), stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, timeout=timeout, env={**os.environ, **(env or {})})
            except subprocess.TimeoutExpired:
                raise DaemonError(f"{name} did not finish within {timeout:g} s; see {log}\n{_tail([log])}") from None
        if proc.returncode != 0:
            raise DaemonError(f"{name} failed with status {proc.returncode}; see {log}\n{_tail([log])}")

    def alive(self, name: str) -> bool:
        pid = self.pids.get(name)
        if pid is None:
            return False
        proc = self._procs.get(name)
        if proc is not None:
            return proc.poll() is None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return _state(pid) not in ("Z", "X", "")

    def stop(self, name: str, timeout: float = 15.0) -> None:
        """SIGTERM to the daemon's process group, SIGKILL after `timeout`."""
        pid = self.pids.pop(name, None)
        proc = self._procs.pop(name, None)
        if pid is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
            deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 5.0)
            while time.monotonic() < deadline:
                if proc is not None:
                    if proc.poll() is not None:
                        return
                elif not _group_alive(pid):
                    return
                time.sleep(0.05)
        if proc is not None:
            proc.wait(timeout=5)


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[0]


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def kill_all(pids: Sequence[int]) -> None:
    """SIGKILL every pid (the namespace's leftovers after the daemons were stopped)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
