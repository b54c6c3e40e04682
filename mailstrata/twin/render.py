"""Each twin server's files: the same templates and construct tree as production, through `debian12`, relocated.

For every server the twin takes its layer's `context` (what the templates saw at synth time) and changes
only what is not a setting:

- networks: each CIDR of the config becomes its twin range (`AddressPlan`);
- the directory: the twin's Samba AD replaces the config's (its URL host, CA, base and bind DN are the
  directory's facts, like an address; the TLS mode and the attributes stay the config's);
- the NFS mount point and the mail home (`vmail_home`) move under one folder shared by every mailstore
  (`shared_root`), because paths stored on the share must be the same on every server, as in production.

It renders with `render_layer(ctx, os=load_profile("debian12", role).relocated(root))`. In the OS profile,
paths of installed programs (/usr, /bin, /sbin, /lib) stay where the packages put them, and the commands
that would talk to systemd are no-ops (the twin starts the daemons itself). Every `${...}` left in the
reference left in the text (`${var...}`, a VIP address, a key) is then replaced by the value Terraform
computed for it from the twin's stand-ins (`Values.substitute`).

One text rule, because the twin's whole network is 127.0.0.0/8: the production notation of "this host"
(`127.0.0.0/8`) becomes `127.0.0.1/32`, each server's private loopback (see files/loopback_shim.c).
Without it every twin address, the Internet's included, would count as the server itself.
"""

from __future__ import annotations

import base64
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from mailstrata.directory import DirectorySettings, LdapTls
from mailstrata.roles import Role
from mailstrata.twin.addresses import AddressPlan
from mailstrata.twin.platform import Synthesized, TwinServer
from mailstrata.twin.terraform import Values
from mailstrata.userdata.context import LayerContext, Networks
from mailstrata.userdata.profiles import OsProfile, _Attrs, load_profile
from mailstrata.userdata.render import LayerUserData, RenderedFile, render_layer

TWIN_OS = "debian12"
# Installed programs and the data their packages ship stay in place; only what the platform writes moves.
SYSTEM_PREFIXES = ("/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/")
LOCAL_PREFIX = "/usr/local/"  # the platform's own scripts live here: they move
# Commands that would ask systemd to start or reload units: the twin starts every daemon itself, in the
# order of the profile's `services`, after the setup script (binaries may differ from production).
TWIN_COMMANDS = {"enable_service": "true", "daemon_reload": "true", "restart_service": "true",
                 "reload_service": "true", "start_service": "true"}
# Programs the twin replaces (binaries may differ): freshclam would fetch signatures from the Internet,
# which the twin cannot reach; clamd uses the twin's own EICAR-only database instead.
TWIN_PROGRAMS = {"freshclam": "/bin/true"}
LOOPBACK_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?<![\d.])127\.0\.0\.0/8(?!\d)"), "127.0.0.1/32"),
)


class TwinRenderError(RuntimeError):
    """A rendered file cannot run in the twin (names the file and why)."""


@dataclass(frozen=True, kw_only=True)
class TwinDirectory:
    """The twin's directory (Samba AD) as the config's directory settings need it."""

    host: str  # the name in the URL (resolved by the twin's DNS to Samba's address)
    base_dn: str
    bind_dn: str
    ca_cert_pem: str


def _url(host: str, tls: LdapTls) -> str:
    return f"ldaps://{host}:636" if tls is LdapTls.LDAPS else f"ldap://{host}:389"


def twin_profile(role: Role, server: TwinServer) -> OsProfile:
    """The debian12 profile of `role`, relocated under the server's root (installed programs stay put)."""
    base = load_profile(TWIN_OS, role)
    moved = base.relocated(str(server.root))
    paths = {k: (base.paths[k] if _is_system(str(base.paths[k])) else v) for k, v in moved.paths.items()}
    paths.update({k: v for k, v in TWIN_PROGRAMS.items() if k in paths})
    commands = {k: TWIN_COMMANDS.get(k, v) for k, v in base.commands.items()}
    return replace(moved, paths=_Attrs(f"{TWIN_OS}/{role}.paths (twin)", paths),
                   commands=_Attrs(f"{TWIN_OS}/{role}.commands (twin)", commands))


