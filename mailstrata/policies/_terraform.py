"""Reading Terraform JSON the way the mailstrata checkov checks need it.

checkov's `terraform_json` framework hands a Python check the resource's attributes as parsed from the
file, each simple value wrapped in a one-element list (`{"port_range_min": [25]}`), with no variable or
local rendered: `user_data` arrives as the literal expression `${base64gzip(join(...local.x...))}`.
The helpers here unwrap values, recognise unresolved Terraform tokens, pull the literal text and the
`local.<name>` references out of an expression, and read the `locals` and resources of the file being
scanned, which checkov does not pass to resource checks.
"""

from __future__ import annotations

import inspect
import ipaddress
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

# Keys checkov adds to, or cdktf writes into, every block; they are not Terraform arguments.
META_KEYS = frozenset({"//", "__startline__", "__endline__", "start_line", "end_line"})

_LOCAL_REF_RE = re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)")
_HCL_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def is_token(value: object) -> bool:
    """True for a string holding an unresolved Terraform expression (`${...}` or a `%{...}` directive)."""
    return isinstance(value, str) and ("${" in value or "%{" in value)


def attr(conf: Mapping[str, Any], key: str) -> Any:
    """The value of argument `key` with checkov's one-element list removed; None when it is absent."""
    value = conf.get(key)
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def as_int(value: object) -> int | None:
    """`value` as an integer (JSON number or digit string), or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value.strip()):
        return int(value)
    return None


def is_world_prefix(prefix: object) -> bool:
    """True for a CIDR that covers every address of its family: `0.0.0.0/0`, `::/0` and their aliases."""
    if not isinstance(prefix, str) or is_token(prefix):
        return False
    try:
        return ipaddress.ip_network(prefix.strip(), strict=False).prefixlen == 0
    except ValueError:
        return False


def walk_scalars(value: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """Yield `(path, key, value)` for every scalar (str, int, float, bool) of a block, nested ones included.

    `key` is the name of the argument the value belongs to (list items keep their parent's key).
    checkov's one-element wrapping lists add no `[0]` to `path`; its bookkeeping keys and cdktf's `//`
    metadata are skipped.
    """
    yield from _walk_scalars(value, path, path.rsplit(".", 1)[-1])


def _walk_scalars(value: Any, path: str, key: str) -> Iterator[tuple[str, str, Any]]:
    if isinstance(value, str | int | float | bool):
        yield path, key, value
    elif isinstance(value, Mapping):
        for child_key, child in value.items():
            if child_key in META_KEYS:
                continue
            yield from _walk_scalars(child, f"{path}.{child_key}" if path else str(child_key), str(child_key))
    elif isinstance(value, list):
        # checkov wraps every simple value in a one-element list: keep the path free of those `[0]`s.
        if len(value) == 1:
            yield from _walk_scalars(value[0], path, key)
        else:
            for index, child in enumerate(value):
                yield from _walk_scalars(child, f"{path}[{index}]", key)


# --- expressions -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A Terraform string taken apart: its literal text and the expressions between `${` and `}`.

    `literals` holds the text outside any `${...}` plus every quoted string literal inside an expression,
    unescaped (`"\\n"` becomes a newline), so that `concat(["bind_pw = x"], ...)` yields `bind_pw = x`.
    `locals` holds the names of the `local.<name>` values the expressions refer to, in order of appearance.
    """

    literals: tuple[str, ...] = ()
    locals: tuple[str, ...] = ()


def parse_template(text: str) -> Template:
    """Split a Terraform template string into its literal text and the locals it refers to."""
    literals: list[str] = []
    local_names: list[str] = []
    _parse_template(text, literals, local_names)
    return Template(literals=tuple(literals), locals=tuple(dict.fromkeys(local_names)))


def _parse_template(text: str, literals: list[str], local_names: list[str]) -> None:
    outside: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith(("$${", "%%{"), i):  # escaped, stands for a literal `${` / `%{`
            outside.append(text[i + 1 : i + 3])
            i += 3
            continue
        if text.startswith(("${", "%{"), i):
            end = _closing_brace(text, i + 2)
            if end is None:  # unterminated: keep the rest as text rather than guess
                outside.append(text[i:])
                break
            literals.append("".join(outside))
            outside = []
            _parse_expression(text[i + 2 : end], literals, local_names)
            i = end + 1
            continue
        outside.append(text[i])
        i += 1
    literals.append("".join(outside))
    literals[:] = [part for part in literals if part]


def _parse_expression(expression: str, literals: list[str], local_names: list[str]) -> None:
    """Collect the string literals of an HCL expression and the locals named outside them."""
    code: list[str] = []
    i = 0
    while i < len(expression):
        if expression[i] == '"':
            end = _string_end(expression, i)
            raw = expression[i + 1 : end]
            # a quoted string may itself be a template: `"bind_pw = ${var.x}"`
            _parse_template(_unescape(raw), literals, local_names)
            code.append(" ")
            i = end + 1
            continue
        code.append(expression[i])
        i += 1
    local_names.extend(_LOCAL_REF_RE.findall("".join(code)))


def _string_end(text: str, start: int) -> int:
    """Index of the quote closing the string literal that opens at `start` (or the end of `text`)."""
    i = start + 1
    depth = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if char == "}" and depth:
            depth -= 1
        elif char == '"' and not depth:
            return i
        i += 1
    return len(text)


def _closing_brace(text: str, start: int) -> int | None:
    """Index of the `}` that closes an interpolation whose body starts at `start`."""
    depth = 1
    i = start
    while i < len(text):
        char = text[i]
        if char == '"':
            i = _string_end(text, i) + 1
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _unescape(raw: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", raw[i + 2 : i + 6]):
                out.append(chr(int(raw[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_HCL_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(raw[i])
        i += 1
    return "".join(out)


def resource_refs(expression: str, resource_type: str) -> tuple[str, ...]:
    """Names of the `<resource_type>.<name>` resources an expression refers to (`count` index allowed)."""
    pattern = re.compile(rf"(?<![\w.]){re.escape(resource_type)}\.([A-Za-z_][\w-]*)")
    return tuple(dict.fromkeys(pattern.findall(expression)))


# --- the file being scanned --------------------------------------------------------------------------


@dataclass(frozen=True)
class TerraformModule:
    """The raw `locals` and `resource` blocks of one Terraform JSON file (values exactly as written)."""

    path: Path
    locals: Mapping[str, Any] = field(default_factory=dict)
    resources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def resource(self, resource_type: str, name: str) -> Mapping[str, Any] | None:
        found = self.resources.get(resource_type, {}).get(name)
        return found if isinstance(found, Mapping) else None


def scanned_module() -> TerraformModule | None:
    """The Terraform JSON file that checkov's `terraform_json` runner is scanning right now.

    checkov passes a resource check only the resource's own attributes and a path relative to a root
    folder the check cannot see. The runner's `run_block` frame, further up the call stack, holds the
    file's full path (`full_file_path`); this reads it from there and loads the file. Returns None when
    not called under that runner (another framework, or a checkov whose internals changed): callers then
    treat what they cannot resolve as unresolved tokens. Pinned by tests/policies on checkov 3.3.30.
    """
    from checkov.terraform_json.runner import TerraformJsonRunner

    frame = inspect.currentframe()
    try:
        while frame is not None:
            if frame.f_code.co_name == "run_block" and isinstance(frame.f_locals.get("self"), TerraformJsonRunner):
                full_file_path = frame.f_locals.get("full_file_path")
                if isinstance(full_file_path, str):
                    return load_module(Path(full_file_path))
            frame = frame.f_back
        return None
    finally:
        del frame


def load_module(path: Path) -> TerraformModule | None:
    """Read the `locals` and `resource` blocks of a Terraform JSON file; None if it cannot be read."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return _load_module(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=32)
def _load_module(path: str, _mtime_ns: int, _size: int) -> TerraformModule | None:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(document, dict):
        return None
    return TerraformModule(
        path=Path(path),
        locals=_merge_blocks(document.get("locals")),
        resources={
            resource_type: by_name
            for resource_type, by_name in _merge_blocks(document.get("resource")).items()
            if isinstance(by_name, dict)
        },
    )


def _merge_blocks(blocks: Any) -> dict[str, Any]:
    """HCL JSON allows a block as an object or as an array of objects; return one object."""
    if isinstance(blocks, dict):
        return {key: value for key, value in blocks.items() if key != "//"}
    merged: dict[str, Any] = {}
    if isinstance(blocks, list):
        for block in blocks:
            if isinstance(block, dict):
                for key, value in block.items():
                    if key == "//":
                        continue
                    if isinstance(value, dict) and isinstance(merged.get(key), dict):
                        merged[key] = {**merged[key], **value}
                    else:
                        merged[key] = value
    return merged


def local_strings(module: TerraformModule, name: str) -> Iterator[tuple[str, str]]:
    """Yield `(origin, text)` for each piece of literal text in local `name`, following the locals it uses.

    `origin` names where the text sits, e.g. `local.user_data_smtp_in[3]`. A local that is a list of lines
    yields one text per line. Cycles and unknown locals end the walk quietly.
    """
    yield from _local_strings(module, name, frozenset())


def _local_strings(module: TerraformModule, name: str, seen: frozenset[str]) -> Iterator[tuple[str, str]]:
    if name in seen or name not in module.locals:
        return
    seen = seen | {name}
    for path, _key, value in walk_scalars(module.locals[name], f"local.{name}"):
        if not isinstance(value, str):
            continue
        template = parse_template(value)
        for literal in template.literals:
            yield path, literal
        for used in template.locals:
            yield from _local_strings(module, used, seen)


def local_is_literal(module: TerraformModule, name: str) -> bool:
    """True when local `name` is a plain value written into the file (no expression), or refers to one."""
    return _local_is_literal(module, name, frozenset())


def _local_is_literal(module: TerraformModule, name: str, seen: frozenset[str]) -> bool:
    if name in seen or name not in module.locals:
        return False
    value = module.locals[name]
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        return True
    if not isinstance(value, str) or not value.strip():
        return False
    if not is_token(value):
        return True
    stripped = value.strip()
    whole_ref = re.fullmatch(r"\$\{\s*local\.([A-Za-z_][\w-]*)\s*\}", stripped)
    return whole_ref is not None and _local_is_literal(module, whole_ref[1], seen | {name})
