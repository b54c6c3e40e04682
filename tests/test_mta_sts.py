"""MTA-STS (RFC 8461): the policy text, its id, and the settings that choose them.

No MTA-STS policy parser is installed here (PyPI's postfix-mta-sts-resolver parses with `splitlines()` and
`partition(':')`, which accepts nearly anything), so the policy is judged by RFC 8461 section 3.2's own ABNF,
transcribed below with the prose rules that go with it. The webmail tests (tests/userdata/roles/
test_webmail.py) apply the same check to what nginx actually serves.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from mailstrata import defaults
from mailstrata.config.model import Mail, MtaSts
from mailstrata.errors import ConfigError
from mailstrata.mta_sts import MtaStsMode, MtaStsSettings, mx_host, policy_host, policy_id, policy_text
from tests.config._support import default_data, problems_of

# ---- RFC 8461 section 3.2, the policy grammar ---------------------------------------------------------
#
#   sts-policy-record        = sts-policy-field *WSP
#                              *(sts-policy-term sts-policy-field *WSP)
#                              [sts-policy-term]
#   sts-policy-field         = sts-policy-version / sts-policy-mode / sts-policy-max-age /
#                              sts-policy-mx / sts-policy-extension
#   sts-policy-field-delim   = ":" *WSP
#   sts-policy-version       = %s"version" sts-policy-field-delim %s"STSv1"
#   sts-policy-mode          = %s"mode" sts-policy-field-delim ( %s"testing" / %s"enforce" / %s"none" )
#   sts-policy-mx            = %s"mx" sts-policy-field-delim ["*."] Domain        ; Domain: RFC 5321 4.1.2
#   sts-policy-max-age       = %s"max_age" sts-policy-field-delim 1*10(DIGIT)
#   sts-policy-extension     = sts-policy-ext-name sts-policy-field-delim sts-policy-ext-value
#   sts-policy-ext-name      = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
#   sts-policy-ext-value     = sts-policy-vchar [*(%x20 / sts-policy-vchar) sts-policy-vchar]
#   sts-policy-vchar         = %x21-7E / UTF8-2 / UTF8-3 / UTF8-4
#   sts-policy-term          = LF / CRLF
#
# and its prose: version, mode and max_age each exactly once; mx at least once unless mode is none;
# max_age "MUST be representable as an integer from 0 to 31557600"; at most 64 KB (section 3.3).
# ALPHA, DIGIT and WSP (space, tab) are RFC 5234's core rules; %s"..." is case-sensitive (RFC 7405).

_WSP = r"[ \t]*"
_DELIM = ":" + _WSP
_LET_DIG = r"[A-Za-z0-9]"
_SUB_DOMAIN = rf"{_LET_DIG}(?:[A-Za-z0-9-]*{_LET_DIG})?"  # RFC 5321: Let-dig [Ldh-str]
_DOMAIN = rf"{_SUB_DOMAIN}(?:\.{_SUB_DOMAIN})*"
_VCHAR = r"[!-~\x80-\U0010ffff]"  # %x21-7E and UTF-8 beyond ASCII
_FIELDS = {
    "version": rf"(?P<version>version){_DELIM}(?P<version_v>STSv1)",
    "mode": rf"(?P<mode>mode){_DELIM}(?P<mode_v>testing|enforce|none)",
    "mx": rf"(?P<mx>mx){_DELIM}(?P<mx_v>(?:\*\.)?{_DOMAIN})",
    "max_age": rf"(?P<max_age>max_age){_DELIM}(?P<max_age_v>[0-9]{{1,10}})",
    "ext": rf"(?P<ext>[A-Za-z0-9][A-Za-z0-9_.-]{{0,31}}){_DELIM}(?P<ext_v>{_VCHAR}(?:(?: |{_VCHAR})*{_VCHAR})?)",
}
_FIELD = re.compile("(?:" + "|".join(_FIELDS.values()) + ")" + _WSP + r"(?=\r\n|\n|\Z)")
_KNOWN = ("version", "mode", "mx", "max_age")
_TERM = re.compile(r"\r\n|\n")


def rfc8461_policy(text: str) -> dict[str, Any]:
    """The fields of a policy text that RFC 8461 3.2 accepts: {"version", "mode", "max_age", "mx": [...]};
    raises AssertionError naming the first rule the text breaks."""
    assert len(text.encode()) <= 64 * 1024, "over 64 KB (RFC 8461 3.3)"
    fields: dict[str, Any] = {"mx": []}
    pos = 0
    while True:
        m = _FIELD.match(text, pos)
        assert m is not None, f"not an sts-policy-field at offset {pos}: {text[pos:pos + 40]!r}"
        if m["version"] or m["mode"] or m["max_age"]:
            key = m["version"] or m["mode"] or m["max_age"]
            assert key not in fields, f"{key} appears twice"
            fields[key] = m[f"{key}_v"]
        elif m["mx"]:
            fields["mx"].append(m["mx_v"])
        else:  # sts-policy-extension: unknown fields are allowed and ignored (section 3.2), known ones are not
            assert m["ext"] not in _KNOWN, f"{m['ext']}: {m['ext_v']!r} is not a valid {m['ext']} value"
        pos = m.end()
        if pos == len(text):
            break
        t = _TERM.match(text, pos)
        assert t is not None, f"not an sts-policy-term (LF / CRLF) at offset {pos}: {text[pos:pos + 10]!r}"
        pos = t.end()
        if pos == len(text):  # the optional trailing [sts-policy-term]
            break
    for key in ("version", "mode", "max_age"):
        assert key in fields, f"{key} is required"
    assert 0 <= int(fields["max_age"]) <= 31_557_600, f"max_age out of range: {fields['max_age']}"
    assert fields["mx"] or fields["mode"] == "none", "mx is required unless mode is none"
    return fields


ZONE = "cloud0.hc.mycompany.dom"


# ---- the grammar check itself: it refuses what RFC 8461 refuses --------------------------------------


@pytest.mark.parametrize(
    ("text", "broken"),
    [
        ("version: STSv1\r\nmode: testing\r\nmax_age: 1\r\n", "mx is required"),
        ("version: STSv1\rmode: none\rmax_age: 1\r", "not an sts-policy-field at offset 0"),  # a CR ends no line
        ("# mailstrata\nversion: STSv1\nmode: none\nmax_age: 1\n", "not an sts-policy-field at offset 0"),
        ("version: STSv1\nmode: Enforce\nmx: a.b\nmax_age: 1\n", "'Enforce' is not a valid mode"),  # %s"": case
        ("version: STSv1\nmode: none\nmax_age: 31557601\n", "max_age out of range"),
        ("version: STSv1\nmode: none\nmode: none\nmax_age: 1\n", "mode appears twice"),
        ("version: STSv1\nmode: testing\nmx: smtp_in.b\nmax_age: 1\n", "'smtp_in.b' is not a valid mx"),
        ("version: STSv1\n\nmode: none\nmax_age: 1\n", "not an sts-policy-field"),  # an empty line
    ],
)
def test_the_rfc_8461_grammar_check_refuses_a_broken_policy(text: str, broken: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(broken)):
        rfc8461_policy(text)


def test_the_rfc_8461_grammar_check_accepts_the_rfcs_own_example() -> None:
    # RFC 8461 3.2's example, LF-terminated as its ABNF allows.
    example = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\n" \
              "max_age: 604800"
    assert rfc8461_policy(example) == {"version": "STSv1", "mode": "enforce", "max_age": "604800",
                                       "mx": ["mail.example.com", "*.example.net", "backupmx.example.com"]}


# ---- policy_text -------------------------------------------------------------------------------------


def test_the_platform_policy_is_four_crlf_terminated_lines() -> None:
    assert MtaStsSettings().policy(ZONE) == (
        "version: STSv1\r\nmode: testing\r\nmx: smtp-in.cloud0.hc.mycompany.dom\r\nmax_age: 604800\r\n"
    )


@pytest.mark.parametrize("mode", ["enforce", "testing", "none"])
@pytest.mark.parametrize("hosts", [["smtp-in.cloud0.hc.mycompany.dom"], ["mx1.example.org.", "*.Example.NET"]])
def test_every_policy_text_follows_the_rfc_8461_grammar(mode: str, hosts: list[str]) -> None:
    text = policy_text(hosts, mode=mode, max_age=86400)
    assert rfc8461_policy(text) == {
        "version": "STSv1", "mode": mode, "max_age": "86400", "mx": [h.rstrip(".").lower() for h in hosts]
    }
    assert "\n" not in text.replace("\r\n", "")  # CRLF only: what the prose of 3.2 says


def test_a_repeated_mx_host_is_listed_once() -> None:
    text = policy_text(["a.example", "A.example.", "b.example"], mode="testing", max_age=86400)
    assert rfc8461_policy(text)["mx"] == ["a.example", "b.example"]


def test_mode_none_needs_no_mx() -> None:
    assert policy_text([], mode="none", max_age=86400) == "version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n"


def test_every_mistake_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        policy_text(["smtp in.example", "ok.example", "x.example\n"], mode="strict", max_age=31_557_601)
    assert [str(p) for p in err.value.problems] == [
        "mode: must be one of enforce, testing, none, got 'strict'",
        "max_age: must be whole seconds from 0 to 31557600 (RFC 8461 3.2), got 31557601",
        "mx_hosts: must be host names, each optionally '*.'-prefixed (RFC 8461 3.2), got 'smtp in.example'",
        "mx_hosts: must be host names, each optionally '*.'-prefixed (RFC 8461 3.2), got 'x.example\\n'",
    ]


def test_no_mx_host_outside_mode_none_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        policy_text([], mode="enforce", max_age=86400)
    assert [str(p) for p in err.value.problems] == [
        "mx_hosts: must name at least one MX host in mode enforce, got none"
    ]


# ---- policy_id ---------------------------------------------------------------------------------------


def test_the_id_is_20_hex_characters_of_the_texts_sha256() -> None:
    text = MtaStsSettings().policy(ZONE)
    assert policy_id(text) == hashlib.sha256(text.encode()).hexdigest()[:20]
    assert re.fullmatch(r"[A-Za-z0-9]{1,32}", policy_id(text))  # RFC 8461 3.1: sts-id = 1*32(ALPHA / DIGIT)


def test_the_id_changes_with_every_field_and_only_then() -> None:
    base = policy_text(["smtp-in.a.example"], mode="testing", max_age=604800)
    variants = [
        policy_text(["smtp-in.a.example"], mode="enforce", max_age=604800),
        policy_text(["smtp-in.a.example"], mode="testing", max_age=604801),
        policy_text(["smtp-in.b.example"], mode="testing", max_age=604800),
        policy_text(["smtp-in.a.example", "smtp-in.b.example"], mode="testing", max_age=604800),
    ]
    assert policy_id(policy_text(["SMTP-IN.a.example."], mode="testing", max_age=604800)) == policy_id(base)
    assert len({policy_id(t) for t in [base, *variants]}) == 5


# ---- names -------------------------------------------------------------------------------------------


def test_the_mx_is_the_one_the_platform_publishes_and_the_policy_host_is_rfc_8461s() -> None:
    # mailstrata/stacks/mail_platform_stack.py publishes `<domain>. MX 10 smtp-in.<zone>.`
    assert (mx_host(ZONE + "."), policy_host("domain02.dom")) == (f"smtp-in.{ZONE}", "mta-sts.domain02.dom")


# ---- the config --------------------------------------------------------------------------------------


def test_the_config_defaults_are_testing_and_a_week() -> None:
    assert (Mail().mta_sts, MtaStsSettings()) == (
        MtaSts(mode="testing", max_age=604800),
        MtaStsSettings(mode=MtaStsMode(defaults.MTA_STS_MODE), max_age=defaults.MTA_STS_MAX_AGE),
    )
    assert (defaults.MTA_STS_MODE, defaults.MTA_STS_MAX_AGE) == ("testing", 604800)


def test_a_mode_outside_rfc_8461_or_a_max_age_under_a_day_is_refused_by_the_config() -> None:
    data = default_data()
    data.setdefault("mail", {})["mta_sts"] = {"mode": "strict", "max_age": 3600}
    assert problems_of(data) == [
        "mail.mta_sts.mode: is not one of the choices, got 'strict'; use one of: enforce, testing, none",
        "mail.mta_sts.max_age: must be at least 86400, got 3600; use a whole number from 86400 to 31557600",
    ]
