"""Putting rendered text into Terraform JSON, and reading it back exactly as Nova receives it.

Rendered files contain `${...}` and `%{...}` of their own (shell, Dovecot's `%{ldap:info}`), which
Terraform would take for interpolations and directives: `escape()` doubles them, leaving cdktf tokens
and Terraform references alone. `evaluate_user_data()` is the reverse, used by the tests and the twin:
it evaluates the user-data expression the constructs write, with the values Terraform would supply.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Mapping, Sequence

# A reference the constructs put in rendered text: a cdktf token, or a plain Terraform reference
# such as ${var.ad_bind_password} or ${base64encode(tls_private_key.dkim.private_key_pem)}.
_TOKEN = re.compile(r"\$\{TfToken\[[^\]]+\]\}")
_KEEP = re.compile(r"\$\{(?=TfToken\[|var\.|local\.|base64encode\(|openstack_|tls_|random_)")
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


# ---- evaluation (tests and twin) -------------------------------------------------------------------

_EXPR = re.compile(
    r'^\$\{(?P<gz>base64gzip\()?join\("\\n", concat\(\[(?P<head>.*?)\], local\.(?P<local>[\w-]+)\)\)\)?\}$',
    re.S,
)
_INTERP = re.compile(r"(?<!\$)\$\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")


def _interpolate(line: str, resolve: Callable[[str], str]) -> str:
    out = _INTERP.sub(lambda m: resolve(m.group(1)), line)
    return out.replace("$${", "${").replace("%%{", "%{")


def evaluate_user_data(
    expression: str, locals_: Mapping[str, Sequence[str]], resolve: Callable[[str], str]
) -> bytes:
    """The bytes Nova receives before its own base64 step, for a user_data written by `MailLayer`.

    `resolve` maps a Terraform expression inside `${...}` (e.g. `var.ad_bind_password`) to its value.
    """
    m = _EXPR.match(expression)
    if not m:
        raise ValueError(f"not a mailstrata user_data expression: {expression[:80]!r}")
    head = json.loads(f"[{m.group('head')}]")
    body = locals_[m.group("local")]
    text = "\n".join(_interpolate(line, resolve) for line in [*head, *body])
    if m.group("gz"):
        # base64gzip's output is base64: Nova decodes it back to these gzip bytes.
        return gzip.compress(text.encode(), mtime=0)
    return text.encode()


def decode_user_data(data: bytes) -> str:
    """The cloud-config text of user data (gunzipped if needed), as cloud-init reads it."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode()
