"""User-data sizes per role against Nova's limit, by number of mail domains; synth time at 500 domains.
Prints numbers; asserts nothing (the tests assert the behaviour; see docs/benchmarks.md).

    .venv/bin/python benchmarks/bench_user_data.py [--counts 1,25,30,300,500] [--runs 3]

For each count, the default platform serving that many made-up domains (10-20 characters, random
letters: tests/support/many_domains.py) is synthesized in this process; for the first server of each
role it prints the size the synth estimated (real-sized random stand-ins for every Terraform reference)
and the size Terraform itself produces with a real RSA 2048 DKIM key and real-length passwords, both as
Nova counts them (bytes after base64, gzip first when the layer uses it; `gz` marks those). Then the
domain count where the limit is reached (what `limits.user_data_problems` reports, and how long it
takes), and `python main.py` at 500 domains in fresh processes, as a user runs it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cdktf import App  # noqa: E402

from mailstrata.constructs._user_data import AttachedUserData  # noqa: E402
from mailstrata.stacks import MailPlatformStack  # noqa: E402
from mailstrata.terraform_eval import StandIns, evaluate, nova_user_data  # noqa: E402
from mailstrata.userdata import limits  # noqa: E402
from tests.support import many_domains  # noqa: E402
from tests.userdata import _sample  # noqa: E402

ROLES = ("smtp_in", "smtp_out", "mailstore", "webmail", "nfs_server")


def real_key() -> str:
    return subprocess.run(["openssl", "genrsa", "-traditional", "2048"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip


def sizes(count: int, work: Path) -> dict[str, tuple[int, int, bool]]:
    """role -> (estimated, real, gzip) for the first server of each role."""
    out = work / f"synth-{count}"
    app = App(outdir=str(out))
    stack = MailPlatformStack(app, "mail", config=many_domains.config_with_domains(count))
    app.synth()
    doc: dict[str, Any] = json.loads((out / "stacks" / "mail" / "cdk.tf.json").read_text())
    servers = {r["metadata"]["mailstrata_role"]: r for r in sorted(
        doc["resource"]["openstack_compute_instance_v2"].values(), key=lambda r: r["name"], reverse=True)}
    exprs = {role: servers[role]["user_data"] for role in ROLES if role in servers}
    sample = _sample.standins(doc, exprs.values())
    # Every private key referenced gets a real one of its own, every generated password 32 characters.
    attributes = {path: real_key() if path.endswith(".private_key_pem")
                  else secrets.token_urlsafe(24) if path.startswith("random_password.") else value
                  for path, value in sample.attributes.items()}
    variables = {name: secrets.token_urlsafe(48) for name in sample.variables}
    values = evaluate(exprs, StandIns(attributes=attributes, variables=variables), doc=doc)
    attached: dict[str, AttachedUserData | None] = {r.value: layer.user_data for r, layer in stack.layers.items()}
    attached["nfs_server"] = stack.storage.user_data
    result = {}
    for role, value in values.items():
        ud = attached[role]
        assert ud is not None
        result[role] = (ud.size, len(base64.b64encode(nova_user_data(value))), ud.gzip)
    return result


def main_py(count: int, runs: int, work: Path) -> list[float]:
    path = work / f"domains-{count}.yaml"
    data = many_domains.default_data()
    data["domains"] = list(many_domains.domains(count))
    path.write_text(yaml.safe_dump(data))
    times = []
    for i in range(runs):
        env = {**os.environ, "MAILSTRATA_CONFIG": str(path), "CDKTF_OUTDIR": str(work / f"main-{count}-{i}")}
        start = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "main.py")], env=env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="1,25,30,300,500")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--over", type=int, default=1500, help="a domain count over the limit, for the check")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"user data as Nova counts it (bytes after base64; limit {limits.NOVA_USER_DATA_LIMIT}): "
              "estimated by the synth / real (Terraform, real RSA 2048 key); gz: gzipped")
        print("| domains | " + " | ".join(ROLES) + " |")
        print("| --- |" + " --- |" * len(ROLES))
        for count in (int(c) for c in args.counts.split(",")):
            got = sizes(count, work)
            cells = [f"{got[r][0]} / {got[r][1]}{' gz' if got[r][2] else ''}" for r in ROLES]
            print(f"| {count} | " + " | ".join(cells) + " |", flush=True)
        cfg = many_domains.config_with_domains(args.over)
        start = time.perf_counter()
        problems = limits.user_data_problems(cfg)
        print(f"\nvalidate's check at {args.over} domains: {time.perf_counter() - start:.2f} s: "
              + ("; ".join(str(p) for p in problems) or "fits"))
        times = main_py(500, args.runs, work)
        print(f"python main.py at 500 domains: median {statistics.median(times):.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}, n={len(times)}) on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
