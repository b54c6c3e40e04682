"""Recognising plaintext secrets in arguments and in configuration text (pure, no checkov).

Used by CKV_MAILSTRATA_4. A secret is "literal" when its value is written out; a value that starts with
`$` (a Terraform `${...}` reference or a shell variable, which also covers crypt hashes such as `$6$...`)
or `%{` is a reference and is skipped, as are switches such as `pass = yes`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mailstrata.policies._terraform import (
    TerraformModule,
    is_token,
    local_is_literal,
    local_strings,
    parse_template,
    walk_scalars,
)

# `-----BEGIN PRIVATE KEY-----`, `-----BEGIN RSA PRIVATE KEY-----`, `-----BEGIN OPENSSH PRIVATE KEY-----`,
# `-----BEGIN ENCRYPTED PRIVATE KEY-----`, `-----BEGIN PGP PRIVATE KEY BLOCK-----`, ...
PEM_PRIVATE_KEY_RE = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----")

# Names of arguments and settings that hold a password: `password`, `admin_pass`, `bind_pw` (Postfix
# LDAP tables), `dnpass` (Dovecot LDAP), `ldap_bind_pw` and `ldap_password` (saslauthd), `bindPassword`
# (SOGo), `plain_text_passwd` (cloud-init), `client_secret`, `private_key_pem`, `payload` of a secret.
_SECRET_NAME_RE = re.compile(
    r"(?:password|passwd|passphrase|secret|private_?key(?:_pem)?)$"
    r"|(?:^|[_.\-])(?:pass|pw|pwd)$"
    r"|^(?:dnpass|bindpw|rootpw|payload)$",
    re.IGNORECASE,
)

# `key = value`, `key: value`, `key=value`, `"key": "value"`, `$perl_var = 'value';` on one line. A key
# right after `^` or `/` is part of a pattern (`sed 's/^password=//p'`), not an assignment.
_ASSIGNMENT_RE = re.compile(
    r"""(?<![\w.\-^/])["']?(?P<key>[A-Za-z_][\w.\-]*)["']?[ \t]*[=:][ \t]*"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|'[^']*'|[^\s;,"'}\]]+)?"""
)
# nslcd.conf / slapd.conf style: `bindpw secret`, `rootpw secret` (name, blanks, value).
_SPACED_RE = re.compile(r"^\s*(?P<key>bindpw|rootpw)[ \t]+(?P<value>\S+)", re.IGNORECASE)
# `mysql://user:password@host/db` (SOGo's database URLs, for instance).
_URL_CREDENTIALS_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s\"']+:(?P<value>[^@/\s\"']+)@")

# Lines that are comments in the formats user-data carries (shell, Postfix, Dovecot, YAML, SOGo's plist,
# SQL, ini): their prose ("holds the bind password: 0640 root") is not a setting. PEM keys and URL
# credentials are still looked for in them.
_COMMENT_RE = re.compile(r"^\s*(?:#|//|/\*|\*|;|--)")

_SWITCH_VALUES = frozenset({"yes", "no", "true", "false", "on", "off", "none", "null", "~", "|", ">", "|-", ">-"})


@dataclass(frozen=True)
class SecretFinding:
    """One plaintext secret: what kind it is and the setting or argument that holds it (never the value)."""

    kind: str  # "private key", "password setting", "URL credentials"
    name: str  # the setting name, e.g. `bind_pw`; empty for a private key

    def __str__(self) -> str:
        if self.kind == "private key":
            return "a literal PEM private key"
        if self.kind == "URL credentials":
            return "a literal password in a URL (`scheme://user:password@host`)"
        return f"`{self.name}` set to a literal value"


def is_secret_name(name: str) -> bool:
    """True for an argument or setting name that holds a password or a private key."""
    return _SECRET_NAME_RE.search(name) is not None


def is_literal_value(value: str) -> bool:
    """True when `value` is written out, not a reference, an empty value or a yes/no switch."""
    stripped = value.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "\"'":
        stripped = stripped[1:-1].strip()
    if not stripped:
        return False
    if stripped.startswith(("$", "%{")):
        return False
    if stripped.endswith("("):  # a function call (`PASSWORD(` in SQL): its argument is what matters
        return False
    return stripped.lower() not in _SWITCH_VALUES


def find_secrets(text: str) -> list[SecretFinding]:
    """Every plaintext secret in `text`, in order: PEM private keys and password settings, line by line."""
    findings: list[SecretFinding] = []
    if PEM_PRIVATE_KEY_RE.search(text):
        findings.append(SecretFinding("private key", ""))
    for line in text.splitlines():
        findings.extend(_line_secrets(line))
    return findings


def _line_secrets(line: str) -> list[SecretFinding]:
    findings: list[SecretFinding] = []
    spaced = _SPACED_RE.match(line)
    if spaced and not spaced["value"].startswith(("=", ":")) and is_literal_value(spaced["value"]):
        findings.append(SecretFinding("password setting", spaced["key"]))
    for match in () if _COMMENT_RE.match(line) else _ASSIGNMENT_RE.finditer(line):
        value = match["value"]
        if value is not None and is_secret_name(match["key"]) and is_literal_value(value):
            findings.append(SecretFinding("password setting", match["key"]))
    for match in _URL_CREDENTIALS_RE.finditer(line):
        if is_literal_value(match["value"]):
            findings.append(SecretFinding("URL credentials", ""))
    return findings


def block_secrets(conf: Mapping[str, Any], module: TerraformModule | None) -> Iterator[str]:
    """Describe each plaintext secret in a resource's or provider's arguments, as checkov parsed them.

    String arguments are taken apart (`parse_template`); `module`, when given, resolves the locals they
    refer to. Each description names the argument (and the local and line) but never the value.
    """
    for path, key, value in walk_scalars(conf):
        if isinstance(value, bool):
            continue
        written_out = isinstance(value, int | float) or (not is_token(value) and is_literal_value(value))
        if is_secret_name(key) and written_out:
            yield f"{path}: `{key}` set to a literal value"
            continue
        if not isinstance(value, str):
            continue
        template = parse_template(value)
        for literal in template.literals:
            for finding in find_secrets(literal):
                yield f"{path}: {finding}"
        if module is None:
            continue
        for name in template.locals:
            if is_secret_name(key) and local_is_literal(module, name):
                yield f"{path}: `{key}` set from local.{name}, a literal value"
            for origin, text in local_strings(module, name):
                for finding in find_secrets(text):
                    yield f"{path} via {origin}: {finding}"
