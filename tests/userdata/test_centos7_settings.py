"""Every setting name the CentOS 7 renders write is one that CentOS 7's Postfix 2.10.1 and Dovecot 2.2.36 know.

No daemon here parses the CentOS 7 files: Debian 12's Postfix 3.7 and Dovecot 2.3 know other names (Dovecot 2.3
refuses 2.2's ssl_protocols). So the names are checked against what the 2.10.1 and 2.2.36 parsers know, kept in
tests/data/centos7/ (see its README for where each list comes from):

- Postfix: a main.cf parameter or a master.cf `-o` override must be built in (`postconf -d` of 2.10.1), a
  per-service parameter of a delivery or spawn service in master.cf, or a user-defined parameter that
  postconf 2.10 accepts: one with a value that is referenced as `$name` in another value, or listed in
  smtpd_restriction_classes (postconf_user.c, postconf_service.c and postconf_unused.c of 2.10.1). Everything
  else is what postconf 2.10 reports as "unused parameter" and Postfix ignores.
- Dovecot: core settings at the top level and in `protocol` sections, service and listener settings as
  `doveconf -a` shows them, namespace/mailbox/passdb/userdb settings from 2.2.36's setting tables, and
  `plugin { }` settings from the plugins' and Pigeonhole 0.4.24's sources (Dovecot accepts any name there).
  Also 2.2's old syntax: `namespace private|shared|public { }` is read as an obsolete untyped namespace.

Legacy main.cf-style DBMS parameters (`ldap:name` without a path) are not modelled: no render uses them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import pytest

from mailstrata.roles import Role
from mailstrata.userdata.context import FtsBackend, LayerContext, Peer
from mailstrata.userdata.profiles import load_profile
from mailstrata.userdata.render import render_layer
from tests.userdata import _sample

DATA = Path(__file__).resolve().parents[1] / "data" / "centos7"
MAIN_CF, MASTER_CF, DOVECOT_CONF = "/etc/postfix/main.cf", "/etc/postfix/master.cf", "/etc/dovecot/dovecot.conf"


# ---- the renders ----------------------------------------------------------------------------------


def _variants() -> Iterator[tuple[str, LayerContext]]:
    """Every role's sample context, the mailstore with Solr as its FTS backend (the other plugin setting), and the
    mailstore with per-user placement."""
    for role in Role:
        yield role.value, _sample.context(role)
    ms = _sample.context(Role.MAILSTORE)
    yield "mailstore-solr", replace(ms, platform=replace(ms.platform, fts=FtsBackend.SOLR))
    # Per-user placement (the layer's servers known): the proxy passdb, peer listeners, lmtp_proxy.
    peers = (Peer("mailstore-01", "10.10.3.11"), Peer("mailstore-02", "10.10.3.12"))
    yield "mailstore-placement", replace(ms, peers=peers)


@cache
def centos7_files() -> dict[str, dict[str, str]]:
    """{variant: {path: content}} of the Postfix and Dovecot files, rendered with the centos7 profile."""
    out: dict[str, dict[str, str]] = {}
    for name, ctx in _variants():
        ud = render_layer(ctx, os=load_profile("centos7", ctx.role))
        out[name] = {f.path: f.content for f in ud.files if f.path in (MAIN_CF, MASTER_CF, DOVECOT_CONF)}
    return out


def _files_named(path: str) -> list[tuple[str, str]]:
    return [(variant, files[path]) for variant, files in centos7_files().items() if path in files]


# ---- Postfix 2.10.1 --------------------------------------------------------------------------------


def _names_values(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            out[name.strip()] = value.strip()
    return out


POSTFIX_BUILTIN = frozenset(_names_values(DATA / "postfix-2.10.1-postconf-d.txt"))
# postconf_service.c (2.10.1): a master.cf service whose command is one of these gets `<service><suffix>`.
_DELIVERY_SUFFIXES = ("_recipient_limit", "_extra_recipient_limit", "_recipient_refill_limit",
                      "_recipient_refill_delay", "_delivery_slot_cost", "_delivery_slot_loan",
                      "_delivery_slot_discount", "_minimum_delivery_slots", "_initial_destination_concurrency",
                      "_destination_concurrency_limit", "_destination_recipient_limit",
                      "_destination_concurrency_positive_feedback", "_destination_concurrency_negative_feedback",
                      "_destination_concurrency_failed_cohort_limit", "_destination_rate_delay")
SERVICE_SUFFIXES: dict[str, tuple[str, ...]] = {
    **{cmd: _DELIVERY_SUFFIXES for cmd in ("local", "error", "virtual", "smtp", "lmtp")},
    "pipe": ("_time_limit", *_DELIVERY_SUFFIXES),
    "spawn": ("_time_limit",),
}
# mac_expand: $name, ${name}, $(name), ${name?text}, ${name:text}
_REFERENCE = re.compile(r"\$[{(]?([A-Za-z0-9_]+)")


@dataclass(frozen=True)
class MasterEntry:
    service: str
    command: str
    options: dict[str, str]


def parse_main_cf(text: str) -> dict[str, str]:
    """main.cf's `name = value` entries (continuation lines start with white space)."""
    out: dict[str, str] = {}
    name = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            assert name is not None, f"continuation line before any parameter: {line!r}"
            out[name] += " " + line.strip()
            continue
        name, eq, value = line.partition("=")
        assert eq, f"main.cf line without '=': {line!r}"
        name = name.strip()
        out[name] = value.strip()
    return out


