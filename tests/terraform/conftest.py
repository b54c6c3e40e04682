"""Every test here runs real Terraform: without it they skip, and under CI=true that skip is a failure."""

from __future__ import annotations

import pytest

from tests.support.requires import requires_terraform


@pytest.fixture(autouse=True)
def _terraform() -> None:
    requires_terraform("to run real Terraform on what mailstrata writes")
