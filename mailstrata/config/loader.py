"""Load a platform config from YAML and report every problem at once, in one grammar.

`<yaml.path>: <what is wrong>, got <value>; <how to fix>` — e.g.
`layers.smtp_in.count: must be at least 1, got 0`.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mailstrata.config.model import PlatformConfig
from mailstrata.types import PoolProtocol
from mailstrata.errors import ConfigError, Problem, Problems
from mailstrata.roles import Role

DEFAULT_CONFIG = "default.yaml"


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "constrained-")) or part in {"str", "int"}:
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _message(err: dict[str, Any]) -> tuple[str, str]:
    """(extra path suffix, message) for one pydantic error, in mailstrata's grammar."""
    kind = err["type"]
    ctx = err.get("ctx", {})
    got = _show(err.get("input"))
    if kind == "missing":
        return "", "is required; add it"
    if kind == "extra_forbidden":
        return "", "is not a known key; remove it or fix its spelling (see docs/config-schema.json)"
    if kind in ("greater_than_equal",):
        return "", f"must be at least {ctx['ge']}, got {got}"
    if kind in ("less_than_equal",):
        return "", f"must be at most {ctx['le']}, got {got}"
    if kind == "too_short":
        return "", f"must have at least {ctx['min_length']} item{'s' if ctx['min_length'] != 1 else ''}, got none"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "", f"must be a whole number, got {got}"
    if kind in ("float_type", "float_parsing"):
        return "", f"must be a number, got {got}"
    if kind in ("bool_type", "bool_parsing"):
        return "", f"must be true or false, got {got}"
    if kind in ("string_type",):
        return "", f"must be a string, got {got}"
    if kind in ("tuple_type", "list_type"):
        return "", f"must be a list, got {got}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "", f"must be a mapping, got {got}"
    if kind == "enum":
        return "", f"must be one of {ctx['expected']}, got {got}"
    if kind == "literal_error":
        return "", f"must be one of {ctx['expected']}, got {got}"
    if kind == "string_pattern_mismatch":
        return "", f"does not match the pattern {ctx['pattern']}, got {got}"
    if kind == "value_error":
        msg = str(ctx.get("error", err["msg"]))
        if msg.startswith("__path__:"):
            _, sub, rest = msg.split(":", 2)
            return "." + sub, rest
        return "", msg
    return "", f"{err['msg']}, got {got}"


def _cross_checks(cfg: PlatformConfig) -> list[Problem]:
    """Rules that span sections (one place, all reported together)."""
    p = Problems()
    for dom, n in sorted(Counter(cfg.domains).items()):
        if n > 1:
            p.add(f"domains[{[i for i, d in enumerate(cfg.domains) if d == dom][1]}]",
                  f"duplicate domain {dom!r}; list each mail domain once")
    present = {r.value for r, _ in cfg.layers.items()}
    for required in (Role.SMTP_IN, Role.SMTP_OUT, Role.MAILSTORE):
        if required.value not in present:
            p.add(f"layers.{required.value}", "is required; every platform needs smtp_in, smtp_out and mailstore")
    known = {r.value for r in Role if r is not Role.NFS_SERVER}
    from mailstrata.stacks.defaults import PROXY_CAPABLE, default_listener_ports

    seen: Counter[tuple[str, int]] = Counter()
    for i, lst in enumerate(cfg.listeners):
        where = f"listeners[{i}]"
        seen[(lst.layer, lst.port)] += 1
        if seen[(lst.layer, lst.port)] == 2:
            p.add(f"{where}.port", f"port {lst.port} of layer {lst.layer} is listed twice; merge the entries")
        if lst.layer not in known:
            p.add(f"{where}.layer", f"unknown role {lst.layer!r}; use one of {', '.join(sorted(known))}")
            continue
        if lst.layer not in present:
            p.add(f"{where}.layer", f"listener for layer {lst.layer!r}, which is not in layers; add layers.{lst.layer}"
                  " or remove the listener")
            continue
        role = Role(lst.layer)
        if lst.pool_protocol is PoolProtocol.PROXY and lst.port not in PROXY_CAPABLE.get(role, ()):
            p.add(f"{where}.pool_protocol",
                  f"layer {lst.layer} cannot take the PROXY protocol on port {lst.port}; use TCP"
                  + (f" (PROXY-capable ports: {', '.join(map(str, sorted(PROXY_CAPABLE[role])))})"
                     if PROXY_CAPABLE.get(role) else ""))
        if lst.port not in default_listener_ports(role) and lst.protocol is None:
            p.add(f"{where}.protocol", f"port {lst.port} is a new listener on {lst.layer}; give its protocol")
        if lst.protocol is not None and lst.protocol.value == "TERMINATED_HTTPS" and not lst.tls_container_ref:
            p.add(f"{where}.tls_container_ref", "is required for TERMINATED_HTTPS; give the Barbican container ref")
    net = cfg.network
    if ipaddress.ip_network(net.subnet_cidr).overlaps(ipaddress.ip_network(net.vip_subnet_cidr)) \
            and net.subnet_cidr != net.vip_subnet_cidr:
        p.add("network.vip_subnet_cidr", f"overlaps network.subnet_cidr {net.subnet_cidr} without being equal to it")
    for i, c in enumerate(net.admin_cidrs):
        if ipaddress.ip_network(c).prefixlen == 0:
            p.add(f"network.admin_cidrs[{i}]", f"opens SSH to the whole Internet, got {c!r}; list your admin networks")
    if cfg.storage.mode.value == "manila" and cfg.storage.export:
        p.add("storage.export", "is only for mode existing; remove it")
    return list(p._items)


def parse_config(data: Any, *, source: str = "config") -> PlatformConfig:
    """Validate already-loaded YAML data; raise one `ConfigError` listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError([Problem("(top level)", f"{source} must be a YAML mapping, got {_show(data)}")])
    try:
        cfg = PlatformConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            suffix, msg = _message(dict(err))
            problems.append(Problem(_path(tuple(err["loc"])) + suffix, msg))
        raise ConfigError(problems) from None
    cross = _cross_checks(cfg)
    if cross:
        raise ConfigError(cross)
    return cfg


def load_config(path: str | Path | None = None) -> PlatformConfig:
    """Load `path`, or the embedded default platform when `path` is None."""
    if path is None:
        text = (resources.files("mailstrata.config") / DEFAULT_CONFIG).read_text(encoding="utf-8")
        source = "the embedded default config"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([Problem(str(path), f"cannot read the config file: {exc.strerror}")]) from None
        source = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise ConfigError([Problem(where, f"is not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    return parse_config(data, source=source)
