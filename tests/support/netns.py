"""A private network namespace with nothing but `lo`, for tests that run real daemons.

Every address used by a test must be in 127.0.0.0/8 *inside* such a namespace: any other address used
from the root namespace would leave the machine. `NetNs.create()` makes the namespace, brings `lo` up,
adds the 127.x aliases asked for and a private resolv.conf; `run()`/`popen()` execute inside it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def available() -> str | None:
    """None when namespaces work here, else the reason they do not (for skip messages)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    return None


@dataclass
class NetNs:
    name: str

    @classmethod
    def create(cls, prefix: str = "ms", addresses: Iterable[str] = (), nameserver: str | None = None) -> NetNs:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        ns = cls(name)
        ns.run(["ip", "link", "set", "lo", "up"])
        for a in addresses:
            ns.add_address(a)
        links = ns.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        assert [ln.split(":")[1].strip() for ln in links.splitlines()] == ["lo"], links
        etc = Path("/etc/netns") / name
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(f"nameserver {nameserver or '127.0.0.1'}\n")
        (etc / "hosts").write_text("127.0.0.1 localhost\n")
        return ns

    def add_address(self, address: str) -> None:
        if ipaddress.ip_address(address) not in LOOPBACK:
            raise ValueError(f"{address} is not in 127.0.0.0/8; tests must never use other addresses")
        if address != "127.0.0.1":
            self.run(["ip", "addr", "add", f"{address}/8", "dev", "lo"])

    def cmd(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str], **kw) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
        kw.setdefault("check", True)
        return subprocess.run(self.cmd(argv), **kw)

    def popen(self, argv: Sequence[str], **kw) -> subprocess.Popen:  # type: ignore[no-untyped-def]
        return subprocess.Popen(self.cmd(argv), **kw)

    def delete(self) -> None:
        # kill whatever still runs inside, then remove the namespace and its /etc/netns folder
        pids = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)
        subprocess.run(["ip", "netns", "delete", self.name], check=False)
        shutil.rmtree(Path("/etc/netns") / self.name, ignore_errors=True)

    def __enter__(self) -> NetNs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()
