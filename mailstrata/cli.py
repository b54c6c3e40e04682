"""The ``mailstrata`` command: ``synth``, ``validate``, ``schema``, ``check-ad``, ``diff`` and ``twin``.

    mailstrata synth [--config FILE ...] [--outdir DIR]   synthesize one stack per config into DIR
    mailstrata validate [--config FILE ...]               report every problem in the configs
    mailstrata schema [--format json|markdown]            the config's JSON Schema (or its reference tables)
    mailstrata check-ad ...                               check the directory before deploying
    mailstrata diff BASE HEAD [--format markdown|json]    what a change does, without credentials
    mailstrata rollout [LAYER ...] [--dry-run|--resume]   replace servers one slot at a time (docs/rollout.md)
    mailstrata --version                                  the installed version (from the package metadata)

Without ``--config``, ``synth`` and ``validate`` use what ``main.py`` uses: the files listed in
MAILSTRATA_CONFIG (comma-separated), else the embedded default platform.

Exit status: 0 on success; 2 on a config or usage error (``check-ad``: 1 when the directory has problems;
``diff``: 0 no change, 1 change, 2 a server replaced, 3 a config or usage error, 4 a side that cannot be made;
``rollout``: 1 when it stopped before the end).
Runs as ``mailstrata`` (the console script) or ``python -m mailstrata.cli``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

from mailstrata import app
from mailstrata.errors import ConfigError

EXIT_OK, EXIT_INVALID = 0, 2

# Modules that add their own subcommand: each has `add_parser(subparsers)`, which sets `func` (args -> exit code).
# The local twin (`mailstrata twin up|test|down|status`) lives in mailstrata.twin.cli; the pull-request diff
# (`mailstrata diff BASE HEAD`) in mailstrata.diff; `mailstrata rollout` in mailstrata.rollout.
SUBCOMMAND_MODULES: tuple[str, ...] = ("mailstrata.cli_check_ad", "mailstrata.twin.cli", "mailstrata.diff",
                                       "mailstrata.rollout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailstrata", description="Multi-layer mail platform on OpenStack (cdktf).")
    parser.add_argument("--version", action="version", version=f"mailstrata {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = sub.add_parser("synth", help="synthesize one stack per config", description=_synth.__doc__)
    _config_option(synth)
    synth.add_argument("--outdir", metavar="DIR", default=None,
                       help="output folder. Its files are replaced only when every config is valid; files synth did "
                       "not write (.terraform/, lock files) stay. Default: CDKTF_OUTDIR, else cdktf.out")
    synth.set_defaults(func=_synth)

    validate = sub.add_parser("validate", help="report every problem in the configs", description=_validate.__doc__)
    _config_option(validate)
    validate.set_defaults(func=_validate)

    schema = sub.add_parser("schema", help="print the config's JSON Schema", description=_schema.__doc__)
    schema.add_argument("--format", choices=("json", "markdown"), default="json",
                        help="json: the JSON Schema for editors (docs/config-schema.json). markdown: the key tables "
                        "of docs/config.md. Default: json")
    schema.set_defaults(func=_schema)

    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def version() -> str:
    """The installed distribution's version (pyproject.toml's, through the package metadata)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("mailstrata")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed; pip install . records the version)"


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", action="extend", nargs="+", default=None,
                        help=f"platform YAML, one stack each (repeatable). Default: the files in {app.ENV_VAR} "
                        "(comma-separated), else the embedded default platform")


def _paths(args: argparse.Namespace) -> list[str | None]:
    return list(args.config) if args.config else app.config_paths()


