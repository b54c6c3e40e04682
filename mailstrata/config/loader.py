"""Load a platform config from YAML and report every problem at once, in one grammar.

`<yaml.path>: <what is wrong>, got <value>; <how to fix>`, e.g.
`layers.smtp_in.count: must be at least 1, got 0; use a whole number from 1 to 500`.

A config read from a file also says where: `prod.yaml:31:5: layers.smtp_in.count: ...` (line and column of
the key, or of its parent mapping when a key is missing), so editors and terminals can jump to it.

Checks that need more than the config itself (what Nova accepts as user-data needs the templates) are
passed in by the caller as `checks`: the config package imports nothing from the stacks, the constructs or
the templates. `mailstrata.app.CONFIG_CHECKS` is the list `mailstrata validate` and synth run.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Callable, Sequence
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from mailstrata.config.model import (
    CROSS_SECTIONS,
    PlatformConfig,
    SubProblems,
    cross_section_problems,
)
from mailstrata.errors import ConfigError, Problem

DEFAULT_CONFIG = "default.yaml"
TOP = "(top level)"
_START_FROM = "start from a copy of mailstrata/config/default.yaml"

# A whole-config check that needs more than the config (e.g. `mailstrata.userdata.limits.user_data_problems`):
# one problem per broken rule, each `path` a YAML path of the config, so that it is reported at that key's line.
ConfigCheck = Callable[[PlatformConfig], Sequence[Problem]]


# ---- paths ------------------------------------------------------------------------------------------


def _join(base: str, rel: str) -> str:
    if not rel:
        return base
    if not base or base == TOP:
        return rel.lstrip(".")
    return base + rel if rel.startswith("[") else f"{base}.{rel}"


def _render(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out = _join(out, f"[{part}]" if isinstance(part, int) else str(part))
    return out or TOP


_KEY_ERRORS = ("extra_forbidden", "invalid_key")  # errors whose last location part is a key of the YAML


def _clean(loc: Sequence[int | str], kind: str) -> tuple[int | str, ...]:
    """Drop pydantic's internal location parts (`function-after[...]`, `nullable[...]`). An unknown key is kept
    whatever it looks like, and as a key: `1:` is rendered `.1`, not the list index `[1]`."""
    out: list[int | str] = []
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if kind in _KEY_ERRORS and last:
            out.append(str(part))
        elif isinstance(part, int) or "[" not in part:
            out.append(part)
    return tuple(out)


# ---- what the models say about a location ----------------------------------------------------------


def _unwrap(tp: Any, bounds: dict[str, float] | None = None) -> Any:
    """Strip Annotated and Optional; collect numeric bounds met on the way into `bounds`."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp, *meta = get_args(tp)
            if bounds is not None:
                _collect_bounds(meta, bounds)
            continue
        if origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
        return tp


def _collect_bounds(meta: Sequence[Any], bounds: dict[str, float]) -> None:
    for m in meta:
        if isinstance(m, FieldInfo):
            _collect_bounds(m.metadata, bounds)
        for name in ("ge", "gt", "le", "lt"):
            if isinstance(m, getattr(annotated_types, name.capitalize())):
                bounds[name] = getattr(m, name)


class _At:
    """The type and field at a config location, as far as the models describe it."""

    def __init__(self, loc: Sequence[int | str]) -> None:
        self.type: Any = PlatformConfig
        self.field: FieldInfo | None = None
        self.bounds: dict[str, float] = {}
        for part in loc:
            tp = _unwrap(self.type)
            if isinstance(part, int) and get_origin(tp) is tuple:
                self.type, self.field, self.bounds = get_args(tp)[0], None, {}
            elif isinstance(part, str) and isinstance(tp, type) and issubclass(tp, BaseModel) \
                    and part in tp.model_fields:
                self.field = tp.model_fields[part]
                self.type, self.bounds = self.field.annotation, {}
                _collect_bounds(self.field.metadata, self.bounds)
            else:
                self.type, self.field = None, None
                return
        self.type = _unwrap(self.type, self.bounds)

    @property
    def keys(self) -> list[str]:
        tp = self.type
        return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []

    @property
    def choices(self) -> list[str]:
        tp = self.type
        if isinstance(tp, type) and issubclass(tp, Enum):
            return [str(m.value) for m in tp]
        if get_origin(tp) is Literal:
            return [str(a) for a in get_args(tp)]
        return []

    @property
    def has_default(self) -> bool:
        return self.field is not None and not self.field.is_required()

    @property
    def example(self) -> str | None:
        if self.field is not None and isinstance(self.field.default, int | float) \
                and not isinstance(self.field.default, bool):
            return str(self.field.default)
        return None

    @property
    def summary(self) -> str:
        """The first sentence of the field's description."""
        text = (self.field.description or "") if self.field is not None else ""
        return text.split(". ")[0].rstrip(".")


