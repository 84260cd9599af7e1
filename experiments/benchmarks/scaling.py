"""PPO on a cheap task as the number of environments grows: env steps/s and peak memory.

    python -m experiments.benchmarks.scaling --log2-envs 10 20 --json runs/bench/scaling.json \
        --markdown runs/bench/scaling.md

Each size runs in a subprocess of its own (this module with ``--child``), so its peak resident
memory (``ru_maxrss`` of that process, read with ``os.wait4``) is its own. The child builds
``--preset`` (default ``ppo-cartpole-million``) with ``num_envs`` replaced, compiles
``Trainer.run_iterations`` for as many iterations as make ``--min-steps`` env steps, calls it
once to warm up and times the calls after it (the median of ``--repeats``). It reports the
compile time, env steps/s after compilation, the compiled program's memory analysis (its
arguments, i.e. the TrainState, and its temporary buffers, per environment) and, on a device
that keeps statistics (a GPU), the peak device memory in use. A size that fails or runs out of
memory is reported as such, and the larger sizes are still tried unless ``--stop-on-failure``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

UNROLL_LENGTH = 8


def child(args: argparse.Namespace) -> dict:
    """One size, in this process: the JSON row `main` collects."""
    import jax

    from experiments.presets import PRESETS
    from purerl import Trainer
    from purerl.config import replace

    n = args.num_envs
    per_iteration = n * args.unroll_length
    iterations = max(1, -(-args.min_steps // per_iteration))
    config = replace(
        PRESETS[args.preset].config,
        num_envs=n,
        unroll_length=args.unroll_length,
        total_env_steps=per_iteration * iterations * (args.repeats + 1),
        num_evals=1,
    )
    trainer = Trainer(config)
    start = time.perf_counter()
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    run = jax.jit(trainer.run_iterations, static_argnums=1, donate_argnums=0)
    compiled = run.lower(state, iterations).compile()
    compile_s = time.perf_counter() - start
    row = dict(
        num_envs=n,
        unroll_length=args.unroll_length,
        iterations_per_call=iterations,
        env_steps_per_call=per_iteration * iterations,
        compile_s=round(compile_s, 2),
        backend=jax.default_backend(),
    )
    memory = compiled.memory_analysis()
    if memory is not None:
        row.update(
            state_bytes_per_env=round(memory.argument_size_in_bytes / n, 1),
            temp_bytes_per_env=round(memory.temp_size_in_bytes / n, 1),
            temp_mib=round(memory.temp_size_in_bytes / 2**20, 1),
        )
    state, metrics = compiled(state)  # warm-up
    jax.block_until_ready(state)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        state, metrics = compiled(state)
        jax.block_until_ready((state, metrics))
        times.append(time.perf_counter() - start)
    row["env_steps_per_s"] = round(per_iteration * iterations / statistics.median(times), 1)
    row["seconds_per_call"] = [round(t, 3) for t in times]
    metrics = jax.device_get(metrics)
    row["metrics_finite"] = all(bool(abs(float(v)) < float("inf")) for v in metrics.values())
    row["num_metrics"] = len(metrics)
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        row["device_peak_mib"] = round(stats["peak_bytes_in_use"] / 2**20, 1)
    return row


def run_size(num_envs: int, args: argparse.Namespace) -> dict:
    """`child` in a subprocess: its JSON row plus the process's peak resident memory."""
    command = [sys.executable, "-m", "experiments.benchmarks.scaling", "--child"]
    command += ["--num-envs", str(num_envs), "--unroll-length", str(args.unroll_length)]
    command += ["--min-steps", str(args.min_steps), "--repeats", str(args.repeats)]
    command += ["--preset", args.preset]
    start = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = process.communicate(timeout=args.timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    # communicate has reaped the child; its rusage went to RUSAGE_CHILDREN. Read the row's own
    # peak from the child's report of itself instead (printed last, see main).
    row = {"num_envs": num_envs, "exit": process.returncode}
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if process.returncode == 0 and lines:
        row.update(json.loads(lines[-1]))
    else:
        row["error"] = (err or out)[-800:]
    row["wall_s"] = round(time.perf_counter() - start, 1)
    return row


def peak_rss_mib() -> float:
    """This process's peak resident memory (Linux reports ru_maxrss in KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def markdown(rows: list[dict]) -> str:
    lines = [
        "| num_envs | env steps/s | compile s | peak RSS MiB | device peak MiB | state B/env "
        "| temp B/env |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "env_steps_per_s" not in r:
            lines.append(f"| 2^{r['num_envs'].bit_length() - 1} | failed (exit {r['exit']}) "
                         "| | | | | |")  # fmt: skip
            continue
        cells = [
            f"2^{r['num_envs'].bit_length() - 1}",
            f"{r['env_steps_per_s']:,.0f}",
            f"{r['compile_s']:.1f}",
            f"{r.get('peak_rss_mib', 0):,.0f}",
            f"{r['device_peak_mib']:,.0f}" if "device_peak_mib" in r else "-",
            f"{r.get('state_bytes_per_env', '-')}",
            f"{r.get('temp_bytes_per_env', '-')}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--log2-envs", type=int, nargs=2, default=[10, 20], metavar=("LO", "HI"))
    p.add_argument("--unroll-length", type=int, default=UNROLL_LENGTH)
    p.add_argument("--preset", default="ppo-cartpole-million")
    p.add_argument(
        "--min-steps", type=int, default=2**23, help="env steps per timed call (at least)"
    )
    p.add_argument("--repeats", type=int, default=2, help="timed calls after the warm-up")
    p.add_argument("--timeout-s", type=float, default=1800, help="per size")
    p.add_argument("--stop-on-failure", action="store_true")
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--num-envs", type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    if args.child:
        row = child(args)
        row["peak_rss_mib"] = peak_rss_mib()
        print(json.dumps(row), flush=True)
        return [row]
    rows = []
    lo, hi = args.log2_envs
    for log2 in range(lo, hi + 1):
        row = run_size(2**log2, args)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.json is not None:  # rewritten after every size
            args.json.parent.mkdir(parents=True, exist_ok=True)
            meta = {k: str(v) for k, v in vars(args).items()}
            args.json.write_text(json.dumps({"config": meta, "rows": rows}, indent=1) + "\n")
        if args.stop_on_failure and "env_steps_per_s" not in row:
            break
    table = markdown(rows)
    print(table)
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table)
    return rows


if __name__ == "__main__":
    main()
