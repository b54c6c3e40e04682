"""Putting rendered text into Terraform JSON, and reading it back exactly as Nova receives it.

Rendered files contain `${...}` and `%{...}` of their own (shell, Dovecot's `%{ldap:info}`), which
Terraform would take for interpolations and directives: `escape()` doubles them, leaving cdktf tokens
and Terraform references alone. Nothing here evaluates Terraform: the tests and the twin hand the
expressions to Terraform itself (`mailstrata.terraform_eval`); `references()` and `substitute()` only find
the references `escape()` keeps and put Terraform's values in their place.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Mapping, Sequence

# A reference the constructs put in rendered text: a cdktf token, or a plain Terraform reference
# such as ${var.ad_bind_password}, ${base64encode(tls_private_key.dkim.private_key_pem)} or a port's address as
# MailLayer writes it, ${element(openstack_networking_port_v2.x.all_fixed_ips, 0)}, or a secret escaped for a file
# format, ${replace(replace(var.ad_bind_password, ...), ...)} (`mailstrata.userdata.daemons.ldap.quoted_secret`).
_KEEP = re.compile(
    r"\$\{(?=TfToken\[|var\.|local\.|base64encode\(|element\(openstack_|openstack_|tls_|random_|replace\(replace\(var\.)"
)
_DOLLAR = re.compile(r"\$\{")
_PERCENT = re.compile(r"%\{")


def escape(text: str) -> str:
    """Double every `${` and `%{` that is not one of our references, so Terraform keeps it literal."""
    out: list[str] = []
    pos = 0
    for m in _DOLLAR.finditer(text):
        out.append(_PERCENT.sub("%%{", text[pos : m.start()]))
        out.append("${" if _KEEP.match(text, m.start()) else "$${")
        pos = m.end()
    out.append(_PERCENT.sub("%%{", text[pos:]))
    return "".join(out)


def hcl_string(value: str) -> str:
    """A Terraform string literal (JSON's quoting is a subset of HCL's)."""
    return json.dumps(value, ensure_ascii=False)


def user_data_expression(header: Sequence[str], local_name: str, *, gzip_it: bool) -> str:
    """`join` the per-server header lines with the layer's shared body (a `locals` list of lines)."""
    head = ", ".join(hcl_string(escape(h)) for h in header)
    inner = f'join("\\n", concat([{head}], local.{local_name}))'
    return "${" + (f"base64gzip({inner})" if gzip_it else inner) + "}"


def size_after_base64(text: str, *, gzip_it: bool) -> int:
    """Bytes Nova counts: the user data after base64 (and gzip, if used)."""
    data = text.encode()
    if gzip_it:
        data = gzip.compress(data, compresslevel=9, mtime=0)
    return 4 * ((len(data) + 2) // 3)


# ---- reading it back (tests and twin) -------------------------------------------------------------


def references(text: str) -> tuple[str, ...]:
    """The Terraform expressions referenced in rendered (unescaped) text, in order, without repeats: the
    inside of every `${...}` that `escape()` keeps. Terraform computes their values (`terraform_eval`)."""
    return tuple(dict.fromkeys(expr for _, _, expr in _spans(text)))


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Rendered text as it reaches the server: each reference replaced by its value (`values`: expression
    -> the value Terraform computed for it). Everything else is left exactly as rendered."""
    out: list[str] = []
    pos = 0
    for start, end, expr in _spans(text):
        if expr not in values:
            raise KeyError(f"no value for the Terraform reference ${{{expr}}}")
        out += [text[pos:start], values[expr]]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def interpolations(template: str) -> tuple[str, ...]:
    """The expressions in the `${...}` of an escaped template as it stands in cdk.tf.json (after
    `escape()` and cdktf's token resolution), in order, without repeats. Only finds them; Terraform
    evaluates them."""
    return tuple(dict.fromkeys(expr for _, _, expr in _spans(template, escaped=True)))


def _spans(text: str, *, escaped: bool = False) -> list[tuple[int, int, str]]:
    """(start, end, expression) of each reference `escape()` keeps (in an escaped template: of each
    `${` not right after a `$`); the end is the `}` that closes it (quoted strings inside are skipped, so a
    `}` in an argument does not end it)."""
    spans = []
    for m in _DOLLAR.finditer(text):
        if escaped:
            if text[m.start() - 1 : m.start()] == "$":  # `$${` is a literal `${` (whatever precedes it)
                continue
        elif not _KEEP.match(text, m.start()):
            continue
        depth, i, quoted = 1, m.end(), False
        while i < len(text) and depth:
            c = text[i]
            if quoted:
                if c == "\\":
                    i += 1
                elif c == '"':
                    quoted = False
            elif c == '"':
                quoted = True
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            i += 1
        if depth:
            raise ValueError(f"unterminated Terraform reference at {text[m.start():m.start() + 60]!r}")
        spans.append((m.start(), i, text[m.end() : i - 1]))
    return spans


def decode_user_data(data: bytes) -> str:
    """The cloud-config text of user data (gunzipped if needed), as cloud-init reads it."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode()
