"""Synth and policy-scan timings. Prints numbers; asserts nothing (see docs/benchmarks.md).

    .venv/bin/python benchmarks/bench_synth.py [--runs N]

For each platform size it runs `python main.py` N times (fresh processes, as a user would), reports
the median wall time and the peak resident memory of the whole process tree (Python + the jsii Node
runtime), then times checkov with mailstrata's checks on the default synth.
"""

from __future__ import annotations

import argparse
import os
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
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"python main.py, {args.runs} runs each, on {os.cpu_count()} cores")
        bench("default (9 servers)", None, args.runs, work)
        for total, counts in SIZES.items():
            cfg = dict(DEFAULT)
            cfg["layers"] = {
                role: dict(DEFAULT["layers"][role], count=n)
                for role, n in zip(("smtp_in", "smtp_out", "mailstore", "webmail"), counts, strict=True)
            }
            path = work / f"size-{total}.yaml"
            path.write_text(yaml.safe_dump(cfg))
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
