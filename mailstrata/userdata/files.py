"""What a role writes: the files a daemon asks for (`FileSpec`) and what rendering makes of them
(`RenderedFile`). Plain types, imported by every daemon and role module; rendering lives in `render`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mailstrata.types import Secret


@dataclass(frozen=True, kw_only=True)
class FileSpec:
    """One file a layer writes: its destination, how to make its content, its owner and mode.

    Exactly one of `template` (a path under `templates/`, rendered with `context`) or `secret` (the
    whole file is a secret, e.g. a PEM key, written base64-encoded from a Terraform reference).
    `owner`/`mode` are applied by the setup script once packages have created the users.
    """

    dest: str
    template: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    secret: Secret | None = None
    owner: str = "root:root"
    mode: str = "0644"
    comment: str = "#"  # the line-comment marker of the file's format, for the banner


@dataclass(frozen=True)
class RenderedFile:
    path: str
    content: str  # for a secret file: the Terraform expression of its base64 content
    owner: str
    mode: str
    b64: bool = False
