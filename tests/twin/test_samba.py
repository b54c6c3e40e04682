"""The Samba AD helper's template cache and seed step (`mailstrata/twin/samba.py`, `files/samba_seed.py`).

The seed step once ran `samba.py` itself under Samba's Python: it failed cold (no `mailstrata` on that
Python's path, and a file named `samba.py` shadowing Samba's package), and a template cached in /tmp on
the one machine where it had worked hid that. These tests provision from an empty cache and keep the cache
inside the clone, keyed by everything that builds it.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mailstrata.twin import samba
from mailstrata.twin.samba import SEED_SCRIPT, SambaAD, ensure_template, private_netns
from tests.support.requires import requires

CLONE = Path(__file__).resolve().parents[2]


def _require_samba() -> None:
    requires("samba-tool", "samba", "ip", "openssl", why="for a Samba AD DC in a network namespace", root=True)


# -- the seed script stands alone -------------------------------------------------------------------------
def test_seed_script_imports_only_the_standard_library_and_samba() -> None:
    tree = ast.parse(SEED_SCRIPT.read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    top = {name.split(".")[0] for name in imported}
    assert top - {"ldb", "samba"} <= sys.stdlib_module_names | {"__future__"}, top
    assert "mailstrata" not in top


def test_seed_script_is_run_isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(samba, "_run", lambda cmd, **_kw: calls.append(cmd))
    monkeypatch.setattr(samba, "_samba_python", lambda: "/usr/bin/python3")
    samba._provision(tmp_path / "tmp", tmp_path / "final")
    seed = [c for c in calls if str(SEED_SCRIPT) in c]
    assert seed == [["/usr/bin/python3", "-I", str(SEED_SCRIPT), "seed", str(tmp_path / "tmp/dc/etc/smb.conf")]]


@pytest.mark.daemons
def test_seed_script_is_named_like_no_module_of_sambas_python() -> None:
    _require_samba()
    python = samba._samba_python()
    probe = f"import importlib.util as u, sys; sys.exit(u.find_spec({SEED_SCRIPT.stem!r}) is not None)"
    assert subprocess.run([python, "-I", "-c", probe]).returncode == 0
    usage = subprocess.run([python, "-I", str(SEED_SCRIPT)], capture_output=True, text=True)
    assert (usage.returncode, usage.stderr.strip()) == (2, samba_seed_usage())


def samba_seed_usage() -> str:
    return "usage: python3 -I samba_seed.py seed SMB_CONF  (Samba's own python; reads the seed JSON on stdin)"


# -- the cache lives in the clone and is keyed by what builds it --------------------------------------------
def test_cache_is_inside_the_clone_and_ignored_by_git(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(samba.CACHE_ENV, raising=False)
    cache = samba.default_cache_dir()
    assert cache == CLONE / ".cache" / "samba-ad"
    if shutil.which("git") and (CLONE / ".git").exists():
        ignored = subprocess.run(["git", "-C", str(CLONE), "check-ignore", "-q", str(cache / "x")])
        assert ignored.returncode == 0, f"{cache} is not ignored by git"


def test_cache_folder_can_be_overridden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(samba.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert samba.default_cache_dir() == tmp_path / "elsewhere"


@pytest.fixture
def fixed_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(samba, "_samba_version", lambda: "Version 4.17.12-Debian")


@pytest.mark.usefixtures("fixed_version")
def test_cache_key_changes_with_the_seed_script(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    before = samba._cache_key()
    edited = tmp_path / "samba_seed.py"
    edited.write_text(SEED_SCRIPT.read_text() + "\n# changed\n")
    monkeypatch.setattr(samba, "SEED_SCRIPT", edited)
    assert samba._cache_key() != before


@pytest.mark.usefixtures("fixed_version")
def test_cache_key_changes_with_the_provisioning_options(monkeypatch: pytest.MonkeyPatch) -> None:
    before = samba._cache_key()
    monkeypatch.setattr(samba, "PROVISION_OPTIONS", (*samba.PROVISION_OPTIONS, "--option=foo = bar"))
    assert samba._cache_key() != before


@pytest.mark.usefixtures("fixed_version")
def test_cache_key_changes_with_the_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    before = samba._cache_key()
    monkeypatch.setattr(samba, "SEED_USERS", samba.SEED_USERS[:-1])
    assert samba._cache_key() != before


def test_cache_key_changes_with_the_samba_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(samba, "_samba_version", lambda: "Version 4.17.12-Debian")
    before = samba._cache_key()
    monkeypatch.setattr(samba, "_samba_version", lambda: "Version 4.19.5-Debian")
    assert samba._cache_key() != before


# -- cold: an empty cache, provisioned and seeded here ------------------------------------------------------
@pytest.mark.daemons
def test_cold_cache_provisions_and_seeds_the_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """GIVEN an empty cache folder and a PYTHONPATH whose `samba` module would break any import of Samba
    WHEN a DC starts from it THEN the template is provisioned, seeded, and LDAP shows every seeded entry."""
    _require_samba()
    from ldap3 import Connection, Server

    poison = tmp_path / "poison"
    poison.mkdir()
    (poison / "samba.py").write_text("raise ImportError('the seed step must not see PYTHONPATH')\n")
    monkeypatch.setenv("PYTHONPATH", str(poison))
    cache = tmp_path / "cache"
    template = ensure_template(cache)
    assert template.path.parent.parent == cache
    assert sorted(template.user_passwords) == sorted(u.login for u in samba.SEED_USERS)

    def entries(ad: SambaAD) -> dict[str, tuple[str, str | None]]:
        with Connection(Server(ad.ldap_url), ad.bind_dn, ad.bind_password, auto_bind=True) as conn:
            conn.search(ad.base_dn, "(mail=*)", attributes=["mail", "info"])
            return {e.entry_dn.lower(): (str(e.mail.value), e.info.value) for e in conn.entries}

    with private_netns(f"mstest-cold-{os.getpid()}") as ns, SambaAD(tmp_path / "dc", netns=ns, cache_dir=cache) as ad:
        found = ad.run_in_netns(entries, ad)
    expected = {u.dn.lower(): (u.mail, u.quota) for u in samba.SEED_USERS}
    expected |= {g.dn.lower(): (g.mail, None) for g in samba.SEED_GROUPS}
    expected |= {f"cn={login},ou={samba.BULK_OU},{samba.BASE_DN}": (mail, None) for login, mail in samba.bulk_users()}
    assert found == expected