def parse_master_cf(text: str) -> list[MasterEntry]:
    """Each master.cf service with its command (field 8) and its `-o name=value` overrides."""
    entries: list[list[str]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            entries[-1].extend(line.split())
        else:
            entries.append(line.split())
    out = []
    for fields in entries:
        options: dict[str, str] = {}
        args = iter(fields[8:])
        for arg in args:
            if arg == "-o":
                arg = "-o" + next(args)
            if arg.startswith("-o"):
                name, _, value = arg[2:].partition("=")
                options[name] = value
        out.append(MasterEntry(service=fields[0], command=fields[7], options=options))
    return out


def postfix_unknown(main_text: str, master_text: str) -> list[str]:
    """What postconf 2.10.1 reports as "unused parameter" in these files: names that are neither built in, nor
    per-service, nor user-defined parameters that something references."""
    main = parse_main_cf(main_text)
    master = parse_master_cf(master_text)
    service_params = {e.service + suffix for e in master for suffix in SERVICE_SUFFIXES.get(e.command, ())}
    known = POSTFIX_BUILTIN | service_params

    def classes(scope: dict[str, str]) -> set[str]:
        return set(re.split(r"[,\s]+", scope.get("smtpd_restriction_classes", "").strip())) - {""}

    def references(values: list[str]) -> set[str]:
        return {m for v in values for m in _REFERENCE.findall(v)}

    global_classes = classes(main)
    # $name anywhere (main.cf or any master.cf entry) validates a main.cf name=value (flag_user_parameter)
    everywhere = references(list(main.values())) | {r for e in master for r in references(list(e.options.values()))}
    unknown = [f"main.cf: {n}" for n in main if n not in known and n not in everywhere | global_classes]
    main_refs = references(list(main.values()))
    for e in master:
        # a local name is valid when referenced in its own entry or in main.cf, or named as a restriction class
        local_valid = references(list(e.options.values())) | main_refs | global_classes | classes(e.options)
        unknown += [f"master.cf {e.service}: -o {n}" for n in e.options if n not in known and n not in local_valid]
    return unknown


def test_given_the_postfix_2_10_list_when_a_made_up_name_is_set_then_the_check_reports_it() -> None:
    main = ("myhostname = mx.example\nbogus_parameter = 1\nfoo = 2\nbar = $foo\n"
            "smtpd_restriction_classes = cls\ncls = x\n")
    master = ("smtp inet n - n - - smtpd\n  -o smtputf8_enable=no\n  -o local_thing=1\n  -o x=$local_thing\n"
              "spf unix - n n - 0 spawn\n  user=nobody argv=/bin/true\n")
    # The same four that postconf -n of a Postfix 2.10.1 built from upstream's v2.10.1 tag reported for these
    # files: bar has a value but nothing references it, x likewise; smtputf8_enable is Postfix 3.0's.
    assert postfix_unknown(main + "spf_time_limit = 3600\n", master) == [
        "main.cf: bogus_parameter",
        "main.cf: bar",
        "master.cf smtp: -o smtputf8_enable",
        "master.cf smtp: -o x",
    ]


@pytest.mark.parametrize(("variant", "main_text", "master_text"), [
    pytest.param(variant, files[MAIN_CF], files[MASTER_CF], id=variant)
    for variant, files in centos7_files().items() if MAIN_CF in files])
def test_given_a_centos7_render_when_its_postfix_names_are_checked_then_postfix_2_10_knows_every_one(
        variant: str, main_text: str, master_text: str) -> None:
    assert postfix_unknown(main_text, master_text) == []


# ---- Dovecot 2.2.36 --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DovecotNames:
    top: frozenset[str]  # settings of the top level (and of protocol sections)
    service: frozenset[str]
    listener: dict[str, frozenset[str]]  # inet_listener / unix_listener / fifo_listener -> settings
    sections: dict[str, frozenset[str]]  # namespace / mailbox / passdb / userdb -> settings
    plugin: frozenset[str]
    plugin_patterns: tuple[re.Pattern[str], ...]


@cache
def dovecot_names() -> DovecotNames:
    top: set[str] = set()
    service: set[str] = set()
    listener: dict[str, set[str]] = {}
    stack: list[str] = []
    for line in (DATA / "dovecot-2.2.36-doveconf-a.txt").read_text().splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.endswith("{"):
            stack.append(s.split()[0])
        elif s == "}":
            stack.pop()
        else:
            name = s.partition("=")[0].strip()
            if not stack:
                top.add(name)
            elif stack == ["service"]:
                service.add(name)
            else:
                listener.setdefault(stack[-1], set()).add(name)
    sections: dict[str, set[str]] = {}
    for line in (DATA / "dovecot-2.2.36-sections.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            kind, name = line.split()
            sections.setdefault(kind, set()).add(name)
    plugin: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    for line in (DATA / "dovecot-2.2.36-plugin-settings.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name = line.split()[0]
            if "<N>" in name:
                patterns.append(re.compile(re.escape(name).replace("<N>", r"[0-9]+") + "$"))
            else:
                plugin.add(name)
    return DovecotNames(top=frozenset(top), service=frozenset(service),
                        listener={k: frozenset(v) for k, v in listener.items()},
                        sections={k: frozenset(v) for k, v in sections.items()},
                        plugin=frozenset(plugin), plugin_patterns=tuple(patterns))


# Which sections may hold which: (parent kind or "" for the top level) -> child kinds.
_SECTIONS = {
    "": {"service", "protocol", "namespace", "passdb", "userdb", "plugin", "local", "remote"},
    "protocol": {"namespace", "passdb", "userdb", "plugin"},
    "local": {"protocol", "namespace", "passdb", "userdb", "plugin"},
    "remote": {"protocol", "namespace", "passdb", "userdb", "plugin"},
    "service": {"inet_listener", "unix_listener", "fifo_listener"},
    "namespace": {"mailbox"},
}
# config/old-set-parser.c (2.2.36), old_namespace(): these names are read as 1.x's `namespace TYPE { }`.
OLD_NAMESPACE_NAMES = ("private", "shared", "public")


def dovecot_unknown(text: str) -> list[str]:
    """Setting names and sections of a dovecot.conf that 2.2.36 (with Pigeonhole 0.4.24) does not know, and
    2.2's obsolete namespace syntax."""
    names = dovecot_names()
    problems: list[str] = []
    stack: list[str] = []  # section kinds, outermost first
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#") or s.startswith("!include"):
            continue
        if s == "}":
            stack.pop()
            continue
        if s.endswith("{"):
            words = s[:-1].split()
            kind = words[0]
            parent = stack[-1] if stack else ""
            if kind not in _SECTIONS.get(parent, set()):
                problems.append(f"line {lineno}: section {kind!r} inside {parent or 'the top level'!r}")
            if kind == "namespace" and len(words) > 1 and words[1] in OLD_NAMESPACE_NAMES:
                problems.append(f"line {lineno}: 'namespace {words[1]} {{' is 2.2's obsolete untyped namespace "
                                "syntax; name it otherwise")
            stack.append(kind)
            continue
        name = s.split("=", 1)[0].strip()
        where = stack[-1] if stack else ""
        if where in ("", "protocol", "local", "remote"):
            ok = name in names.top
        elif where == "service":
            ok = name in names.service
        elif where.endswith("_listener"):
            ok = name in names.listener.get(where, frozenset())
        elif where == "plugin":
            ok = name in names.plugin or any(p.match(name) for p in names.plugin_patterns)
        else:
            ok = name in names.sections.get(where, frozenset())
        if not ok:
            problems.append(f"line {lineno}: {name} (in {where or 'the top level'})")
    assert not stack, f"unclosed sections: {stack}"
    return problems


def test_given_the_dovecot_2_2_lists_when_made_up_names_are_set_then_the_check_reports_them() -> None:
    conf = ("ssl_min_protocol = TLSv1.2\nssl_protocols = !SSLv3\nnamespace shared {\n  type = shared\n"
            "  bogus = 1\n}\nservice imap-login {\n  inet_listener imap {\n    port = 143\n    nope = 1\n  }\n}\n"
            "plugin {\n  quota_rule2 = x\n  sieve_before3 = y\n  fts_nothing = z\n}\n")
    assert dovecot_unknown(conf) == [
        "line 1: ssl_min_protocol (in the top level)",  # Dovecot 2.3
        "line 3: 'namespace shared {' is 2.2's obsolete untyped namespace syntax; name it otherwise",
        "line 5: bogus (in namespace)",
        "line 10: nope (in inet_listener)",
        "line 16: fts_nothing (in plugin)",
    ]


@pytest.mark.parametrize(("variant", "text"), [pytest.param(v, t, id=v) for v, t in _files_named(DOVECOT_CONF)])
def test_given_a_centos7_render_when_its_dovecot_names_are_checked_then_dovecot_2_2_knows_every_one(
        variant: str, text: str) -> None:
    assert dovecot_unknown(text) == []


# ---- DH groups on CentOS 7 ---------------------------------------------------------------------------


def test_given_centos7_when_dovecot_2_2_is_rendered_then_its_dh_parameters_are_2048_bits() -> None:
    # Dovecot 2.2 makes its own DH parameters (ssl-params), 1024 bits unless told; it has no ssl_dh file setting.
    text = centos7_files()[Role.MAILSTORE.value][DOVECOT_CONF]
    assert re.findall(r"(?m)^ssl_dh_parameters_length = (\d+)$", text) == ["2048"]
    assert not re.search(r"(?m)^ssl_dh\s*=", text)


@pytest.mark.parametrize("variant", [v for v, files in centos7_files().items() if MAIN_CF in files])
def test_given_centos7_when_postfix_is_rendered_then_it_offers_dhe_with_a_2048_bit_group(variant: str) -> None:
    main = parse_main_cf(centos7_files()[variant][MAIN_CF])
    assert main["smtpd_tls_dh1024_param_file"] == "/etc/postfix/ffdhe2048.pem"
