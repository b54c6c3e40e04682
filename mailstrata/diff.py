"""`mailstrata diff BASE HEAD`: what a change does to the platform, without credentials or network.

`cdktf diff` is a `terraform plan`: it needs the cloud's credentials (which a fork's pull request must not get)
and shows `user_data` only as a hash. This diff compares two synthesized stacks instead, per stack:

- the resources added, removed and changed (by Terraform address), with the changed arguments;
- the servers that would be replaced, and why: Terraform's own rules, read from the JSON (a changed argument
  the provider marks ForceNew, `lifecycle.replace_triggered_by`, `lifecycle.ignore_changes`), with the
  user-data a server reads followed through the locals it joins;
- the rendered files of every layer, as unified diffs under each file's destination path;
- the DNS records that change (the `dns_records` output and the Designate record sets);
- warnings for what replaces servers or data outside a rollout (image, key pair, network, a port's addresses,
  the mailbox volume, the DKIM key, a public address).

Each side is two commits (each one's tree is exported under the project's `.cache/` and synthesized there by
its own `main.py`, with this interpreter), two configs (synthesized by this code), or two synthesized folders
(`cdktf.out`). Nothing is evaluated: every secret stays the Terraform reference the JSON holds (`${var...}`),
so a value is never printed; a variable's value is not part of a synthesized stack at all, which is why
rotating a password shows no change here (the report names the variables each layer's user-data reads).

The rendered files come from the user-data locals of `cdk.tf.json` (one list of lines per layer,
`mailstrata.constructs._user_data`), the exact text Terraform hands Nova: the same reader serves all three
modes, including a folder synthesized by another version.

Exit status (`EXIT_*`): 0 no change, 1 a change, 2 a server would be replaced, 3 a config is invalid or the
command line is wrong, 4 a side could not be made or read (git, a failed synth, a missing folder).
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mailstrata.errors import ConfigError

EXIT_NO_CHANGE, EXIT_CHANGE, EXIT_REPLACE, EXIT_INVALID, EXIT_FAILED = 0, 1, 2, 3, 4
CACHE_DIR = Path(".cache") / "mailstrata-diff"  # under the project (the git top level, else the current folder)
SERVER = "openstack_compute_instance_v2"
USER_DATA_LOCAL = "user_data_"  # the prefix of each layer's user-data local (`_user_data.attach_user_data`)
CLOUD_CONFIG = "#cloud-config"  # the pseudo-path of a layer's cloud-config without its files
# A server argument in its lifecycle.ignore_changes (MailLayer's ROLLOUT_ONLY): a deploy leaves the running server
# as it is; `mailstrata rollout` replaces it, drained, from the new config.
ROLLOUT_APPLIES = "not applied by a deploy: lifecycle.ignore_changes; a rollout applies it"

# Arguments a change of which makes terraform-provider-openstack (and hashicorp/tls) destroy and re-create the
# resource (`ForceNew` in the provider's schema). Only the types mailstrata writes; a type not listed is
# assumed to update in place. `user_data` is ForceNew: MailLayer keeps it (and image, flavor, key pair) in the
# servers' lifecycle.ignore_changes, so that only a rollout replaces a server.
FORCE_NEW: Mapping[str, frozenset[str]] = {
    SERVER: frozenset({"image_id", "image_name", "key_pair", "network", "user_data", "availability_zone",
                       "config_drive", "block_device", "scheduler_hints", "personality"}),
    "openstack_networking_port_v2": frozenset({"network_id", "tenant_id", "value_specs"}),
    "openstack_blockstorage_volume_v3": frozenset({"availability_zone", "volume_type", "image_id", "snapshot_id",
                                                   "source_vol_id", "consistency_group_id"}),
    "openstack_compute_volume_attach_v2": frozenset({"instance_id", "volume_id", "device"}),
    "openstack_compute_servergroup_v2": frozenset({"name", "policies", "rules"}),
    "openstack_networking_secgroup_rule_v2": frozenset({"direction", "ethertype", "protocol", "port_range_min",
                                                        "port_range_max", "remote_ip_prefix", "remote_group_id",
                                                        "security_group_id", "tenant_id"}),
    "openstack_networking_floatingip_v2": frozenset({"pool", "address", "subnet_id", "subnet_ids", "value_specs"}),
    "openstack_lb_loadbalancer_v2": frozenset({"vip_subnet_id", "vip_network_id", "vip_port_id", "vip_address",
                                               "flavor_id", "loadbalancer_provider", "availability_zone"}),
    "openstack_lb_listener_v2": frozenset({"protocol", "protocol_port", "loadbalancer_id"}),
    "openstack_lb_pool_v2": frozenset({"protocol", "listener_id", "loadbalancer_id"}),
    "openstack_lb_monitor_v2": frozenset({"pool_id", "type"}),
    "openstack_dns_zone_v2": frozenset({"name", "type"}),
    "openstack_dns_recordset_v2": frozenset({"zone_id", "name", "type"}),
    "openstack_sharedfilesystem_share_v2": frozenset({"share_proto", "share_type", "availability_zone"}),
    "tls_private_key": frozenset({"algorithm", "rsa_bits", "ecdsa_curve"}),
    "random_password": frozenset({"length", "special", "upper", "lower", "numeric", "keepers"}),
    "terraform_data": frozenset({"triggers_replace"}),
}

# Changes that replace a server or data no rollout can protect: (type, argument) -> why it matters.
# `flavor_name`/`flavor_id` are not ForceNew: the provider resizes the server in place, which reboots it.
WARN: Mapping[tuple[str, str], str] = {
    (SERVER, "image_name"): "a new image replaces the server",
    (SERVER, "image_id"): "a new image replaces the server",
    (SERVER, "key_pair"): "a new key pair replaces the server",
    (SERVER, "network"): "a new network attachment replaces the server",
    (SERVER, "availability_zone"): "a new availability zone replaces the server",
    (SERVER, "scheduler_hints"): "a new server group replaces the server",
    (SERVER, "flavor_name"): "a new flavor resizes the server in place: it reboots, outside any rollout",
    (SERVER, "flavor_id"): "a new flavor resizes the server in place: it reboots, outside any rollout",
    ("openstack_networking_port_v2", "fixed_ip"): "the server's address changes under it (its port is updated)",
    ("openstack_networking_port_v2", "network_id"): "the server's port is replaced, and so its address",
    ("openstack_blockstorage_volume_v3", "*"): "the volume is replaced: the data on it is lost",
    ("openstack_compute_volume_attach_v2", "*"): "the volume is detached from its server",
    ("openstack_sharedfilesystem_share_v2", "*"): "the share is replaced: the mailboxes on it are lost",
    ("openstack_networking_floatingip_v2", "*"): "the public address changes",
    ("openstack_lb_loadbalancer_v2", "*"): "the load balancer (and its VIP address) is replaced",
    ("tls_private_key", "*"): "a new DKIM key: mail signed before the DNS record changes fails DKIM",
}


class DiffError(RuntimeError):
    """A side could not be made or read; the message says which and why."""


class CommitConfigError(Exception):
    """A commit's config is invalid (its main.py exited 2); the message is its report."""