# ---- messages ---------------------------------------------------------------------------------------


def _show(value: Any) -> str:
    """A value as the YAML author wrote it."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


_BOOL_NOTE = " (YAML reads yes, no, on and off as true or false)"


def _is_number(text: str, *, whole: bool) -> bool:
    try:
        int(text) if whole else float(text)
    except ValueError:
        return False
    return True


def _number(n: Any) -> str:
    return f"{n:g}" if isinstance(n, float) else str(n)


def _range_fix(bounds: dict[str, float], whole: bool) -> str:
    kind = "a whole number" if whole else "a number"
    lo, hi = bounds.get("ge"), bounds.get("le")
    if lo is not None and hi is not None:
        return f"use {kind} from {_number(lo)} to {_number(hi)}"
    if lo is not None:
        return f"use {_number(lo)} or more"
    if hi is not None:
        return f"use {_number(hi)} or less"
    return f"use {kind} in range"


def _choice_fix(value: Any, choices: list[str]) -> str:
    if not choices:
        return "remove it or fix its spelling (see docs/config.md)"
    fix = f"use one of: {', '.join(choices)}"
    if isinstance(value, str):
        folded = [c for c in choices if c.lower() == value.lower()]
        near = folded or difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
        if near:
            fix += f" (did you mean {near[0]!r}?)"
    return fix


def _messages(err: dict[str, Any], loc: tuple[int | str, ...]) -> list[tuple[str, str]]:
    """(path relative to `loc`, message) pairs for one pydantic error, in mailstrata's grammar."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    got = _show(value)
    at = _At(loc)
    whole = at.type is int
    if kind == "value_error":
        error = ctx.get("error")
        if isinstance(error, SubProblems):
            return [(p.path, p.message) for p in error.problems]
        return [("", str(error if error is not None else err["msg"]))]
    if kind == "missing":
        summary = f" ({at.summary})" if at.summary else ""
        return [("", f"is required; add it{summary}")]
    if kind in _KEY_ERRORS:
        return [("", f"is not a known key; {_choice_fix(str(loc[-1]) if loc else '', _At(loc[:-1]).keys)}")]
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        what = "at least" if kind == "greater_than_equal" else "more than"
        return [("", f"must be {what} {_number(bound)}, got {got}; {_range_fix(at.bounds, whole)}")]
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        what = "at most" if kind == "less_than_equal" else "less than"
        return [("", f"must be {what} {_number(bound)}, got {got}; {_range_fix(at.bounds, whole)}")]
    if kind == "too_short":
        n = ctx["min_length"]
        return [("", f"must list at least {n} item{'s' if n != 1 else ''}, got "
                     f"{'an empty list' if not value else len(value)}; add {'one' if n == 1 else 'more'}")]
    if kind == "too_long":
        n = ctx["max_length"]
        return [("", f"must list at most {n} item{'s' if n != 1 else ''}, got {ctx.get('actual_length')}; "
                     "remove some")]
    if kind in ("int_type", "int_parsing", "int_from_float", "float_type", "float_parsing"):
        what = "a whole number" if kind.startswith("int") else "a number"
        if isinstance(value, str) and _is_number(value, whole=kind.startswith("int")):
            return [("", f"must be {what}, got text {got}; write {value.strip()} without quotes")]
        if isinstance(value, float) and kind.startswith("int"):
            return [("", f"must be {what}, got {got}; round it")]
        example = f", e.g. {at.example}" if at.example else ""
        note = _BOOL_NOTE if isinstance(value, bool) else ""
        return [("", f"must be {what}, got {got}; write digits only{example}{note}")]
    if kind in ("bool_type", "bool_parsing"):
        quoted = " without quotes" if isinstance(value, str) else ""
        return [("", f"must be true or false, got {got}; write true or false{quoted}")]
    if kind == "string_type":
        if isinstance(value, dict | list) or value is None:
            fix = "give one value" + (", or remove the key to use the default" if at.has_default else "")
        else:
            fix = f"quote it: '{_show(value)}'"
        return [("", f"must be text, got {got}; {fix}")]
    if kind in ("tuple_type", "list_type", "iterable_type"):
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            fix = f"write it as a list: [{value}]"
        else:
            fix = "write it as a list: [a, b] or one '- item' per line"
        return [("", f"must be a list, got {got}; {fix}")]
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        fix = "give its settings as key: value lines"
        if at.has_default:
            fix += ", or remove the key to use the defaults"
        return [("", f"must be a mapping, got {got}; {fix}")]
    if kind in ("enum", "literal_error"):
        return [("", f"is not one of the choices, got {got}; {_choice_fix(value, at.choices)}")]
    msg = str(err["msg"])
    return [("", f"{msg[:1].lower()}{msg[1:]}, got {got}; see docs/config.md")]


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    """(rendered path, message) for every error pydantic found."""
    errors: list[dict[str, Any]] = [dict(e) for e in exc.errors(include_url=False)]
    locs = [_clean(e["loc"], e["type"]) for e in errors]
    out = []
    for err, loc in zip(errors, locs, strict=True):
        # A list whose items failed is also reported as too short; the item problems say it all.
        if err["type"] == "too_short" and any(other[: len(loc)] == loc and len(other) > len(loc) for other in locs):
            continue
        out += [(_join(_render(loc), rel), msg) for rel, msg in _messages(err, loc)]
    return out


