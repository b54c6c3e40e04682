"""A time zone is checked with one lookup; the whole database is read only to suggest a name (issue 8)."""

from __future__ import annotations

import pytest

from mailstrata.config import model


@pytest.fixture(autouse=True)
def _fresh_zone_list() -> None:
    model._time_zones.cache_clear()


def test_given_a_known_zone_when_checked_then_it_is_accepted_without_reading_the_whole_database() -> None:
    assert model._timezone("Europe/Madrid") == "Europe/Madrid"

    assert model._time_zones.cache_info().misses == 0


def test_given_a_misspelt_zone_when_checked_then_the_refusal_suggests_the_nearest_name() -> None:
    with pytest.raises(ValueError, match=r"got 'Europe/Madird'.*\(did you mean 'Europe/Madrid'\?\)"):
        model._timezone("Europe/Madird")


@pytest.mark.parametrize("name", ["posix/UTC", "right/UTC", "../etc/passwd", "", "europe/madrid"])
def test_given_a_name_the_database_does_not_list_when_checked_then_it_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="is not a time zone"):
        model._timezone(name)
