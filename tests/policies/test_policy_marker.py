"""`mailstrata/<role>[/<port>][/admin]: <text>`: parsing and formatting the role marker."""

from __future__ import annotations

import pytest

from mailstrata.policies.marker import Marker, format_marker, parse_marker
from mailstrata.roles import Role


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        (
            "mailstrata/smtp_in/25: SMTP from the Internet",
            Marker(role=Role.SMTP_IN, port=25, text="SMTP from the Internet"),
        ),
        (
            "mailstrata/mailstore/22/admin: SSH from admin networks",
            Marker(role=Role.MAILSTORE, port=22, admin=True, text="SSH from admin networks"),
        ),
        (
            "mailstrata/webmail/443: HTTPS from the Internet",
            Marker(role=Role.WEBMAIL, port=443, text="HTTPS from the Internet"),
        ),
        ("mailstrata/smtp_in: VIP floating IP", Marker(role=Role.SMTP_IN, text="VIP floating IP")),
        (
            "mailstrata/nfs_server/admin: every port from admin networks",
            Marker(role=Role.NFS_SERVER, admin=True, text="every port from admin networks"),
        ),
        ("mailstrata/smtp_out:", Marker(role=Role.SMTP_OUT)),
        (
            "mailstrata/smtp_out/587: submission: with a colon in the text",
            Marker(role=Role.SMTP_OUT, port=587, text="submission: with a colon in the text"),
        ),
    ],
)
def test_parse_marker(description: str, expected: Marker) -> None:
    assert parse_marker(description) == expected


@pytest.mark.parametrize(
    "description",
    [
        None,
        25,
        "",
        "SMTP from the Internet",
        "${var.description}",
        "mailstrata/unknown_role/25: text",  # not a role
        "mailstrata/smtp-in/25: text",  # the slug, not the role value
        "mailstrata/smtp_in/0: text",  # port out of range
        "mailstrata/smtp_in/65536: text",
        "mailstrata/smtp_in/25/admin/extra: text",
        "mailstrata/smtp_in/25 text",  # no colon
        "mailstrata/smtp_in/25:text",  # no blank after the colon
        " mailstrata/smtp_in/25: leading blank",
        "MAILSTRATA/smtp_in/25: upper case",
    ],
)
def test_parse_marker_rejects(description: object) -> None:
    assert parse_marker(description) is None


def test_format_marker_round_trips() -> None:
    text = format_marker(Role.MAILSTORE, "SSH from admin networks", port=22, admin=True)
    assert text == "mailstrata/mailstore/22/admin: SSH from admin networks"
    assert parse_marker(text) == Marker(role=Role.MAILSTORE, port=22, admin=True, text="SSH from admin networks")


def test_format_marker_without_port() -> None:
    assert format_marker(Role.SMTP_IN, "VIP floating IP") == "mailstrata/smtp_in: VIP floating IP"


def test_format_marker_rejects_bad_port() -> None:
    with pytest.raises(ValueError, match=r"^port: must be within 1\.\.65535, got 70000$"):
        format_marker(Role.SMTP_IN, "x", port=70000)
