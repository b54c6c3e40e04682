"""The one entry point that turns a layer's context into its `#cloud-config` document.

Flow: the role's module (`roles/<role>.py`, found in the `ROLES` registry) lists the files its daemons
need as `FileSpec`s with a typed context each; every template is rendered by one Jinja environment
(`StrictUndefined`); the files, the OS profile's repositories, packages and the setup script are
assembled into one deterministic cloud-config body. The per-server part (host name) is added by
`MailLayer` in Terraform.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from mailstrata.roles import Role
from mailstrata.userdata.context import LayerContext
from mailstrata.userdata.daemons import metadata_guard
from mailstrata.userdata.files import FileSpec, RenderedFile
from mailstrata.userdata.profiles import OsProfile, load_profile
from mailstrata.userdata.roles import ROLES

BANNER_PREFIX = "Managed by mailstrata"

# Every top-level key this module and the per-server head (constructs/_user_data.py) may emit; cloud-init 22.4's
# schema accepts unknown keys, so tests check the document against this list too. `bootcmd` is the head's alone:
# it writes the slot's spool volume ID (MailLayer); the shared body never uses it.
CLOUD_CONFIG_KEYS: frozenset[str] = frozenset(
    {
        "hostname",
        "fqdn",
        "prefer_fqdn_over_hostname",
        "manage_etc_hosts",
        "write_files",
        "packages",
        "runcmd",
        "mounts",
        "final_message",
        "bootcmd",
    }
)


@dataclass(frozen=True, kw_only=True)
class LayerUserData:
    """A layer's cloud-config body (everything but the per-server header)."""

    role: Role
    files: tuple[RenderedFile, ...]
    packages: tuple[str, ...]
    runcmd: tuple[tuple[str, ...], ...]
    mounts: tuple[tuple[str, ...], ...] = ()

    def body_text(self) -> str:
        """The YAML body (without `#cloud-config` and host name), deterministic."""
        out: list[str] = []
        if self.mounts:
            out.append("mounts:")
            out.extend("  - [" + ", ".join(_yaml_scalar(x) for x in m) + "]" for m in self.mounts)
        out.append("write_files:")
        for f in self.files:
            out.append(f"  - path: {_yaml_scalar(f.path)}")
            # The final owner is applied by the setup script: cloud-init writes files before packages
            # create users like amavis or opendkim, and 19.4 (CentOS 7) has no `defer`.
            out.append("    owner: root:root")
            out.append(f"    permissions: '{_write_mode(f)}'")
            if f.b64:
                out.append("    encoding: b64")
                out.append(f"    content: {f.content}")
            elif "\r" in f.content:
                # A block scalar would turn each CR into a line feed (YAML 1.2 5.4, line break normalization); a
                # double-quoted scalar keeps it: the MTA-STS policy's CRLF line ends (mailstrata.mta_sts).
                out.append(f"    content: {json.dumps(f.content)}")
            else:
                out.extend(_block("    content: ", f.content))
        out.append("packages:")
        out.extend(f"  - {_yaml_scalar(p)}" for p in self.packages)
        out.append("runcmd:")
        out.extend("  - [" + ", ".join(_yaml_scalar(x) for x in cmd) + "]" for cmd in self.runcmd)
        out.append(f"final_message: {_yaml_scalar('mailstrata ' + self.role.value + ' ready after $UPTIME s')}")
        return "\n".join(out) + "\n"

    def file(self, path: str) -> RenderedFile:
        for f in self.files:
            if f.path == path:
                return f
        raise KeyError(path)


def _write_mode(f: RenderedFile) -> str:
    # Until the setup script hands a file to its daemon's group, anything not world-readable stays
    # root-only, so a secret is never readable by the wrong user even for a moment.
    return f.mode if f.mode[-1] in "4567" else "0600"


def _yaml_scalar(value: str) -> str:
    """A YAML scalar that round-trips as the same string."""
    import json

    safe = value and all(c.isalnum() or c in "-_./@+=" for c in value) and not value[0].isdigit()
    return value if safe and value not in {"true", "false", "yes", "no", "null", "on", "off"} else json.dumps(value)


def _block(prefix: str, content: str) -> list[str]:
    """A literal block scalar with an explicit indentation indicator, so any content round-trips."""
    if content.endswith("\n\n") or content == "\n":
        chomp = "+"
    elif content.endswith("\n"):
        chomp = ""
    else:
        chomp = "-"
    lines = content[:-1].split("\n") if content.endswith("\n") and chomp == "" else content.split("\n")
    if chomp == "+":
        lines = content.split("\n")[:-1]
    return [f"{prefix}|2{chomp}", *(("      " + ln) if ln else "" for ln in lines)]


# ---- Jinja ----------------------------------------------------------------------------------------


def _postfix_list(values: Sequence[str], sep: str = ", ") -> str:
    return sep.join(values)


# The one environment's options; they are part of the template cache's folder name, as the compiled code
# depends on them (Jinja keys its bytecode by template name and source only).
ENV_OPTIONS: Mapping[str, bool] = {"keep_trailing_newline": True, "trim_blocks": True, "lstrip_blocks": True}
TEMPLATE_CACHE_ENV = "MAILSTRATA_TEMPLATE_CACHE"  # a folder for compiled templates, or "off"


