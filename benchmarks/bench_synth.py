"""Synth and policy-scan timings. Prints numbers; asserts nothing (see docs/benchmarks.md).

    .venv/bin/python benchmarks/bench_synth.py [--runs N] [--pairs N] [--only paired|sizes]

Paired comparison (issue 8): for the default platform and for a 500-server one, `--pairs` times (9 by
default, at least 7) it runs `python main.py` and `python benchmarks/bare_app.py` (a bare cdktf app with
the same providers and the same resources, plain values: see that file) one after the other, each a
fresh process timed from start to exit (imports, jsii's Node.js start, construction, synth, writing),
as a user experiences `python main.py`. The order alternates (A B, B A, ...) so both see the same load.
It prints the median of each side and the median of the per-pair ratios mailstrata / bare, and checks
that both synthesized the same resource types in the same numbers.

Then, for each platform size, it runs `python main.py` N times, reports the median wall time and the
peak resident memory of the whole process tree (Python + the jsii Node runtime), and times checkov with
mailstrata's checks on the default synth.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((ROOT / "mailstrata/config/default.yaml").read_text())
SIZES = {  # servers in total -> per layer (smtp_in, smtp_out, mailstore, webmail)
    10: (3, 2, 3, 2),
    100: (25, 25, 25, 25),
    500: (125, 125, 125, 125),
}


PAIRED = {  # label -> servers per layer (the NFS server comes on top)
    "default (9 servers)": 2,
    "500 servers": 125,
}


def _config(total: int, counts: tuple[int, int, int, int], work: Path) -> Path:
    cfg = dict(DEFAULT)
    cfg["layers"] = {
        role: dict(DEFAULT["layers"][role], count=n)
        for role, n in zip(("smtp_in", "smtp_out", "mailstore", "webmail"), counts, strict=True)
    }
    path = work / f"size-{total}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one fresh process; the CPU time (user + system) includes jsii's
    Node.js process, which the Python process waits for, and is less sensitive to other load."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.decode()[-2000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _resource_counts(outdir: Path) -> collections.Counter[str]:
    doc = json.loads((outdir / "stacks" / "mail" / "cdk.tf.json").read_text())
    return collections.Counter({t: len(r) for t, r in doc["resource"].items()})


def paired(label: str, config: Path | None, per_layer: int, pairs: int, work: Path) -> float:
    """`pairs` paired runs of mailstrata's synth and the bare app; prints and returns the median ratio."""
    base = {k: v for k, v in os.environ.items() if k not in ("MAILSTRATA_CONFIG", "CDKTF_OUTDIR")}
    base.setdefault("CHECKPOINT_DISABLE", "1")
    ours_env = dict(base)
    if config is not None:
        ours_env["MAILSTRATA_CONFIG"] = str(config)
    ours, bare, ratios, cpu_ratios = [], [], [], []
    for i in range(pairs):
        ours_out, bare_out = work / f"paired-{per_layer}-{i}-ours", work / f"paired-{per_layer}-{i}-bare"
        ours_cmd = ([sys.executable, str(ROOT / "main.py")], {**ours_env, "CDKTF_OUTDIR": str(ours_out)})
        bare_cmd = ([sys.executable, str(ROOT / "benchmarks/bare_app.py"), "--servers-per-layer", str(per_layer),
                     "--outdir", str(bare_out)], base)
        if i % 2 == 0:
            a, b = _timed(*ours_cmd), _timed(*bare_cmd)
        else:
            b, a = _timed(*bare_cmd), _timed(*ours_cmd)
        ours.append(a[0])
        bare.append(b[0])
        ratios.append(a[0] / b[0])
        cpu_ratios.append(a[1] / b[1])
        if i == 0:
            mine, theirs = _resource_counts(ours_out), _resource_counts(bare_out)
            if mine != theirs:
                raise SystemExit(f"{label}: the bare app does not build the same resources: {mine} != {theirs}")
            n_resources = sum(mine.values())
    print(f"{label:>22}: mailstrata median {statistics.median(ours):5.2f} s, "
          f"bare median {statistics.median(bare):5.2f} s, median ratio {statistics.median(ratios):4.2f}x "
          f"(ratios {min(ratios):.2f}-{max(ratios):.2f}; "
          f"{n_resources} resources; n={pairs} pairs)")
    print(f"{'':>22}  CPU time (user + system, Python and Node.js): median ratio {statistics.median(cpu_ratios):4.2f}x")
    print(f"{'':>22}  mailstrata {' '.join(f'{x:.2f}' for x in ours)}")
    print(f"{'':>22}  bare       {' '.join(f'{x:.2f}' for x in bare)}")
    return statistics.median(ratios)


def _tree_rss_kb(pid: int) -> int:
    total = 0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
            with open(f"/proc/{p}/task/{p}/children") as f:
                pids.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def run_once(config: Path | None, outdir: Path) -> tuple[float, int]:
    env = {**os.environ, "CDKTF_OUTDIR": str(outdir)}
    env.pop("MAILSTRATA_CONFIG", None)
    if config is not None:
        env["MAILSTRATA_CONFIG"] = str(config)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py")], env=env, cwd=ROOT)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kb(proc.pid))
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"synth failed ({proc.returncode})")
    return elapsed, peak


def bench(label: str, config: Path | None, runs: int, work: Path) -> None:
    times, peaks = [], []
    for i in range(runs):
        t, m = run_once(config, work / f"{label}-{i}")
        times.append(t)
        peaks.append(m)
    print(f"{label:>22}: median {statistics.median(times):6.2f} s  (min {min(times):.2f}, max {max(times):.2f}, "
          f"n={runs})  peak RSS {max(peaks) / 1024:7.1f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pairs", type=int, default=9, help="paired runs against the bare app (at least 7)")
    ap.add_argument("--only", choices=("paired", "sizes"), help="run only one part")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.only != "sizes":
            print(f"paired: python main.py against benchmarks/bare_app.py, {args.pairs} pairs each, "
                  f"on {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f} at start)")
            for label, per_layer in PAIRED.items():
                config = None if per_layer == 2 else _config(4 * per_layer, (per_layer,) * 4, work)
                paired(label, config, per_layer, args.pairs, work)
            print(f"(load average {os.getloadavg()[0]:.1f} at the end; goal: median ratio at most 1.2x)")
        if args.only == "paired":
            return
        print(f"python main.py, {args.runs} runs each, on {os.cpu_count()} cores")
        bench("default (9 servers)", None, args.runs, work)
        for total, counts in SIZES.items():
            path = _config(total, counts, work)
            bench(f"{total} servers", path, max(1, args.runs if total < 500 else min(args.runs, 3)), work)
        stack = work / "default (9 servers)-0" / "stacks" / "mail"
        env = {**os.environ, "CHECKPOINT_DISABLE": "1"}
        start = time.perf_counter()
        subprocess.run(
            [str(ROOT / ".venv/bin/checkov"), "-d", str(stack), "--framework", "terraform_json", "--skip-download",
             "--quiet", "--compact", "--external-checks-dir", str(ROOT / "mailstrata/policies/checks")],
            env=env, check=False, stdout=subprocess.DEVNULL,
        )
        print(f"{'checkov (default)':>22}: {time.perf_counter() - start:6.2f} s")


if __name__ == "__main__":
    main()
