"""`scripts/clean-caches.sh`, which `.ci/run` calls before `make test` so that every CI run is cold.

It runs here on a copy laid out like a clone under this clone's `.cache/` (never on this clone's caches).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.requires import requires

CLONE = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake_clone() -> Iterator[Path]:
    root = CLONE / ".cache" / f"clean-caches-test-{os.getpid()}"
    shutil.rmtree(root, ignore_errors=True)
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(CLONE / "scripts" / "clean-caches.sh", root / "scripts")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_ci_run_cleans_the_caches_before_make_test() -> None:
    lines = [ln.strip() for ln in (CLONE / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines.index("./scripts/clean-caches.sh") < lines.index("make test")


def test_removes_every_cache_but_the_fresh_check_root(fake_clone: Path) -> None:
    for sub in ("samba-ad/0123abcd/dc", "cli-clone/42", "fresh-root/etc", "fresh-logs"):
        (fake_clone / ".cache" / sub).mkdir(parents=True)
    twin = fake_clone / "twin-root"
    (twin / "lib").mkdir(parents=True)
    env = {**os.environ, "MAILSTRATA_TWIN_ROOT": str(twin)}
    proc = subprocess.run([str(fake_clone / "scripts" / "clean-caches.sh")], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (fake_clone / ".cache").iterdir()) == ["fresh-logs", "fresh-root"]
    assert not twin.exists()


def test_unmounts_before_deleting_and_keeps_what_was_mounted(fake_clone: Path) -> None:
    requires(why="for bind mounts", root=True)
    source = fake_clone / "mounted-from"
    source.mkdir()
    (source / "keep.txt").write_text("mine\n")
    target = fake_clone / ".cache" / "samba-ad" / "mnt"
    target.mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
    try:
        env = {**os.environ, "MAILSTRATA_TWIN_ROOT": str(fake_clone / "no-twin")}
        script = str(fake_clone / "scripts" / "clean-caches.sh")
        proc = subprocess.run([script], env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    finally:
        subprocess.run(["umount", str(target)], capture_output=True)
    assert (source / "keep.txt").read_text() == "mine\n"
    assert not (fake_clone / ".cache" / "samba-ad").exists()
