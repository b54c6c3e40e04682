"""OS profiles: package names, service names, paths, repositories and daemon versions, as data.

Each OS is a folder under `profiles/` with `base.yaml` and one `<role>.yaml` per role. Templates read
everything OS-specific from the profile (`os.paths.postfix_dir`, `os.versions.postfix`), never test the
OS name. `OsProfile.relocated(root)` moves every path under `root`, which is how the local twin runs the
very same templates on one machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import yaml

from mailstrata.roles import Role
from mailstrata.userdata import selinux


class OsName(StrEnum):
    """Operating systems that have a profile."""

    CENTOS7 = "centos7"


class _Attrs(Mapping[str, Any]):
    """A read-only mapping whose keys are also attributes, so templates write `os.paths.postfix_dir`.

    A missing key raises `KeyError` naming the profile and the key, never a silent empty string.
    """

    def __init__(self, where: str, data: Mapping[str, Any]) -> None:
        self._where = where
        self._data = MappingProxyType(dict(data))

    def __getitem__(self, key: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            raise KeyError(f"{self._where}: no key {key!r}; add it to the OS profile") from None

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        return self[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"_Attrs({self._where}, {dict(self._data)!r})"


@dataclass(frozen=True)
class RepoFile:
    """A package repository definition written before the first package is installed."""

    path: str
    template: str


@dataclass(frozen=True, kw_only=True)
class OsProfile:
    """Everything OS-specific for one role on one OS (base values merged with the role's)."""

    name: str
    role: Role
    package_manager: str
    versions: _Attrs
    repositories: tuple[RepoFile, ...]
    repository_urls: _Attrs
    remove_packages: tuple[str, ...]
    packages: tuple[str, ...]
    services: tuple[str, ...]
    paths: _Attrs
    users: _Attrs
    commands: _Attrs
    values: _Attrs
    # booleans, port labels and file contexts the role's daemons need (userdata/selinux.py); empty on Debian
    selinux: selinux.SelinuxSettings = field(default_factory=selinux.SelinuxSettings)
    root: str = field(default="")

    def version_at_least(self, daemon: str, wanted: str) -> bool:
        """Compare a daemon's version in this profile with `wanted` (`"3.4"`)."""
        have = tuple(int(x) for x in str(self.versions[daemon]).split("."))
        return have >= tuple(int(x) for x in wanted.split("."))

    def relocated(self, root: str) -> OsProfile:
        """The same profile with every path moved under `root` (for the local twin)."""
        root = root.rstrip("/")
        moved = {k: root + v if isinstance(v, str) and v.startswith("/") else v for k, v in self.paths.items()}
        return replace(
            self,
            paths=_Attrs(f"{self.name}/{self.role}.paths", moved),
            repositories=tuple(RepoFile(root + r.path, r.template) for r in self.repositories),
            root=root,
        )


# libyaml's parser where PyYAML was built with it (pip's wheels are): the profiles are read on every synth.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def _load_yaml(os_name: str, name: str) -> dict[str, Any]:
    ref = resources.files("mailstrata.userdata") / "profiles" / os_name / f"{name}.yaml"
    if not ref.is_file():
        return {}
    data = yaml.load(ref.read_text(encoding="utf-8"), Loader=_YAML_LOADER) or {}  # noqa: S506 (a safe loader)
    if not isinstance(data, dict):
        raise TypeError(f"profile {os_name}/{name}.yaml must be a mapping")
    return data


@cache
def load_profile(os_name: str, role: Role) -> OsProfile:
    """The profile of `role` on `os_name`: `base.yaml` merged with `<role>.yaml` (role wins)."""
    base = _load_yaml(os_name, "base")
    if not base:
        raise KeyError(f"no OS profile named {os_name!r}")
    own = _load_yaml(os_name, role.value)
    where = f"{os_name}/{role.value}"

    def merged(key: str) -> dict[str, Any]:
        return {**base.get(key, {}), **own.get(key, {})}

    def listed(key: str) -> tuple[str, ...]:
        # base first, then the role's own, without duplicates and in a stable order
        seen: dict[str, None] = {}
        for item in [*base.get(key, []), *own.get(key, [])]:
            seen.setdefault(str(item), None)
        return tuple(seen)

    return OsProfile(
        name=os_name,
        role=role,
        package_manager=str(base["package_manager"]),
        versions=_Attrs(f"{where}.versions", merged("versions")),
        repositories=tuple(RepoFile(r["path"], r["template"]) for r in base.get("repositories", [])),
        repository_urls=_Attrs(f"{where}.repository_urls", merged("repository_urls")),
        remove_packages=listed("remove_packages"),
        packages=listed("packages"),
        services=listed("services"),
        paths=_Attrs(f"{where}.paths", merged("paths")),
        users=_Attrs(f"{where}.users", merged("users")),
        commands=_Attrs(f"{where}.commands", merged("commands")),
        values=_Attrs(f"{where}.values", merged("values")),
        selinux=selinux.merged(f"{where}.selinux", base.get("selinux"), own.get("selinux")),
    )