def template_cache_dir() -> Path | None:
    """Where compiled templates are kept between runs: `$MAILSTRATA_TEMPLATE_CACHE`, else
    `$XDG_CACHE_HOME/mailstrata` (`~/.cache/mailstrata`); None when it is "off" or cannot be written.

    Compiling the ~50 templates costs about a quarter of a second per synth; Jinja's bytecode cache keys each
    template by its name and a checksum of its source (and Python's version), and the folder's name carries
    Jinja's version and the environment's options, so a cached template can never differ from a fresh one.
    """
    given = os.environ.get(TEMPLATE_CACHE_ENV)
    if given == "off":
        return None
    base = Path(given) if given else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mailstrata"
    tag = hashlib.sha256(repr((jinja2.__version__, sorted(ENV_OPTIONS.items()))).encode()).hexdigest()[:12]
    folder = base / f"templates-{tag}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


def make_environment(cache_dir: Path | None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mailstrata.userdata", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        bytecode_cache=jinja2.FileSystemBytecodeCache(str(cache_dir)) if cache_dir is not None else None,
        keep_trailing_newline=ENV_OPTIONS["keep_trailing_newline"],
        trim_blocks=ENV_OPTIONS["trim_blocks"],
        lstrip_blocks=ENV_OPTIONS["lstrip_blocks"],
    )
    env.filters["postfix_list"] = _postfix_list
    return env


@cache
def environment() -> jinja2.Environment:
    """The one Jinja environment: strict, no autoescape (these are config files, not HTML), templates
    compiled once (`template_cache_dir`)."""
    return make_environment(template_cache_dir())


def banner(template: str, comment: str) -> str:
    return f"{comment} {BANNER_PREFIX} from {template}; edit the platform config, not this file."


def render_template(template: str, context: Mapping[str, Any], *, comment: str = "#") -> str:
    env = environment()
    return env.get_template(template).render({**context, "banner": banner(template, comment)})


def render_layer(ctx: LayerContext, os_name: str = "centos7", *, os: OsProfile | None = None,
                 metadata_addresses: Sequence[str] = metadata_guard.METADATA_ADDRESSES) -> LayerUserData:
    """Render every file of `ctx.role` and assemble the layer's cloud-config body.

    `metadata_addresses`: where the cloud's metadata service answers, which every layer closes to all users
    but root (`daemons/metadata_guard.py`). Default: OpenStack's 169.254.169.254 and fe80::a9fe:a9fe.
    """
    profile = os or load_profile(os_name, ctx.role)
    module = ROLES[ctx.role]
    specs: list[FileSpec] = [
        FileSpec(dest=r.path, template=r.template, context={"os": profile}) for r in profile.repositories
    ]
    specs.extend(module.files(ctx, profile))
    guard = metadata_guard.settings(profile, metadata_addresses)
    specs.extend(metadata_guard.files(guard))
    if ctx.platform.directory.ca_cert_pem is not None and ctx.role is not Role.NFS_SERVER:
        # The CA that verifies the directory's certificate, where every layer's LDAP client looks for it.
        specs.append(FileSpec(dest=profile.paths.directory_ca, template="common/etc/pki/mailstrata/ad-ca.pem.j2",
                              context={"pem": ctx.platform.directory.ca_cert_pem.strip()}))
    files: list[RenderedFile] = []
    for spec in specs:
        if spec.secret is not None:
            files.append(RenderedFile(spec.dest, "${base64encode(" + _bare(spec.secret.ref) + ")}",
                                      spec.owner, spec.mode, b64=True))
        elif spec.template is not None:
            content = render_template(spec.template, {"os": profile, **spec.context}, comment=spec.comment)
            files.append(RenderedFile(spec.dest, content, spec.owner, spec.mode))
        else:
            raise ValueError(f"{spec.dest}: a FileSpec needs a template or a secret")
    setup = render_template(
        "common/usr/local/sbin/mailstrata-setup.j2",
        {"os": profile, "ctx": ctx, "files": files, "guard": guard},
    )
    files.append(RenderedFile(profile.paths.setup_script, setup, "root:root", "0755"))
    paths = [f.path for f in files]
    dupes = sorted({p for p in paths if paths.count(p) > 1})
    if dupes:
        raise ValueError(f"{ctx.role}: files written twice: {', '.join(dupes)}")
    packages = tuple(dict.fromkeys([*profile.packages, *module.packages(ctx, profile)]))
    mounts: tuple[tuple[str, ...], ...] = ()
    if ctx.nfs is not None and ctx.role is Role.MAILSTORE:
        mounts = ((ctx.nfs.source, ctx.nfs.mount_point, "nfs", ctx.nfs.options, "0", "0"),)
    return LayerUserData(
        role=ctx.role,
        files=tuple(sorted(files, key=lambda f: f.path)),
        packages=packages,
        runcmd=((profile.paths.setup_script,),),
        mounts=mounts,
    )


def _bare(ref: str) -> str:
    """`${var.x}` -> `var.x`, so a secret can be wrapped in a Terraform function."""
    if ref.startswith("${") and ref.endswith("}"):
        return ref[2:-1]
    return ref
