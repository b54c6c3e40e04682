"""Run real daemons' commands against a rendered file tree at its real paths.

`ServerView` starts each command in a private mount namespace where `/etc` is an overlay of the rendered
tree on the host's `/etc`, and Postfix's queue and data directories are scratch folders: no config is
edited for the test, and nothing on the host changes. Optionally inside a network namespace.
"""

from __future__ import annotations

import pwd
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol


class _File(Protocol):
    path: str
    content: str
    mode: str
    owner: str


def has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def write_tree(files: Mapping[str, str], root: Path) -> Path:
    """Write {absolute path: text} below `root`, keeping the paths; returns `root`."""
    for path, content in files.items():
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(content)
    return root


def install_files(files: Iterable[_File], root: Path) -> None:
    """Write rendered files (already relocated under `root`) as cloud-init would: each with its owner and
    mode, and every folder from `root` down 0755, as cloud-init makes parents."""
    for f in files:
        path = Path(f.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f.content)
        path.chmod(int(f.mode, 8))
        user, group = f.owner.split(":")
        shutil.chown(path, user, group)
    for d in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        d.chmod(0o755)


class ServerView:
    """Runs commands that see a rendered tree at its real paths (private mount namespace, /etc overlay)."""

    def __init__(self, root: Path, scratch: Path) -> None:
        self.root = root
        self.scratch = scratch
        for sub in ("upper", "work", "spool", "lib"):
            (scratch / sub).mkdir(parents=True, exist_ok=True)
        if has_user("postfix"):
            shutil.chown(scratch / "lib", user="postfix")  # Postfix's data_directory

    def argv(self, cmd: Sequence[str], *, netns: str | None = None) -> list[str]:
        s = self.scratch
        overlay = f"lowerdir={self.root}/etc:/etc,upperdir={s}/upper,workdir={s}/work"
        script = "; ".join(
            [
                "set -e",
                # Daemons started together share one upper and work directory; overlayfs resets the work
                # directory at each mount, so two concurrent mounts can break each other: one at a time.
                f"flock {s}/mount.lock mount -t overlay overlay -o {overlay} /etc",
                f"if [ -d /var/spool/postfix ]; then mount --bind {s}/spool /var/spool/postfix; fi",
                f"if [ -d /var/lib/postfix ]; then mount --bind {s}/lib /var/lib/postfix; fi",
                'exec "$@"',
            ]
        )
        out = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *cmd]
        return ["ip", "netns", "exec", netns, *out] if netns else out

    def run(
        self, cmd: Sequence[str], *, netns: str | None = None, tty: bool = False, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        argv = self.argv(cmd, netns=netns)
        if tty:
            # Postfix's own commands print warnings on stderr only when it is a terminal.
            argv = ["script", "-qec", shlex.join(argv), "/dev/null"]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
