"""SELinux: the booleans, port labels and file contexts each daemon needs beyond the policy's defaults.

CentOS 7's official image enforces the targeted policy. A daemon confined to its own domain (nginx in
`httpd_t`, clamav-milter in `antivirus_t`, Dovecot in `dovecot_t`) may bind, connect and open only what
the policy allows that domain; a port or file the platform uses outside those rules needs a label or a
boolean, set before the service starts. These are data in the OS profile (`selinux:` in
`profiles/<os>/<role>.yaml`), each with the domain, the access, the allow rule that grants it once the
change is made, and the reason. Debian has no SELinux: its profiles have none.

The setup script (`templates/common/usr/local/sbin/mailstrata-setup.j2`) applies them before the role's
steps and the services; `tests/userdata/test_selinux.py` judges every access against the CentOS 7
targeted policy (`tests/data/centos7-selinux/`); `docs/selinux.md` is `markdown_table()` of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

_TYPE = re.compile(r"^[a-z][a-z0-9_]*_t$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
PROTOCOLS = ("tcp", "udp")


@dataclass(frozen=True, kw_only=True)
class Grant:
    """What one change is for: the confined domain, the access it makes possible, the allow rule that
    grants the access once the change is made (as `sesearch -A` prints it), and why the platform needs it."""

    domain: str
    access: str
    rule: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Boolean(Grant):
    """`setsebool -P name on|off`."""

    name: str
    value: bool

    @property
    def change(self) -> str:
        return f"setsebool -P {self.name} {'on' if self.value else 'off'}"


@dataclass(frozen=True, kw_only=True)
class PortLabel(Grant):
    """`semanage port -a -t type -p proto port`."""

    type: str
    proto: str
    port: int

    @property
    def change(self) -> str:
        return f"semanage port -a -t {self.type} -p {self.proto} {self.port}"


@dataclass(frozen=True, kw_only=True)
class FileContext(Grant):
    """`semanage fcontext -a -t type 'regex'`, then `restorecon -R path`."""

    regex: str
    type: str
    path: str

    @property
    def change(self) -> str:
        return f"semanage fcontext -a -t {self.type} '{self.regex}'; restorecon -R {self.path}"


@dataclass(frozen=True, kw_only=True)
class Equivalence(Grant):
    """`semanage fcontext -a -e same_as path`, then `restorecon -R path`: the files under `path` get the labels
    of the same names under `same_as`. For a directory used through a bind mount at `same_as` (the spool
    volume's, daemons/spool.py): a relabel by its own path must not give it its parent's type. The setup
    script applies these only on a layer with a spool volume."""

    path: str
    same_as: str

    @property
    def change(self) -> str:
        return f"semanage fcontext -a -e {self.same_as} {self.path}; restorecon -R {self.path}"


@dataclass(frozen=True, kw_only=True)
class SelinuxSettings:
    """Everything one role changes in the policy's local settings; empty where the OS has no SELinux."""

    booleans: tuple[Boolean, ...] = ()
    ports: tuple[PortLabel, ...] = ()
    fcontexts: tuple[FileContext, ...] = ()
    equivalences: tuple[Equivalence, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.booleans or self.ports or self.fcontexts or self.equivalences)

    @property
    def grants(self) -> tuple[Boolean | PortLabel | FileContext | Equivalence, ...]:
        return (*self.booleans, *self.ports, *self.fcontexts, *self.equivalences)

    def applied(self, *, spool: bool) -> SelinuxSettings:
        """What a layer's setup script sets: the equivalences only where the layer has a spool volume."""
        return self if spool else replace(self, equivalences=())


def _grant_fields(where: str, item: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in ("domain", "access", "rule", "reason"):
        value = item.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{where}.{key}: must be a non-empty string (every SELinux change says why)")
        out[key] = " ".join(value.split())
    if not _TYPE.match(out["domain"]):
        raise ValueError(f"{where}.domain: must be an SELinux type such as httpd_t, got {out['domain']!r}")
    return out


def _type(where: str, value: Any) -> str:
    if not isinstance(value, str) or not _TYPE.match(value):
        raise ValueError(f"{where}: must be an SELinux type such as http_port_t, got {value!r}")
    return value


def parse(where: str, data: Mapping[str, Any] | None) -> SelinuxSettings:
    """The `selinux:` mapping of a profile file (booleans, ports, fcontexts, equivalences)."""
    if not data:
        return SelinuxSettings()
    unknown = set(data) - {"booleans", "ports", "fcontexts", "equivalences"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    booleans: list[Boolean] = []
    for i, b in enumerate(data.get("booleans") or []):
        w = f"{where}.booleans[{i}]"
        if not isinstance(b.get("name"), str) or not _NAME.match(b["name"]):
            raise ValueError(f"{w}.name: must be a boolean's name, got {b.get('name')!r}")
        if not isinstance(b.get("value"), bool):
            raise ValueError(f"{w}.value: must be true or false, got {b.get('value')!r}")
        booleans.append(Boolean(name=b["name"], value=b["value"], **_grant_fields(w, b)))
    ports: list[PortLabel] = []
    for i, p in enumerate(data.get("ports") or []):
        w = f"{where}.ports[{i}]"
        if p.get("proto") not in PROTOCOLS:
            raise ValueError(f"{w}.proto: must be one of {PROTOCOLS}, got {p.get('proto')!r}")
        port = p.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise ValueError(f"{w}.port: must be a port from 1 to 65535, got {port!r}")
        ports.append(PortLabel(type=_type(f"{w}.type", p.get("type")), proto=p["proto"], port=port,
                               **_grant_fields(w, p)))
    fcontexts: list[FileContext] = []
    for i, f in enumerate(data.get("fcontexts") or []):
        w = f"{where}.fcontexts[{i}]"
        if not isinstance(f.get("regex"), str) or not isinstance(f.get("path"), str) or not f["path"].startswith("/"):
            raise ValueError(f"{w}: needs regex and an absolute path to restore")
        fcontexts.append(FileContext(regex=f["regex"], type=_type(f"{w}.type", f.get("type")), path=f["path"],
                                     **_grant_fields(w, f)))
    equivalences: list[Equivalence] = []
    for i, e in enumerate(data.get("equivalences") or []):
        w = f"{where}.equivalences[{i}]"
        if not all(isinstance(e.get(k), str) and e[k].startswith("/") for k in ("path", "same_as")):
            raise ValueError(f"{w}: needs an absolute path and the absolute path (same_as) whose labels it gets")
        equivalences.append(Equivalence(path=e["path"], same_as=e["same_as"], **_grant_fields(w, e)))
    return SelinuxSettings(booleans=tuple(booleans), ports=tuple(ports), fcontexts=tuple(fcontexts),
                           equivalences=tuple(equivalences))


def merged(where: str, base: Mapping[str, Any] | None, own: Mapping[str, Any] | None) -> SelinuxSettings:
    """Base's settings, then the role's; the same boolean, port or path set twice is an error."""
    a, b = parse(f"{where}(base)", base), parse(where, own)
    out = SelinuxSettings(
        booleans=a.booleans + b.booleans,
        ports=a.ports + b.ports,
        fcontexts=a.fcontexts + b.fcontexts,
        equivalences=a.equivalences + b.equivalences,
    )
    for what, keys in (("boolean", [x.name for x in out.booleans]),
                       ("port", [f"{x.proto}/{x.port}" for x in out.ports]),
                       ("fcontext", [x.regex for x in out.fcontexts]),
                       ("equivalence", [x.path for x in out.equivalences])):
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"{where}: {what} set twice: {', '.join(twice)}")
    return out


def markdown_table(rows: Iterable[tuple[str, Boolean | PortLabel | FileContext | Equivalence]]) -> str:
    """The table of docs/selinux.md: one row per (role, change)."""
    lines = ["| role | domain | access | change | allow rule (CentOS 7 targeted policy) | reason |",
             "| --- | --- | --- | --- | --- | --- |"]
    for role, g in rows:
        cells: Sequence[str] = (role, f"`{g.domain}`", g.access, f"`{g.change}`", f"`{g.rule}`", g.reason)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
