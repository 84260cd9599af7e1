"""The accelerator benchmark: what only a GPU can measure, in one short prepared run.

    make bench-device DEVICE_OUT=runs/bench/device     # on the GPU machine (see docs/BENCHMARKS.md)
    python -m experiments.benchmarks.device --out DIR --purejaxrl-dir PUREJAXRL [--quick]

Each part runs the project's own benchmark in a subprocess, one after another, with a time
limit of its own, and leaves DIR/<part>.log (its output); a part that fails or runs out of
time does not stop the next. DIR/device.json, rewritten after every part, holds the machine
(jax version and devices, GPU name) and every part's command, exit status, wall time and
results (the JSON the benchmark wrote, kept with its run directory under DIR/work/). Parts,
most important first:

1. ``speed-purejaxrl``: ``speed`` on ant (spring) at PureJaxRL's own
   ``ppo_continuous_action`` defaults (2,048 envs x 10 steps, 32 minibatches, 4 epochs):
   purerl against PureJaxRL, both timed after compilation, purerl's per-part breakdown, and
   both compiled programs' loops with the operations (kernels) each runs per trip
   (``experiments.benchmarks.hlo_loops``; the programs themselves stay in DIR/work/hlo/).
2. ``speed-brax``: ``throughput`` on ant (spring) at Brax's published ant geometry (4,096 envs x
   16 unrolls of 5, 32 minibatches, 4 epochs): purerl against Brax's own trainer. Where the
   running jax lacks ``jax.device_put_replicated`` the Brax anchor restores it (see
   ``brax_anchor``) and says so in its JSON.
3. ``million-envs``: the ``ppo-cartpole`` preset with 2^20 = 1,048,576 environments x unroll 8
   through ``python -m experiments.run`` (a summary.json with env steps/s).
4. ``depth``: ``depth``, CRL's residual trunk from depth 4 to 1024 (SGD steps/s).

``--quick`` shrinks every part to a CPU-sized smoke run (inverted_pendulum, small batches) to
rehearse the whole script before spending accelerator time. Subprocesses get
``XLA_PYTHON_CLIENT_PREALLOCATE=false``: a parent holding three quarters of the GPU's memory
would starve the anchor it starts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from experiments.atomic import write_text_atomic

REPO = Path(__file__).resolve().parents[2]

BRAX_ANT_GEOMETRY = [
    "--env", "ant", "--backend", "spring", "--num-envs", "4096", "--unroll-length", "5",
    "--unrolls-per-iteration", "16", "--num-minibatches", "32", "--num-epochs", "4",
]  # fmt: skip
PUREJAXRL_ANT_GEOMETRY = [
    "--env", "ant", "--backend", "spring", "--num-envs", "2048", "--unroll-length", "10",
    "--num-minibatches", "32", "--num-epochs", "4",
]  # fmt: skip
QUICK_GEOMETRY = [
    "--env", "inverted_pendulum", "--backend", "spring", "--num-envs", "64",
    "--unroll-length", "5", "--num-minibatches", "4", "--num-epochs", "2",
]  # fmt: skip


def parts(args: argparse.Namespace, out: Path) -> list[tuple[str, list[str], Path]]:
    """(name, command, results file) of every part, in the order they run."""
    py = [sys.executable, "-m"]
    quick = args.quick
    speed = [
        *py, "experiments.benchmarks.speed", *(QUICK_GEOMETRY if quick else PUREJAXRL_ANT_GEOMETRY),
        "--num-updates", "4" if quick else "50", "--rounds", "1",
        "--json", str(out / "speed-purejaxrl.json"), "--hlo-dir", str(out / "hlo"),
    ]  # fmt: skip
    speed += ["--purejaxrl-dir", args.purejaxrl_dir] if args.purejaxrl_dir else ["--skip-anchor"]
    brax = [
        *py, "experiments.benchmarks.throughput", *(QUICK_GEOMETRY if quick else BRAX_ANT_GEOMETRY),
        "--iterations", "2" if quick else "10", "--repeats", "2", "--max-retries", "0",
        "--brax-python", sys.executable,
        "--brax-num-eval-envs", "16" if quick else "128", "--out", str(out / "speed-brax.json"),
    ]  # fmt: skip
    if quick:
        brax += ["--episode-length", "100"]
    million = [
        *py, "experiments.run", "ppo-cartpole",
        "--num-envs", str(2**10 if quick else 2**20), "--unroll-length", "8",
        "--total-env-steps", str(2**10 * 8 * 4 if quick else 2**20 * 8 * 20),
        "--num-evals", "2", "--run-dir", str(out / "million-envs"),
    ]  # fmt: skip
    depth = [
        *py, "experiments.benchmarks.depth", "--depths", *(["4", "8"] if quick else
        ["4", "16", "64", "256", "1024"]), "--steps", "3" if quick else "20",
        "--max-unrolled-depth", "16",
        "--json", str(out / "depth.json"),
    ]  # fmt: skip
    return [
        ("speed-purejaxrl", speed, out / "speed-purejaxrl.json"),
        ("speed-brax", brax, out / "speed-brax.json"),
        ("million-envs", million, out / "million-envs" / "summary.json"),
        ("depth", depth, out / "depth.json"),
    ]


def machine() -> dict:
    """What the parts ran on, read in a subprocess so this process never holds the GPU."""
    probe = (
        "import jax, json; d = jax.devices(); print(json.dumps({'jax': jax.__version__, "
        "'backend': jax.default_backend(), 'devices': [x.device_kind for x in d]}))"
    )
    info = {"python": platform.python_version(), "host_cpus": os.cpu_count()}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    info.update(json.loads(done.stdout) if done.returncode == 0 else {"probe": done.stderr[-500:]})
    try:
        gpu = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        )
        info["nvidia_smi"] = gpu.stdout.strip()
    except OSError:
        info["nvidia_smi"] = None
    return info


def run_part(
    name: str, command: list[str], limit_s: int, results: Path, out: Path, env: dict
) -> dict:
    print(f"[device] {name}: {' '.join(command[1:])} (limit {limit_s} s)", flush=True)
    # A rerun into the same DIR must not report an earlier run's results as its own.
    if results.parent.name == name:  # a run directory of its own
        shutil.rmtree(results.parent, ignore_errors=True)
    results.unlink(missing_ok=True)
    start = time.perf_counter()
    with open(out / f"{name}.log", "w") as log:
        try:
            rc = subprocess.run(
                command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=limit_s
            ).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    wall = round(time.perf_counter() - start, 1)
    print(f"[device] {name}: exit {rc} after {wall} s", flush=True)
    row = {"command": command[1:], "limit_s": limit_s, "exit": rc, "wall_s": wall}
    if results.exists():
        row["results"] = json.loads(results.read_text())
    return row


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "device")
    p.add_argument(
        "--work", type=Path, help="where the parts write results and runs (default DIR/work)"
    )
    p.add_argument("--purejaxrl-dir", help="a checkout of luchris429/purejaxrl (its anchor)")
    p.add_argument("--quick", action="store_true", help="CPU-sized rehearsal of every part")
    p.add_argument("--only", nargs="+", help="run these parts only", choices=list(DEFAULT_LIMITS_S))
    p.add_argument(
        "--limit-s",
        nargs="+",
        default=[],
        metavar="PART=SECONDS",
        help="time limits per part (defaults: "
        + ", ".join(f"{k}={v}" for k, v in DEFAULT_LIMITS_S.items())
        + ")",
    )
    args = p.parse_args(argv)
    limits = dict(DEFAULT_LIMITS_S)
    for item in args.limit_s:
        part, _, seconds = item.partition("=")
        if part not in limits or not seconds.isdigit():
            p.error(f"--limit-s takes PART=SECONDS with PART one of {', '.join(limits)}")
        limits[part] = int(seconds)

    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false", PYTHONUNBUFFERED="1")
    report = {"machine": machine(), "quick": args.quick, "parts": {}}
    print(f"[device] {json.dumps(report['machine'])}", flush=True)
    work = args.work or args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    for name, command, results in parts(args, work):
        if args.only and name not in args.only:
            continue
        report["parts"][name] = run_part(name, command, limits[name], results, args.out, env)
        write_text_atomic(args.out / "device.json", json.dumps(report, indent=1) + "\n")
    return report


# On the H200 (2026-11-28): speed-purejaxrl took 174 s; speed-brax's purerl side 70 s and
# Brax's anchor 86 s of compilation alone; million-envs 31 s; depth (scan to 1024, unrolled
# to 16) about 30 s. Together under a 10-minute call.
DEFAULT_LIMITS_S = {"speed-purejaxrl": 190, "speed-brax": 260, "million-envs": 50, "depth": 40}

if __name__ == "__main__":
    main()
