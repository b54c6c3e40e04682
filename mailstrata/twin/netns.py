"""The twin's one network namespace: only `lo`, every address a 127.0.0.0/8 alias.

`Namespace.create()` makes it, brings `lo` up, adds the aliases, writes `/etc/netns/<name>/` files
(`resolv.conf` pointing at the twin's dnsmasq, `hosts`, `ld.so.preload`) that `ip netns exec` bind-mounts
over `/etc/*` for every process started in it, and verifies that `lo` is the only interface.
`in_netns(name, fn)` runs a Python function in a thread that joined the namespace (a network namespace is
per thread in Linux), so tests and the benchmark talk to the twin without leaving the rule.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mailstrata.twin.addresses import require_loopback

T = TypeVar("T")
_CLONE_NEWNET = 0x40000000  # <sched.h>; Python 3.11 has no os.setns
ETC_NETNS = Path("/etc/netns")
# `ip netns exec` bind-mounts /etc/netns/<ns>/<file> only over an existing /etc/<file>.
PRELOAD_TARGET = Path("/etc/ld.so.preload")


class NamespaceError(RuntimeError):
    """The namespace could not be made, or breaks the network rule."""


def unavailable() -> str | None:
    """None when the twin can run here, else why not (for skip messages)."""
    if os.geteuid() != 0:
        return "the twin needs root (network namespaces, daemons running as their own users)"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    if not Path("/proc/self/ns/net").exists():
        return "this kernel has no network namespaces"
    probe = f"mstwin-probe-{os.getpid()}"
    proc = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if proc.returncode != 0:
        return f"cannot create a network namespace: {proc.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return None


def exists(name: str) -> bool:
    return name in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()


@dataclass(frozen=True)
class Namespace:
    name: str

    @classmethod
    def create(cls, name: str, addresses: Iterable[str], etc_files: Mapping[str, str]) -> Namespace:
        if exists(name):
            raise NamespaceError(f"network namespace {name} already exists; run `mailstrata twin down` first")
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        ns = cls(name)
        try:
            ns.ip("link", "set", "lo", "up")
            for a in addresses:
                if a != "127.0.0.1":
                    # /32: the kernel then picks the alias itself as the source of connections to it
                    ns.ip("addr", "add", f"{require_loopback(a, 'lo alias')}/32", "dev", "lo")
            etc = ETC_NETNS / name
            etc.mkdir(parents=True, exist_ok=True)
            for fname, text in etc_files.items():
                (etc / fname).write_text(text)
            if "ld.so.preload" in etc_files and not PRELOAD_TARGET.exists():
                PRELOAD_TARGET.write_text("")  # an empty file: no effect outside the twin
            ns.verify()
        except BaseException:
            ns.delete()
            raise
        return ns

    def ip(self, *args: str) -> str:
        proc = subprocess.run(["ip", "-n", self.name, *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise NamespaceError(f"ip -n {self.name} {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def interfaces(self) -> list[str]:
        return [link["ifname"] for link in json.loads(self.ip("-j", "link", "show"))]

    def addresses(self) -> list[str]:
        links = json.loads(self.ip("-j", "addr", "show"))
        return [a["local"] for link in links for a in link.get("addr_info", [])]

    def verify(self) -> None:
        """The hard network rule: `lo` only, every IPv4 address in 127.0.0.0/8."""
        ifaces = self.interfaces()
        if ifaces != ["lo"]:
            raise NamespaceError(f"namespace {self.name} has interfaces {ifaces}; the twin allows only lo")
        for a in self.addresses():
            if ":" in a:
                continue  # ::1, the IPv6 loopback
            require_loopback(a, f"namespace {self.name}")

    def cmd(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def pids(self) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)
        shutil.rmtree(ETC_NETNS / self.name, ignore_errors=True)


def in_netns(name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call `fn` in a new thread that joined namespace `name`; the rest of the process stays where it is."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({name}): {os.strerror(err)}")
            finally:
                os.close(fd)
            result.append(fn(*args, **kwargs))
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name=f"netns-{name}")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