def _is_system(value: str) -> bool:
    return value.startswith(SYSTEM_PREFIXES) and not value.startswith(LOCAL_PREFIX)


def twin_context(ctx: LayerContext, plan: AddressPlan, directory: TwinDirectory, server: TwinServer,
                 shared_root: Path) -> LayerContext:
    n = ctx.platform.networks
    networks = Networks(
        servers={role: plan.cidrs(cidrs) for role, cidrs in n.servers.items()},
        vip_subnet=plan.cidrs(n.vip_subnet),
        clients=plan.cidrs(n.clients),
        admin=plan.cidrs(n.admin),
    )
    d: DirectorySettings = ctx.platform.directory
    twin_dir = DirectorySettings.build(
        urls=(_url(directory.host, d.tls),), tls=d.tls, base_dn=directory.base_dn, bind_dn=directory.bind_dn,
        bind_password=d.bind_password, domains=d.domains, attributes=d.attributes,
        ca_cert_pem=directory.ca_cert_pem if d.uses_tls else None,
    )
    # The share is mounted at the same path on every mailstore, as in production: Dovecot keeps absolute
    # paths (homes, the active sieve script's symlink) on the share itself.
    nfs = replace(ctx.nfs, mount_point=str(shared_root) + ctx.nfs.mount_point) if ctx.nfs is not None else None
    return replace(ctx.with_platform(networks=networks, directory=twin_dir), nfs=nfs)


def localize(text: str) -> str:
    for pattern, repl in LOOPBACK_RULES:
        text = pattern.sub(repl, text)
    return text


@dataclass(frozen=True)
class TwinFile:
    path: Path
    data: bytes
    mode: int
    rendered: RenderedFile


def render_server(syn: Synthesized, values: Values, ctx: LayerContext, profile: OsProfile,
                  server: TwinServer) -> tuple[LayerUserData, tuple[TwinFile, ...]]:
    """The server's cloud-config body and its files with every reference evaluated."""
    ud = render_layer(ctx, os=profile)
    out = []
    root = str(server.root)
    for f in ud.files:
        if not (f.path == root or f.path.startswith(root + "/")):
            raise TwinRenderError(f"{server.name}: {f.path} is outside the server's root {root}; the template must "
                                  "take this path from the OS profile (os.paths) so that it can be relocated")
        if f.b64:
            data = base64.b64decode(values.substitute(f.content, syn.resolve))
        else:
            data = localize(values.substitute(f.content, syn.resolve)).encode()
        # as cloud-init writes them: the final owner and mode come from the setup script
        mode = int(f.mode, 8) if f.mode[-1] in "4567" else 0o600
        out.append(TwinFile(Path(f.path), data, mode, f))
    return ud, tuple(out)


def preinstall(profile: OsProfile, base: OsProfile, server: TwinServer) -> None:
    """What installing the packages leaves in /etc: copied into the server's root before any file is written.

    The platform writes its own files over these; programs also find the files it relies on without
    writing them (e.g. /etc/aliases, nginx's mime.types, the CA bundle).
    """
    for key, original in base.paths.items():
        src = Path(str(original))
        if not str(src).startswith("/etc/") or not src.exists():
            continue
        dst = Path(str(profile.paths[key]))
        if dst == src:
            continue
        if src.is_dir():
            shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst, follow_symlinks=True)


def write_files(files: tuple[TwinFile, ...]) -> None:
    for f in files:
        f.path.parent.mkdir(parents=True, exist_ok=True)
        if f.path.is_symlink() or f.path.exists():
            f.path.unlink()
        f.path.write_bytes(f.data)
        f.path.chmod(f.mode)
