"""Fixtures every Postfix role's tests share: the role's files at their real paths, and Postfix's parsed view
of them. Each test module provides `files` (its role's rendered files); these build on it."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.daemons import parse_postconf, quiet, server_view, view_run_postconf
from tests.support.server_view import ServerView


@pytest.fixture(scope="module")
def view(files: dict[str, str], tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> ServerView:
    return server_view(files, tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]))


@pytest.fixture(scope="module")
def postconf_n(view: ServerView) -> subprocess.CompletedProcess[str]:
    """`postconf -n` on the role's main.cf (the test asserts on its stderr where it matters)."""
    return view_run_postconf(view, "-n")


@pytest.fixture(scope="module")
def main_cf(postconf_n: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Postfix's own view of main.cf's explicit settings; fails on any warning."""
    return parse_postconf(quiet(postconf_n))
