"""Build the cdktf App from configs; reports config errors once and leaves no half-written output.

The output folder (``cdktf.out``) is shared with Terraform: the cdktf CLI runs ``terraform init`` inside
``<outdir>/stacks/<name>/``, which puts ``.terraform/`` and ``.terraform.lock.hcl`` there. A synth therefore
replaces only the files it writes itself (listed in ``<outdir>/.mailstrata-synth.json``) and removes the
ones an earlier synth wrote that this one does not (a removed stack); it never touches anything else.
Terraform state is not in the output folder at all: see `STATE_DIR`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from mailstrata import defaults
from mailstrata.config.loader import ConfigCheck, load_configs
from mailstrata.config.model import BackendType, PlatformConfig
from mailstrata.errors import ConfigError, Problem

ENV_VAR = "MAILSTRATA_CONFIG"
CONTEXT_KEY = "mailstrataConfig"
STATE_DIR = defaults.STATE_DIR  # local Terraform state: state/<stack name>.tfstate beside the output folder
# The files the last synth wrote, relative to the output folder: the next synth removes those it no longer writes.
RECORD = ".mailstrata-synth.json"
_MANIFEST = "manifest.json"  # cdktf's own list of stacks; written last, so the CLI never reads a stale one


def _user_data_fits(cfg: PlatformConfig) -> list[Problem]:
    """Every layer's user-data within Nova's limit (`mailstrata.userdata.limits.user_data_problems`)."""
    # Imported here: the templates load only for a config that is otherwise valid.
    from mailstrata.userdata.limits import user_data_problems

    return user_data_problems(cfg)


# The checks that need more than the config itself, run by `mailstrata validate` and synth alike once a config
# is otherwise valid (the config package cannot import them: they need the templates).
CONFIG_CHECKS: tuple[ConfigCheck, ...] = (_user_data_fits,)


def config_paths(context: str | None = None) -> list[str | None]:
    raw = os.environ.get(ENV_VAR) or context or ""
    paths = [p.strip() for p in raw.split(",") if p.strip()]
    return list(paths) if paths else [None]


def state_path(cfg: PlatformConfig) -> str:
    """Where a local backend keeps `cfg`'s state, relative to the folder that holds the output folder
    (`PlatformConfig.state_path`, which the stack reads too)."""
    return cfg.state_path


def check(paths: Sequence[str | None], outdir: str = "cdktf.out") -> list[PlatformConfig]:
    """Every config valid, and valid for this output folder (`mailstrata validate` and synth alike)."""
    configs = load_configs(list(paths), checks=CONFIG_CHECKS)
    _refuse_state_inside(configs, paths, Path(outdir))
    return configs


def synth(paths: Sequence[str | None], outdir: str = "cdktf.out") -> Path:
    """Validate every config first, synthesize into a temporary folder, then move the files into `outdir`.

    Every file is complete before the first one moves, and each move replaces one file atomically. Files in
    `outdir` that this module did not write (`.terraform/`, lock files, anything of the user's) stay.
    """
    configs = check(paths, outdir)
    target = Path(outdir)
    staging = _staging(target)  # before cdktf loads: a bad --outdir is refused at once
    try:
        from cdktf import App

        from mailstrata.stacks import MailPlatformStack

        app = App(outdir=str(staging), skip_validation=False)
        for cfg in configs:
            MailPlatformStack(app, cfg.name, config=cfg)
        app.synth()
        _install(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _staging(target: Path) -> Path:
    """A new folder beside `target`: same filesystem (os.replace is atomic) and same depth (the backend's
    relative state path is the same from the staging folder as from the target)."""
    fix = "give a folder you can write, e.g. cdktf.out"
    if target.exists() and not target.is_dir():
        raise ConfigError([Problem("outdir", f"is not a folder, got {str(target)!r}; {fix}")])
    file_above = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
    if file_above is not None:
        raise ConfigError([Problem("outdir", f"is below {str(file_above)!r}, which is a file, got "
                                             f"{str(target)!r}; {fix}")])
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        problem = Problem("outdir", f"cannot be written ({exc.strerror}), got {str(target)!r}; {fix}")
        raise ConfigError([problem]) from None


def _refuse_state_inside(configs: Sequence[PlatformConfig], paths: Sequence[str | None], target: Path) -> None:
    """A local state path inside the output folder would be lost to `make clean`: refuse it before writing."""
    out = target.resolve()
    problems = []
    for cfg, source in zip(configs, paths, strict=True):
        if cfg.backend.type is not BackendType.LOCAL:
            continue
        state = (target.parent / state_path(cfg)).resolve()
        if state == out or out in state.parents:
            problems.append(Problem(
                f"{source or 'the embedded default config'}: backend.path",
                f"is inside the output folder {target}, which synth and `make clean` replace, got "
                f"{cfg.backend.path!r}; keep state outside it, e.g. {STATE_DIR}/{cfg.name}.tfstate"))
    if problems:
        raise ConfigError(problems)


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _previous(target: Path) -> set[str]:
    """The files an earlier synth wrote: its record, else (output of a version without one) cdktf's manifest."""
    try:
        listed = json.loads((target / RECORD).read_text())
        return {str(p) for p in listed["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        stacks = json.loads((target / _MANIFEST).read_text())["stacks"]
        return {_MANIFEST, *(str(s["synthesizedStackPath"]) for s in stacks.values())}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


def _ours(rel: str) -> bool:
    """A path this module may write or delete: inside the output folder, and never Terraform's own files."""
    p = PurePosixPath(rel)
    if p.is_absolute() or not p.parts or ".." in p.parts:
        return False
    terraform_owned = any(part == ".terraform" or part.startswith(".terraform.") or ".tfstate" in part
                          for part in p.parts)
    return not terraform_owned


def _install(staging: Path, target: Path) -> None:
    written = _files(staging)
    (staging / RECORD).write_text(json.dumps({"files": written}, indent=2) + "\n")
    stale = sorted(r for r in _previous(target) - set(written) if _ours(r))
    target.mkdir(exist_ok=True)
    last = [r for r in (_MANIFEST, RECORD) if (staging / r).exists()]
    for rel in [*(r for r in written if r not in last), *last]:
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / rel, dest)
    _remove(target, stale)


def _remove(target: Path, stale: Iterable[str]) -> None:
    for rel in stale:
        path = target / rel
        if path.is_file() and not path.is_symlink():
            path.unlink()
        # Folders left empty go too (a removed stack's), never one that still holds anything.
        for parent in path.parents:
            if parent == target or target not in parent.parents:
                break
            try:
                parent.rmdir()
            except OSError:
                break


def main(argv: Sequence[str] | None = None) -> int:
    outdir = os.environ.get("CDKTF_OUTDIR", "cdktf.out")
    context = None
    raw_ctx = os.environ.get("CDKTF_CONTEXT_JSON")
    if raw_ctx:
        context = json.loads(raw_ctx).get(CONTEXT_KEY)
    try:
        synth(config_paths(context), outdir)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    return 0
