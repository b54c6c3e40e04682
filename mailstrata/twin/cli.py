"""`mailstrata twin up | test | down | status`: the local twin from the command line.

    mailstrata twin up [--config FILE] [--root DIR]    build and start the twin (idempotent)
    mailstrata twin test [-- PYTEST ARGS]              run tests/twin on it (up first; down after, unless it was up)
    mailstrata twin down [--root DIR]                  stop everything, remove the namespace and mounts
    mailstrata twin status [--root DIR]                what runs, where, and what is broken
    mailstrata twin replace SERVER [--config FILE] [--no-spool]
                                                       replace one server as the cloud does (issue 12)

Exit status: 0 on success, 1 when a stage failed (the message names the daemon and its log), 2 on usage.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from mailstrata.twin.twin import ROOT_ENV, Twin, TwinError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `twin` to the `mailstrata` command (called by mailstrata/cli.py)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "twin", help="run the platform locally (the twin): up, test, down, status", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="twin_command", required=True, metavar="ACTION")
    for name, text in (("up", "build and start the twin (idempotent)"), ("down", "stop and remove the twin"),
                       ("status", "show what runs and what is broken"), ("test", "run tests/twin on the twin"),
                       ("replace", "replace one server as the cloud does: destroyed, created again from the config; "
                                   "only its spool volume comes back")):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--root", type=Path, default=None,
                       help=f"the twin's folder. Default: ${ROOT_ENV}, else /var/lib/mailstrata-twin")
        if name in ("up", "test", "replace"):
            p.add_argument("--config", metavar="FILE", default=None,
                           help="platform YAML. Default: the embedded default platform (replace: the config the "
                                "twin runs)")
        if name == "replace":
            p.add_argument("server", help="the server (slot) name, e.g. mail-smtp-in-01")
            p.add_argument("--no-spool", action="store_true",
                           help="no spool volume outlives the server: the mail in its queue is lost")
        if name == "test":
            p.add_argument("--keep", action="store_true", help="leave the twin up after the tests")
            p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra pytest arguments (after --)")
    parser.set_defaults(func=main)
    return parser


def main(args: argparse.Namespace) -> int:
    twin = Twin(args.root, config=getattr(args, "config", None))
    action = args.twin_command
    try:
        if action == "up":
            info = twin.up(progress=lambda m: print(f"twin: {m}", flush=True))
            print(f"twin: up; namespace {info.netns}, logs in {info.logs}")
            for role, vip in sorted(info.vips.items()):
                print(f"  {role:10} VIP {vip}")
            return 0
        if action == "down":
            twin.down(progress=lambda m: print(f"twin: {m}", flush=True))
            return 0
        if action == "status":
            state = twin.info()
            if state is None:
                print("twin: not up")
                return 1
            problems = twin.healthy()
            print(json.dumps({"netns": state.netns, "vips": state.vips, "logs": state.logs,
                              "servers": {s.name: s.address for s in state.servers},
                              "started_in_s": state.started_in_s, "problems": problems}, indent=2))
            return 1 if problems else 0
        if action == "test":
            return _test(twin, args)
        if action == "replace":
            t = Twin(args.root, spool=not args.no_spool)
            s = t.replace_server(args.server, config=args.config, progress=lambda m: print(f"twin: {m}", flush=True))
            print(f"twin: {s.name} replaced ({s.address})")
            return 0
    except TwinError as exc:
        print(f"twin: {exc}", file=sys.stderr)
        return 1
    return 2


def _test(twin: Twin, args: argparse.Namespace) -> int:
    was_up = twin.info() is not None
    twin.up(progress=lambda m: print(f"twin: {m}", flush=True))
    extra = [a for a in args.pytest_args if a != "--"]
    env = {**os.environ, ROOT_ENV: str(twin.root), "MAILSTRATA_TWIN_KEEP": "1"}
    try:
        pytest = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/twin", *extra]
        return subprocess.call(pytest, env=env)
    finally:
        if not (was_up or args.keep):
            twin.down(progress=lambda m: print(f"twin: {m}", flush=True))
