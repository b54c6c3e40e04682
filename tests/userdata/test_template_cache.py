"""Compiled templates are kept between runs (`render.template_cache_dir`); a cached template renders exactly as a
freshly compiled one, and "off" turns the cache off."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailstrata.roles import Role
from mailstrata.userdata import render
from mailstrata.userdata.profiles import load_profile


def test_given_a_cache_folder_when_templates_render_twice_then_the_cached_run_matches_a_fresh_one(
        tmp_path: Path) -> None:
    names = ["common/etc/yum.repos.d/CentOS-Base.repo.j2", "postfix/etc/postfix/ffdhe2048.pem.j2"]
    ctx = {"os": load_profile("centos7", Role.SMTP_IN), "banner": "# b"}
    fresh = [render.make_environment(None).get_template(n).render(ctx) for n in names]
    first = [render.make_environment(tmp_path).get_template(n).render(ctx) for n in names]
    cached_files = sorted(p.name for p in tmp_path.iterdir())
    second = [render.make_environment(tmp_path).get_template(n).render(ctx) for n in names]
    assert len(cached_files) == len(names)
    assert first == second == fresh


def test_given_off_when_the_cache_folder_is_asked_then_there_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(render.TEMPLATE_CACHE_ENV, "off")
    assert render.template_cache_dir() is None


def test_given_a_folder_when_the_cache_folder_is_asked_then_it_is_below_it_named_by_jinjas_version_and_options(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(render.TEMPLATE_CACHE_ENV, str(tmp_path))
    folder = render.template_cache_dir()
    assert folder is not None and folder.parent == tmp_path and folder.name.startswith("templates-")


def test_given_an_unwritable_folder_when_the_cache_folder_is_asked_then_there_is_none(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(render.TEMPLATE_CACHE_ENV, str(blocker / "below"))
    assert render.template_cache_dir() is None