# ---- YAML with positions ----------------------------------------------------------------------------


# A real config has a few hundred values (a few thousand with hundreds of domains). Aliases (`*name`) can
# repeat a subtree many times over ("billion laughs"), so the document is measured with every alias expanded
# before anything walks or validates it.
MAX_VALUES = 20_000
MAX_DEPTH = 32


class _Refused(Exception):
    """The document is not read any further: `message` says why, at the line and column of `node`."""

    def __init__(self, node: yaml.Node | yaml.Event, path: str, message: str) -> None:
        super().__init__(message)
        mark = node.start_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        self.line, self.column, self.path, self.message = line, column, path or TOP, message


def _measure(node: yaml.Node, path: str = "", sizes: dict[int, int] | None = None,
             open_nodes: set[int] | None = None) -> int:
    """How many values `node` holds with every alias expanded; linear in the text, whatever the aliases do."""
    sizes = {} if sizes is None else sizes
    open_nodes = set() if open_nodes is None else open_nodes
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise _Refused(node, path, "contains itself through a YAML alias, got a recursive *alias; write the values out")
    open_nodes.add(key)
    children: list[tuple[yaml.Node, str]] = []
    if isinstance(node, yaml.SequenceNode):
        children = [(item, _join(path, f"[{i}]")) for i, item in enumerate(node.value)]
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            sub = _join(path, str(k.value)) if isinstance(k, yaml.ScalarNode) else path
            children += [(k, path), (v, sub)]
    size = 1 + sum(_measure(child, sub, sizes, open_nodes) for child, sub in children)
    if size > MAX_VALUES:
        raise _Refused(node, path, f"holds more than {MAX_VALUES} values once its YAML aliases (*name) are "
                                   f"expanded, got {size} or more; use fewer aliases, or write the values out")
    open_nodes.discard(key)
    sizes[key] = size
    return size