def _synth(args: argparse.Namespace) -> int:
    """Validate every config, then synthesize one stack per config; the output folder is replaced only when all
    of it was written."""
    outdir = args.outdir or os.environ.get("CDKTF_OUTDIR", "cdktf.out")
    try:
        target = app.synth(_paths(args), outdir)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_INVALID
    sys.stderr.write(f"synthesized into {target}\n")
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    """Load the configs and report every problem at once (exit 2), or say they are valid (exit 0)."""
    paths = _paths(args)
    try:
        configs = app.check(paths, os.environ.get("CDKTF_OUTDIR", "cdktf.out"))
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_INVALID
    for path, cfg in zip(paths, configs, strict=True):
        print(f"{path or 'the embedded default config'}: valid (stack {cfg.name!r})")
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of the platform config (deterministic: sorted keys, 2-space indent), or the
    markdown reference tables made from it."""
    from mailstrata.config.model import json_schema

    schema = json_schema()
    sys.stdout.write(render_markdown(schema) if args.format == "markdown" else render_json(schema))
    return EXIT_OK


def render_json(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


# ---- the markdown reference (docs/config.md) -------------------------------------------------------

_FORMATS = {
    "cidr": "CIDR", "hostname": "DNS domain", "ldap-dn": "LDAP DN", "uri": "LDAP URL", "stack-name": "stack name",
    "size": "size (2G)", "dns-label": "DNS label", "terraform-variable": "variable name",
    "nfs-export": "host:/path", "email": "e-mail address", "uuid": "UUID", "url": "URL", "time-zone": "time zone",
    "spf": "SPF record",
}


def render_markdown(schema: dict[str, Any]) -> str:
    """One table per mapping of the config (key, type, default as behaviour, description), from the schema."""
    defs: dict[str, Any] = schema.get("$defs", {})
    paths: dict[str, list[str]] = {"": [""]}
    order = [""]  # "" is the top level; other entries are $defs names, in the order a reader meets them

    def visit(node: dict[str, Any], at: str) -> None:
        for key, prop in node.get("properties", {}).items():
            ref = _ref(prop)
            if ref is not None and defs[ref].get("type") == "object":
                where = f"{at}.{key}" if at else key
                where += "[]" if _is_array(prop) else ""
                if ref not in paths:
                    paths[ref] = []
                    order.append(ref)
                    paths[ref].append(where)
                    visit(defs[ref], where)
                else:
                    paths[ref].append(where)

    visit(schema, "")
    out = []
    for name in order:
        node = schema if name == "" else defs[name]
        title = "Top level" if name == "" else ", ".join(f"`{p}`" for p in paths[name])
        out.append(f'### <a id="{_anchor(name)}"></a>{title}\n')
        if name and node.get("description"):
            out.append(f"{node['description']}\n")
        out.append("| Key | Type | Default | Description |")
        out.append("| --- | --- | --- | --- |")
        required = set(node.get("required", ()))
        for key, prop in node.get("properties", {}).items():
            ref = _ref(prop)
            if not prop.get("description") and ref is not None:  # pydantic leaves out a copy of the $def's text
                prop = {**prop, "description": defs[ref].get("description", "")}
            default, text = _default(prop, key in required)
            out.append(f"| `{key}` | {_type(prop, defs, paths)} | {default} | {_cell(text)} |")
        out.append("")
    return "\n".join(out)


def _anchor(name: str) -> str:
    return "config-" + (name.lower() or "top")


def _nullable(prop: dict[str, Any]) -> dict[str, Any]:
    options = [o for o in prop.get("anyOf", ()) if o.get("type") != "null"]
    return {**prop, **options[0]} if len(options) == 1 else prop


def _ref(prop: dict[str, Any]) -> str | None:
    p = _nullable(prop)
    p = p.get("items", p) if p.get("type") == "array" else p
    ref = p.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _is_array(prop: dict[str, Any]) -> bool:
    return _nullable(prop).get("type") == "array"


def _type(prop: dict[str, Any], defs: dict[str, Any], paths: dict[str, list[str]]) -> str:
    p = _nullable(prop)
    if "$ref" in p:
        name = p["$ref"].rsplit("/", 1)[-1]
        target = defs[name]
        if "enum" in target:
            return "one of " + ", ".join(f"`{v}`" for v in target["enum"])
        label = f"`{paths[name][0]}`" if len(paths[name]) == 1 else target.get("title", name)
        return f"mapping, see [{label}](#{_anchor(name)})"
    if "enum" in p:
        return "one of " + ", ".join(f"`{v}`" for v in p["enum"])
    kind = p.get("type")
    if kind == "array":
        text = f"list of {_type(p.get('items', {}), defs, paths)}"
        if p.get("minItems"):
            text += f", at least {p['minItems']}"
        return text
    if kind in ("integer", "number"):
        text = "whole number" if kind == "integer" else "number"
        lo, hi = p.get("minimum"), p.get("maximum")
        if lo is not None and hi is not None:
            return f"{text}, {lo} to {hi}"
        return f"{text}, at least {lo}" if lo is not None else text
    if kind == "boolean":
        return "true or false"
    if kind == "string":
        return _FORMATS.get(p.get("format", ""), "text")
    return "any"


def _default(prop: dict[str, Any], required: bool) -> tuple[str, str]:
    """(default as behaviour, description without the sentence that held it)."""
    text = prop.get("description", "")
    said = re.search(r"(?:^|\s)Default: ([^.]*(?:\.[^\s.][^.]*)*)\.?", text)
    if said:
        return _cell(said.group(1)), (text[: said.start()] + text[said.end():]).strip()
    needed = re.search(r"(?:^|\s)(Required (?:when|with) [^.]*)\.?", text)
    if needed:
        return f"none; {needed.group(1)[0].lower()}{needed.group(1)[1:]}", text
    if required:
        return "**required**", text
    value = prop.get("default")
    if isinstance(value, dict):
        return "the defaults of its keys", text
    return f"`{_yaml(value)}`", text


def _yaml(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (argparse's 2 for a usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2): return the status instead of exiting
        return exc.code if isinstance(exc.code, int) else EXIT_INVALID
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