# ---- reading a synthesized stack ---------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One user-data local: the layer's rendered files (destination -> text) and who reads it."""

    local: str
    label: str  # the role of the servers that read it (their `mailstrata_role`), else the local's name
    files: Mapping[str, str]


def read_folder(folder: Path) -> dict[str, dict[str, Any]]:
    """Stack name -> its `cdk.tf.json`, from a synthesized folder (cdktf's manifest, else stacks/*/)."""
    if not folder.is_dir():
        raise DiffError(f"{folder}: no such folder; give a folder `mailstrata synth` wrote")
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        paths = {name: folder / s["synthesizedStackPath"] for name, s in manifest["stacks"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        paths = {p.parent.name: p for p in sorted(folder.glob("stacks/*/cdk.tf.json"))}
    if not paths:
        raise DiffError(f"{folder}: no synthesized stack (no manifest.json, no stacks/*/cdk.tf.json)")
    out = {}
    for name, path in paths.items():
        try:
            out[name] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DiffError(f"{path}: cannot be read ({exc})") from None
    return out


def unescape(text: str) -> str:
    """A Terraform template's literal text: `$${` is `${` and `%%{` is `%{` (`terraform_text.escape` undone);
    references (`${var.x}`) stay as they are."""
    return text.replace("$${", "${").replace("%%{", "%{")


def layer_files(lines: Sequence[str]) -> dict[str, str]:
    """A layer's files by destination path, plus its cloud-config without them (`CLOUD_CONFIG`)."""
    body = unescape("\n".join(str(x) for x in lines)) + "\n"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(body, Loader=loader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError:
        return {CLOUD_CONFIG: body}
    if not isinstance(doc, dict):
        return {CLOUD_CONFIG: body}
    files: dict[str, str] = {}
    for f in doc.pop("write_files", None) or ():
        content = str(f.get("content", ""))
        if f.get("encoding") in ("b64", "base64"):
            content = f"(base64) {content}\n"
        files[str(f.get("path"))] = content
    rest = yaml.safe_dump(doc, sort_keys=False, width=10**6, default_flow_style=None)
    files[CLOUD_CONFIG] = rest
    return dict(sorted(files.items()))


_LOCAL_REF = re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)")
_RES_REF = re.compile(r"(?<![\w.\-])((?:data\.)?[a-z][a-z0-9]*_[a-z0-9_]+\.[A-Za-z_][\w-]*)")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def _locals_read(value: Any, locals_: Mapping[str, Any]) -> set[str]:
    """Every local `value` reads, directly or through other locals."""
    seen: set[str] = set()
    todo = [value]
    while todo:
        for s in _strings(todo.pop()):
            for name in _LOCAL_REF.findall(s):
                if name in locals_ and name not in seen:
                    seen.add(name)
                    todo.append(locals_[name])
    return seen


def _resources_read(value: Any, locals_: Mapping[str, Any]) -> set[str]:
    """The resources (`type.name`) the interpolations in `value` refer to, directly or through locals."""
    # imported here: `mailstrata.userdata` loads the templates' machinery, which `mailstrata --help` must not
    from mailstrata.userdata.terraform_text import interpolations

    found: set[str] = set()
    for v in [value, *(locals_[n] for n in _locals_read(value, locals_))]:
        for s in _strings(v):
            try:
                exprs = interpolations(s) if "${" in s else ()
            except ValueError:
                exprs = (s,)
            found |= {m for e in exprs for m in _RES_REF.findall(e)}
    return found


def _lifecycle(body: Mapping[str, Any]) -> Mapping[str, Any]:
    found = body.get("lifecycle")
    return found if isinstance(found, Mapping) else {}


def _ignored(body: Mapping[str, Any]) -> set[str]:
    """The arguments `lifecycle.ignore_changes` takes out of the plan (all of them for "all")."""
    listed = _lifecycle(body).get("ignore_changes") or ()
    if listed == "all" or "all" in listed:
        return {"*all*"} | {k for k in body if k != "lifecycle"}
    return {str(x).strip("${}") for x in listed}


def resources(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Terraform address -> arguments (without cdktf's `//` metadata), resources and data sources."""
    out = {}
    for kind, prefix in (("resource", ""), ("data", "data.")):
        for rtype, items in (doc.get(kind) or {}).items():
            for name, body in items.items():
                out[f"{prefix}{rtype}.{name}"] = {k: v for k, v in body.items() if k != "//"}
    return out


def layers(doc: Mapping[str, Any]) -> dict[str, Layer]:
    locals_ = doc.get("locals") or {}
    roles: dict[str, str] = {}
    for body in ((doc.get("resource") or {}).get(SERVER) or {}).values():
        for name in _locals_read(body.get("user_data", ""), locals_):
            role = (body.get("metadata") or {}).get("mailstrata_role")
            if name.startswith(USER_DATA_LOCAL) and role:
                roles.setdefault(name, str(role))
    return {name: Layer(name, roles.get(name, name.removeprefix(USER_DATA_LOCAL)), layer_files(value))
            for name, value in locals_.items() if name.startswith(USER_DATA_LOCAL) and isinstance(value, list)}


def dns_records(doc: Mapping[str, Any]) -> set[tuple[str, str, str]]:
    """(name, type, value) of every record the stack publishes: its `dns_records` output and Designate's sets."""
    out: set[tuple[str, str, str]] = set()
    listed = ((doc.get("output") or {}).get("dns_records") or {}).get("value")
    if isinstance(listed, list):
        out |= {(str(r.get("name")), str(r.get("type")), str(r.get("value"))) for r in listed if isinstance(r, dict)}
    for body in ((doc.get("resource") or {}).get("openstack_dns_recordset_v2") or {}).values():
        for value in body.get("records") or ():
            out.add((str(body.get("name")), str(body.get("type")), str(value)))
    return out


def user_data_variables(found: Mapping[str, Layer]) -> dict[str, list[str]]:
    """Each Terraform variable -> the layers (`layers(doc)`) whose user-data embeds it (a new value changes
    their user-data)."""
    out: dict[str, set[str]] = {}
    for layer in found.values():
        for text in layer.files.values():
            for var in re.findall(r"\bvar\.([A-Za-z_][\w-]*)", text):
                out.setdefault(var, set()).add(layer.label)
    return {k: sorted(v) for k, v in sorted(out.items())}


# ---- comparing --------------------------------------------------------------------------------------


@dataclass
class Change:
    address: str
    name: str | None  # the resource's `name` argument, when it has one (a server's Nova name)
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> {"before", "after"}
    replaced: bool = False
    reasons: list[str] = field(default_factory=list)  # why it is replaced


@dataclass
class Server:
    """A server a rollout would replace (`rollout`: its new config can be rolled slot by slot) or that a change
    replaces or disrupts outside any rollout (`rollout` false)."""

    address: str
    name: str
    layer: str
    reasons: list[str]
    rollout: bool


@dataclass
class StackDiff:
    stack: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    # locals (other than user-data, shown as files), outputs (other than dns_records), variable declarations,
    # providers and the terraform block (backend): `local.x`, `output.x`, `var.x`, `provider.x`, `terraform.x`
    blocks: list[Change] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)
    files: dict[str, dict[str, str]] = field(default_factory=dict)  # layer -> destination path -> unified diff
    dns_added: list[list[str]] = field(default_factory=list)
    dns_removed: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    variables: dict[str, list[str]] = field(default_factory=dict)  # user-data's variables -> layers (HEAD's)

    @property
    def changes(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.blocks or self.files or self.dns_added
                    or self.dns_removed)

    @property
    def removed_servers(self) -> list[str]:
        return [a for a in self.removed if a.startswith(SERVER + ".")]

    @property
    def replaced_servers(self) -> list[Server]:
        """The servers destroyed and re-created (not those only resized in place)."""
        return [s for s in self.servers if any(not r.startswith("resized") for r in s.reasons)]


@dataclass
class Report:
    base: str
    head: str
    stacks: list[StackDiff]
    added_stacks: list[str] = field(default_factory=list)
    removed_stacks: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """2 when a deploy would replace or remove a server (not a change a rollout applies slot by slot)."""
        if any(any(not srv.rollout for srv in s.replaced_servers) or s.removed_servers for s in self.stacks) \
                or self.removed_stacks:
            return EXIT_REPLACE
        if self.added_stacks or any(s.changes for s in self.stacks):
            return EXIT_CHANGE
        return EXIT_NO_CHANGE

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["changed"] = self.exit_code != EXIT_NO_CHANGE
        out["exit_code"] = self.exit_code
        return out


def _paths(before: Any, after: Any, at: str = "") -> list[str]:
    """The dotted paths at which two argument values differ (lists of equal length item by item)."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        return [p for k in sorted(set(before) | set(after))
                for p in _paths(before.get(k), after.get(k), f"{at}.{k}" if at else k)]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after) and len(before) > 0:
        return [p for i, (b, a) in enumerate(zip(before, after, strict=True)) for p in _paths(b, a, f"{at}[{i}]")]
    return [at]


def _get(value: Any, path: str) -> Any:
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            value = value[int(part[1:-1])] if isinstance(value, list) and int(part[1:-1]) < len(value) else None
        else:
            value = value.get(part) if isinstance(value, dict) else None
    return value


def _top(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _text_diff(path: str, before: str | None, after: str | None) -> str:
    lines = difflib.unified_diff((before or "").splitlines(keepends=True), (after or "").splitlines(keepends=True),
                                 fromfile=f"a{path}" if before is not None else "/dev/null",
                                 tofile=f"b{path}" if after is not None else "/dev/null")
    return "".join(x if x.endswith("\n") else x + "\n\\ No newline at end of file\n" for x in lines)


def _resolved_user_data(body: Mapping[str, Any], locals_: Mapping[str, Any]) -> str:
    """What a server's user_data is made of: its expression and every local it reads (for comparing)."""
    names = sorted(_locals_read(body.get("user_data", ""), locals_))
    blob = json.dumps([body.get("user_data"), [(n, locals_[n]) for n in names]], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def compare_stack(name: str, base: Mapping[str, Any], head: Mapping[str, Any]) -> StackDiff:
    out = StackDiff(stack=name)
    b_res, h_res = resources(base), resources(head)
    b_loc, h_loc = base.get("locals") or {}, head.get("locals") or {}
    out.added = sorted(set(h_res) - set(b_res))
    out.removed = sorted(set(b_res) - set(h_res))

    # Rendered files, per layer (label from HEAD, else BASE).
    b_layers, h_layers = layers(base), layers(head)
    layer_changes: dict[str, list[str]] = {}  # local name -> changed paths
    for local in sorted(set(b_layers) | set(h_layers)):
        bl, hl = b_layers.get(local), h_layers.get(local)
        label = (hl or bl).label  # type: ignore[union-attr]
        bf, hf = (bl.files if bl else {}), (hl.files if hl else {})
        diffs = {p: _text_diff(p, bf.get(p), hf.get(p)) for p in sorted(set(bf) | set(hf)) if bf.get(p) != hf.get(p)}
        if diffs:
            out.files.setdefault(label, {}).update(diffs)
            layer_changes[local] = list(diffs)

    # Resources changed in place or replaced.
    changes: dict[str, Change] = {}
    for addr in sorted(set(b_res) & set(h_res)):
        b, h = b_res[addr], h_res[addr]
        rtype = addr.removeprefix("data.").split(".", 1)[0]
        paths = _paths(b, h)
        attrs = {p: {"before": _get(b, p), "after": _get(h, p)} for p in paths if _top(p) != "user_data"}
        ud_files: list[str] = []
        if rtype == SERVER and _resolved_user_data(b, b_loc) != _resolved_user_data(h, h_loc):
            read = _locals_read(h.get("user_data", ""), h_loc) | _locals_read(b.get("user_data", ""), b_loc)
            ud_files = sorted({p for local in read for p in layer_changes.get(local, ())})
            attrs["user_data"] = {"changed": True, "files": ud_files}
        if not attrs:
            continue
        forced = sorted({_top(p) for p in attrs} & FORCE_NEW.get(rtype, frozenset()) - _ignored(h))
        change = Change(addr, h.get("name") if isinstance(h.get("name"), str) else None, attrs)
        if forced and not addr.startswith("data."):
            change.replaced = True
            change.reasons = [f"{a} changed" for a in forced]
        changes[addr] = change

    # Replacement spreads: a ForceNew argument that reads a replaced resource (its value becomes "known after
    # apply"), and `lifecycle.replace_triggered_by` a resource that changes (e.g. a slot's revision).
    replaced = {a for a, c in changes.items() if c.replaced} | set(out.removed)
    spreading = True
    while spreading:
        spreading = False
        for addr, body in h_res.items():
            if addr not in b_res or addr.startswith("data.") or (addr in changes and changes[addr].replaced):
                continue
            rtype = addr.split(".", 1)[0]
            extra = [f"{attr} reads {ref}, which is replaced"
                     for attr in sorted(FORCE_NEW.get(rtype, frozenset()) - _ignored(body)) if attr in body
                     for ref in sorted(_resources_read(body[attr], h_loc) & replaced)]
            for ref in _lifecycle(body).get("replace_triggered_by") or ():
                target = ".".join(str(ref).strip("${}").split("[", 1)[0].split(".")[:2])
                if target in changes or target in replaced or target in out.added:
                    extra.append(f"replace_triggered_by {target}, which changes")
            if extra:
                label = body.get("name")
                change = changes.setdefault(addr, Change(addr, label if isinstance(label, str) else None, {}))
                change.replaced = True
                change.reasons += extra
                replaced.add(addr)
                spreading = True
    out.changed = [changes[a] for a in sorted(changes)]

    # Servers: replaced (and why), or disrupted in place.
    for c in out.changed:
        if not c.address.startswith(SERVER + "."):
            continue
        body = h_res[c.address]
        layer = str((body.get("metadata") or {}).get("mailstrata_role") or "?")
        reasons = []
        if c.replaced:
            reasons += [_server_reason(r, c) for r in c.reasons]
        ignored = _ignored(body)
        if "user_data" in c.attributes and "user_data" in ignored:
            files = c.attributes["user_data"].get("files") or []
            reasons.append(f"user-data changed: {', '.join(files) or '(its expression)'} ({ROLLOUT_APPLIES})")
        changed_top = sorted({_top(p) for p in c.attributes} - {"user_data"})
        reasons += [f"{a} changed ({ROLLOUT_APPLIES})" for a in changed_top if a in ignored]
        reasons += [f"resized in place ({a} changed): it reboots" for a in ("flavor_name", "flavor_id")
                    if a in c.attributes and a not in ignored]
        if reasons:
            rollout = all(r.startswith("replace_triggered_by") or r.endswith(f"({ROLLOUT_APPLIES})")
                          for r in reasons)
            out.servers.append(Server(c.address, c.name or c.address, layer, reasons, rollout))

    # Warnings: what no rollout protects.
    port_owner = {a: str(b.get("name")) for a, b in h_res.items() if a.startswith("openstack_networking_port_v2.")}
    for c in out.changed:
        rtype = c.address.split(".", 1)[0]
        who = c.name or c.address
        for attr in sorted({_top(p) for p in c.attributes}):
            if rtype == SERVER and attr in _ignored(h_res[c.address]):
                continue  # a rollout applies it, slot by slot
            why = WARN.get((rtype, attr))
            if why is None and c.replaced:
                why = WARN.get((rtype, "*"))
            if why is not None:
                owner = f" (server {port_owner[c.address]})" if c.address in port_owner else ""
                out.warnings.append(f"`{c.address}`{owner}: {attr} changed: {why}" if rtype != SERVER
                                    else f"server {who} (`{c.address}`): {attr} changed: {why}")
    for addr in out.removed:
        rtype = addr.split(".", 1)[0]
        if (rtype, "*") in WARN or rtype == SERVER:
            out.warnings.append(f"`{addr}` is removed" + (f": {WARN[(rtype, '*')]}" if (rtype, "*") in WARN else ""))
    out.warnings = list(dict.fromkeys(out.warnings))

    out.blocks = _blocks(base, head)
    b_dns, h_dns = dns_records(base), dns_records(head)
    out.dns_added = [list(r) for r in sorted(h_dns - b_dns)]
    out.dns_removed = [list(r) for r in sorted(b_dns - h_dns)]
    out.variables = user_data_variables(h_layers)
    return out


# The top-level blocks compared besides resources: (JSON key, address prefix).
BLOCKS: tuple[tuple[str, str], ...] = (("locals", "local"), ("output", "output"), ("variable", "var"),
                                       ("provider", "provider"), ("terraform", "terraform"))


def _blocks(base: Mapping[str, Any], head: Mapping[str, Any]) -> list[Change]:
    """Changes of the other blocks: a variable declared or dropped, a local or output changed, the backend."""
    out = []
    for key, prefix in BLOCKS:
        b, h = base.get(key) or {}, head.get(key) or {}
        for name in sorted(set(b) | set(h)):
            if (key == "locals" and name.startswith(USER_DATA_LOCAL)) or (key == "output" and name == "dns_records"):
                continue  # shown as rendered files and DNS records
            if b.get(name) == h.get(name):
                continue
            paths = _paths(b.get(name), h.get(name)) if name in b and name in h else [""]
            attrs = {p or "(whole)": {"before": _get(b.get(name), p), "after": _get(h.get(name), p)} for p in paths}
            out.append(Change(f"{prefix}.{name}", None, attrs))
    return out


def _server_reason(reason: str, c: Change) -> str:
    if reason == "user_data changed":
        files = c.attributes.get("user_data", {}).get("files") or []
        return "user-data changed" + (f": {', '.join(files)}" if files else " (its expression)")
    return reason


def compare(base: Mapping[str, Mapping[str, Any]], head: Mapping[str, Mapping[str, Any]], *,
            base_label: str = "BASE", head_label: str = "HEAD") -> Report:
    stacks = [compare_stack(n, base[n], head[n]) for n in sorted(set(base) & set(head))]
    return Report(base_label, head_label, stacks, sorted(set(head) - set(base)), sorted(set(base) - set(head)))


# ---- output -------------------------------------------------------------------------------------------


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text` (CommonMark), so no file can close it early."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return f"`{text}`" if len(text) <= limit else f"`{text[:limit - 1]}…`"


COMMENT_LIMIT = 65_000  # GitHub refuses a comment longer than 65,536 characters


def markdown(report: Report, *, limit: int | None = COMMENT_LIMIT) -> str:
    """The report as a pull-request comment. Longer than `limit`: the rendered files' diffs are left out (the
    report says so; `--format json` or `limit=None` has them all)."""
    text = _markdown(report, files=True)
    if limit is not None and len(text) > limit:
        text = _markdown(report, files=False)
    return text


def _markdown(report: Report, *, files: bool) -> str:
    out = [f"## mailstrata diff: `{report.base}` → `{report.head}`", ""]
    code = report.exit_code
    if code == EXIT_NO_CHANGE:
        out.append("No change: every stack synthesizes to the same resources, files and DNS records.")
    for name in report.added_stacks:
        out.append(f"- stack **{name}** is added")
    for name in report.removed_stacks:
        out.append(f"- stack **{name}** is removed: every resource of it is destroyed")
    for s in report.stacks:
        if not s.changes:
            out.append(f"\n### Stack `{s.stack}`: no change")
        else:
            out += _stack_markdown(s, files=files)
    variables = {v: ls for s in report.stacks for v, ls in s.variables.items()}
    if variables:
        out += ["", "Not part of this diff: the values of Terraform variables, which no synthesized stack holds. "
                    "A new value at deploy time changes the user-data of the layers that embed it, and so their "
                    "servers' revisions: a rollout applies it, slot by slot:"]
        out += [f"- `var.{v}`: {', '.join(ls)}" for v, ls in variables.items()]
    return "\n".join(out).rstrip() + "\n"


def _stack_markdown(s: StackDiff, *, files: bool) -> list[str]:
    out = ["", f"### Stack `{s.stack}`", ""]
    if s.warnings:
        out.append("> [!WARNING]")
        out.append("> Changes that replace or disrupt servers or data outside a rollout:")
        out += [f"> - {w}" for w in s.warnings]
        out.append("")
    if s.servers:
        out += ["#### Servers", "", "| Server | Layer | Replaced | Why |", "| --- | --- | --- | --- |"]
        for srv in s.servers:
            how = "by a rollout" if srv.rollout else ("**outside a rollout**" if any(
                not r.startswith("resized") for r in srv.reasons) else "no (in place)")
            out.append(f"| `{srv.name}` | {srv.layer} | {how} | {'; '.join(srv.reasons)} |")
        out.append("")
    out += [f"#### Resources: {len(s.added)} added, {len(s.removed)} removed, {len(s.changed)} changed", ""]
    out += [f"- `+` `{a}`" for a in s.added]
    out += [f"- `-` `{a}`" for a in s.removed]
    for c in s.changed:
        head = f"- `~` `{c.address}`" + (" (replaced: " + "; ".join(c.reasons) + ")" if c.replaced else "")
        out.append(head)
        for path, v in c.attributes.items():
            if path == "user_data":
                paths = v.get("files") or []
                out.append("  - `user_data`: changed" + (f" ({', '.join(paths)})" if paths else ""))
            else:
                out.append(f"  - `{path}`: {_short(v['before'])} → {_short(v['after'])}")
    if s.blocks:
        out += ["", "#### Locals, outputs, variables, providers, backend", ""]
        for c in s.blocks:
            out.append(f"- `~` `{c.address}`")
            out += [f"  - `{path}`: {_short(v['before'])} → {_short(v['after'])}" for path, v in c.attributes.items()]
    if s.dns_added or s.dns_removed:
        out += ["", "#### DNS records", "", "```diff"]
        out += [f"- {n} {t} {v}" for n, t, v in s.dns_removed]
        out += [f"+ {n} {t} {v}" for n, t, v in s.dns_added]
        out.append("```")
    if s.files and not files:
        count = sum(len(f) for f in s.files.values())
        out += ["", "#### Rendered files", "", f"{count} files changed in {', '.join(s.files)}: too long for a "
                "comment; the full report (`mailstrata diff --format json`, or the Markdown written with "
                "`--output`) has every diff."]
    elif s.files:
        out += ["", "#### Rendered files"]
        for layer, changed in s.files.items():
            out += ["", f"<details><summary>{layer}: {len(changed)} file(s)</summary>", ""]
            for path, text in changed.items():
                fence = _fence(text)
                out += [f"`{path}`", "", f"{fence}diff", text.rstrip("\n"), fence, ""]
            out.append("</details>")
    return out


# ---- making each side ---------------------------------------------------------------------------------


def project_root() -> Path:
    found = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=False)
    return Path(found.stdout.strip()) if found.returncode == 0 and found.stdout.strip() else Path.cwd()


@contextmanager
def workspace(root: Path | None = None) -> Iterator[Path]:
    """A fresh folder under the project's `.cache/mailstrata-diff/`, removed afterwards."""
    parent = (root or project_root()) / CACHE_DIR
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def kind_of(spec: str, repo: Path) -> str:
    """`folder` (a synthesized folder), `config` (a YAML file) or `commit` (a git revision of `repo`)."""
    p = Path(spec)
    if p.is_dir():
        return "folder"
    if p.is_file():
        return "config"
    found = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"],
                           capture_output=True, text=True, check=False)
    if found.returncode == 0:
        return "commit"
    raise DiffError(f"{spec}: neither a folder, a config file nor a commit of {repo}; give a synthesized folder "
                    "(cdktf.out), a YAML config or a git revision")


def synth_config(path: str | None, outdir: Path) -> dict[str, dict[str, Any]]:
    """Synthesize one config with this code (raises ConfigError when it is invalid)."""
    from mailstrata import app

    app.synth([path], str(outdir))
    return read_folder(outdir)


def synth_commit(rev: str, repo: Path, dest: Path, configs: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """Export `rev`'s tree into `dest` and synthesize it there with its own code (`main.py`) and this interpreter.

    `configs`: paths inside the commit's tree (MAILSTRATA_CONFIG); default: what the commit's main.py reads
    (MAILSTRATA_CONFIG as set now, else its cdktf.json context, else its embedded default)."""
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", rev], capture_output=True,
                             check=False)
    if archive.returncode != 0:
        raise DiffError(f"{rev}: git archive failed: {archive.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4+: refuse links and paths that leave `dest`
            tar.extractall(dest, filter="data")
        else:
            tar.extractall(dest)  # noqa: S202 (git archive of our own repository)
    if not (dest / "main.py").is_file():
        raise DiffError(f"{rev}: has no main.py (not a mailstrata project at that commit)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CDKTF_OUTDIR", "CDKTF_CONTEXT_JSON")}
    env["CDKTF_OUTDIR"] = str(dest / "cdktf.out")
    env["PYTHONPATH"] = str(dest)  # the commit's own package, before any installed one
    try:
        context = json.loads((dest / "cdktf.json").read_text()).get("context") or {}
        env["CDKTF_CONTEXT_JSON"] = json.dumps(context)
    except (OSError, ValueError):
        pass
    if configs:
        env["MAILSTRATA_CONFIG"] = ",".join(configs)
    run = subprocess.run([sys.executable, "main.py"], cwd=dest, env=env, capture_output=True, text=True,
                         check=False)
    if run.returncode == 2:  # main.py's exit status for an invalid config
        raise CommitConfigError(f"{rev}: {run.stderr.strip()}")
    if run.returncode != 0:
        raise DiffError(f"{rev}: synth failed (exit {run.returncode}):\n{run.stderr.strip()[-3000:]}")
    return read_folder(dest / "cdktf.out")


def load_side(spec: str, work: Path, repo: Path, configs: Sequence[str] | None,
              kind: str | None = None) -> dict[str, dict[str, Any]]:
    kind = kind or kind_of(spec, repo)
    if kind == "folder":
        return read_folder(Path(spec))
    work.mkdir(parents=True)
    if kind == "config":
        return synth_config(spec, work / "cdktf.out")
    return synth_commit(spec, repo, work, configs)


def run(base: str, head: str, *, configs: Sequence[str] | None = None, repo: Path | None = None) -> Report:
    repo = repo or project_root()
    kinds = (kind_of(base, repo), kind_of(head, repo))
    with workspace(repo) as work:
        if kinds == ("commit", "commit"):
            # Two commits synthesize in two processes at once (a synth in this process cannot run beside another:
            # jsii's Node.js bridge is one per process).
            with ThreadPoolExecutor(max_workers=2) as pool:
                sides = [pool.submit(load_side, spec, work / where, repo, configs, "commit")
                         for spec, where in ((base, "base"), (head, "head"))]
                b, h = (f.result() for f in sides)
        else:
            b = load_side(base, work / "base", repo, configs, kinds[0])
            h = load_side(head, work / "head", repo, configs, kinds[1])
    return compare(b, h, base_label=base, head_label=head)


# ---- command line -------------------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "diff", help="what a change does (servers, files, DNS), without credentials",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base", metavar="BASE", help="a commit, a config file or a synthesized folder (cdktf.out)")
    p.add_argument("head", metavar="HEAD", help="the same kind as BASE")
    p.add_argument("--format", choices=("markdown", "json"), default="markdown",
                   help="markdown: a pull-request comment. json: the same facts for tools. Default: markdown")
    p.add_argument("--config", metavar="FILE", action="extend", nargs="+", default=None,
                   help="commits only: the configs to synthesize, as paths in each commit's tree. Default: what "
                   "each commit's main.py reads (MAILSTRATA_CONFIG, else its embedded default)")
    p.add_argument("--output", metavar="FILE", default=None, help="write the report here instead of stdout")
    p.add_argument("--full", action="store_true",
                   help="markdown: every file diff, even past a comment's size (GitHub: 65,536 characters)")

    def usage_error(message: str) -> None:  # exit 3, not argparse's 2, which means "replacement" here
        p.print_usage(sys.stderr)
        sys.stderr.write(f"{p.prog}: error: {message}\n")
        raise SystemExit(EXIT_INVALID)

    p.error = usage_error  # type: ignore[method-assign]
    p.set_defaults(func=_diff)


def _diff(args: argparse.Namespace) -> int:
    """Compare BASE and HEAD; exit 0 no change, 1 change, 2 a server replaced, 3 invalid config, 4 failure."""
    try:
        report = run(args.base, args.head, configs=args.config)
    except (ConfigError, CommitConfigError) as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_INVALID
    except DiffError as exc:
        sys.stderr.write(f"mailstrata diff: {exc}\n")
        return EXIT_FAILED
    if args.format == "json":
        text = json.dumps(report.as_json(), indent=2) + "\n"
    else:
        text = markdown(report, limit=None if args.full else COMMENT_LIMIT)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return report.exit_code