def _check_depth(text: str) -> None:
    """Refuse deep nesting from the event stream, before PyYAML's recursive composer would hit Python's limit."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _Refused(event, "", f"is nested more than {MAX_DEPTH} levels deep, got {depth}; a mailstrata "
                                          "config has at most 5 levels: start from a copy of "
                                          "mailstrata/config/default.yaml")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


class _Document:
    """A YAML document, its data, where each path is in the text, and the keys given twice."""

    def __init__(self, text: str) -> None:
        _check_depth(text)
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _measure(node)
            self.marks: dict[str, tuple[int, int]] = {}
            self.duplicates: list[tuple[str, int, int, int]] = []  # path, first line, line, column
            if node is not None:
                self._walk(node, "")
            self.data: Any = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()  # type: ignore[no-untyped-call]

    def _walk(self, node: yaml.Node, path: str) -> None:
        self.marks.setdefault(path or TOP, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if key.tag == "tag:yaml.org,2002:merge" or not isinstance(key, yaml.ScalarNode):
                    continue
                sub = _join(path, str(key.value))
                line = key.start_mark.line + 1
                if key.value in seen:
                    self.duplicates.append((sub, seen[key.value], line, key.start_mark.column + 1))
                    continue
                seen[key.value] = line
                self.marks[sub] = (line, key.start_mark.column + 1)
                self._walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, _join(path, f"[{i}]"))

    def where(self, path: str) -> tuple[int, int]:
        """Line and column of `path`, or of its closest ancestor given in the text."""
        while path not in self.marks and path not in ("", TOP):
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else TOP
        return self.marks.get(path, (1, 1))


# ---- entry points -----------------------------------------------------------------------------------


def _validate(data: Any, base_dir: Path | None) -> tuple[PlatformConfig | None, list[tuple[str, str]]]:
    if data is None:
        return None, [(TOP, f"is empty; {_START_FROM}")]
    if not isinstance(data, dict):
        return None, [(TOP, f"must be a mapping of settings, got {_show(data)}; {_START_FROM}")]
    context = {"base_dir": base_dir}
    try:
        return PlatformConfig.model_validate(data, context=context), []
    except ValidationError as exc:
        problems = _problems(exc)
        if any(not e["loc"] for e in exc.errors(include_url=False)):
            return None, problems  # every section was valid, so the cross-section rules already ran
    # Other sections are broken: still check the cross-section rules whose sections are fine.
    sections: dict[str, Any] = {}
    for name, tp in CROSS_SECTIONS.items():
        field = PlatformConfig.model_fields[name]
        if name not in data:
            if not field.is_required():
                sections[name] = field.get_default(call_default_factory=True)
            continue
        try:
            sections[name] = TypeAdapter(tp).validate_python(data[name], context=context)
        except ValidationError:
            continue
    return None, problems + [(p.path, p.message) for p in cross_section_problems(sections)]


def parse_config(data: Any, *, source: str = "config", base_dir: str | Path | None = None) -> PlatformConfig:
    """Validate already-loaded YAML data; raise one `ConfigError` listing every problem.

    `source` names the input in messages about the whole document; `base_dir` is where relative file paths
    in the config (directory.ca_cert_file) are resolved. Default: the working directory.
    """
    cfg, problems = _validate(data, Path(base_dir) if base_dir is not None else None)
    if cfg is None:
        raise ConfigError(Problem(path, msg) for path, msg in problems)
    return cfg


def load_config(path: str | Path | None = None, *, checks: Sequence[ConfigCheck] = ()) -> PlatformConfig:
    """Load `path`, or the embedded default platform when `path` is None.

    `checks` run once the config is otherwise valid; their problems are reported like the config's own,
    in one `ConfigError`. Default: none (`mailstrata.app.CONFIG_CHECKS` are the ones validate and synth run).
    """
    if path is None:
        text = (resources.files("mailstrata.config") / DEFAULT_CONFIG).read_text(encoding="utf-8")
        source, base_dir = f"mailstrata/config/{DEFAULT_CONFIG}", None
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([Problem(str(path), f"cannot read the config file ({exc.strerror}); give the path of "
                                                  "a YAML file, relative to the working directory or absolute")]
                              ) from None
        except UnicodeDecodeError:
            raise ConfigError([Problem(str(path), "is not UTF-8 text; save the config as UTF-8 YAML")]) from None
        source, base_dir = str(path), Path(path).parent
    try:
        doc = _Document(text)
    except _Refused as exc:
        raise ConfigError([Problem(f"{source}:{exc.line}:{exc.column}: {exc.path}", exc.message)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([Problem(where, f"is not valid YAML ({problem}); check the indentation and quote "
                                          "values that contain ': ' or ' #'")]) from None
    found: list[tuple[int, int, str, str]] = [
        (line, col, sub, f"is given more than once, got it on lines {first} and {line}; keep one")
        for sub, first, line, col in doc.duplicates
    ]
    cfg, invalid = _validate(doc.data, base_dir)
    found += [(*doc.where(sub), sub, msg) for sub, msg in invalid]
    if cfg is not None and not found:
        # E.g. what Nova accepts is known before any synth: refuse here, naming the key and the count that fits.
        found += [(*doc.where(p.path), p.path, p.message) for check in checks for p in check(cfg)]
    if found or cfg is None:
        # In the order of the file; problems at one place keep the models' order (the sort is stable).
        found.sort(key=lambda f: (f[0], f[1]))
        raise ConfigError(Problem(f"{source}:{line}:{col}: {sub}", msg) for line, col, sub, msg in found)
    return cfg


def load_configs(paths: Sequence[str | Path | None], *, checks: Sequence[ConfigCheck] = ()) -> list[PlatformConfig]:
    """Load several configs (None: the embedded default), one stack each, each with `checks` (see
    `load_config`); report every file's problems and stack names used twice in one `ConfigError`."""
    loaded: list[tuple[str, PlatformConfig]] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            loaded.append((str(path) if path is not None else f"mailstrata/config/{DEFAULT_CONFIG}",
                           load_config(path, checks=checks)))
        except ConfigError as exc:
            problems.extend(exc.problems)
    first: dict[str, str] = {}
    for source, cfg in loaded:
        if cfg.name in first:
            problems.append(Problem(f"{source}: name", f"repeats the stack name of {first[cfg.name]}, got "
                                                       f"{cfg.name!r}; give each config its own name"))
        first.setdefault(cfg.name, source)
    if problems:
        raise ConfigError(problems)
    return [cfg for _, cfg in loaded]
