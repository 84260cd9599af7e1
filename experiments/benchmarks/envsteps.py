"""Raw simulator speed of every environment of purerl: env steps/s under random actions.

    python -m experiments.benchmarks.envsteps --num-envs 256 2048 \
        --json runs/bench/envsteps.json --markdown runs/bench/envsteps.md
    (make bench-envs)

For budgeting runs: what stepping an environment costs before any learning. Each environment
(default: all of purerl's own, `envs.OWN_NAMES`; `--envs` picks some) is wrapped as the trainer
wraps it (time limit `--episode-length` and batched auto-reset of `num_envs` copies) and
stepped with uniform random actions, `--steps` steps per call inside one jitted `lax.scan`
(`iteration.random_action_run`). Reported per environment and batch size: the backend, the
compile + first call time, and env steps/s as the median of `--repeats` timed calls (the
`Timer` of timing.py repeats calls that other processes disturbed). The backend is the first of
`PREFERRED_BACKENDS` the environment supports, unless `--backend` names one. An environment
that fails to build or run is reported with its error and the others still run.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

import jax

import envs
from experiments.benchmarks.iteration import random_action_run
from experiments.benchmarks.timing import Timer, log

# Cheapest first, as measured on the CPU for the ant (docs/BENCHMARKS.md).
PREFERRED_BACKENDS = ("jax", "spring", "generalized", "positional", "mjx")


def backend_for(name: str, requested: str | None) -> str:
    """The backend to time `name` on: `requested`, or its first supported preferred one."""
    supported = envs.backends_for(name)
    if requested is not None:
        return requested
    return next(b for b in PREFERRED_BACKENDS if b in supported)


def bench_env(
    name: str, backend: str, num_envs: int, args: argparse.Namespace, timer: Timer
) -> dict:
    """One environment on `backend` at one batch size: compile time and median env steps/s."""
    env = envs.make(name, backend=None if backend == "jax" else backend)
    spec = envs.spec(env)
    batched = envs.AutoResetBatch(envs.EpisodeTracker(env, args.episode_length), num_envs)
    run = random_action_run(
        batched.step, num_envs, spec.action_size, args.steps, 1, spec.num_actions
    )
    options = envs.compiler_options(env)
    run = jax.jit(run, compiler_options=options)
    key = jax.random.PRNGKey(0)
    state0 = jax.jit(batched.reset, compiler_options=options)(key)

    def make_args(i: int, prev):
        return (state0 if prev is None else prev[0], jax.random.fold_in(key, i))

    timed = timer.time_calls(run, make_args, f"{name} x {num_envs}")
    return dict(
        env=name,
        backend=backend,
        num_envs=num_envs,
        observation_size=spec.observation_size,
        action_size=spec.action_size,
        compile_and_first_call_s=round(timed["warmup_s"], 2),
        env_steps_per_s=round(num_envs * args.steps / timed["time_s"], 1),
    )


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    """One line per environment, steps/s at each batch size side by side."""
    sizes = args.num_envs
    head = "| environment | backend | obs | act | " + " | ".join(f"steps/s at {n}" for n in sizes)
    lines = [head + " | compile s |", "|---" * (5 + len(sizes)) + "|"]
    by_env: dict[str, dict[int, dict]] = {}
    for row in rows:
        by_env.setdefault(row["env"], {})[row["num_envs"]] = row
    for name, per_size in by_env.items():
        first = next(iter(per_size.values()))
        if "error" in first:
            lines.append(f"| {name} | {first['backend']} | failed: {first['error']} |")
            continue
        rates = " | ".join(
            f"{per_size[n]['env_steps_per_s']:,.0f}" if n in per_size else "-" for n in sizes
        )
        compile_s = max(r["compile_and_first_call_s"] for r in per_size.values())
        lines.append(
            f"| {name} | {first['backend']} | {first['observation_size']} |"
            f" {first['action_size']} | {rates} | {compile_s:.0f} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(envs.OWN_NAMES), metavar="NAME")
    parser.add_argument("--num-envs", nargs="+", type=int, default=[256, 2048])
    parser.add_argument("--steps", type=int, default=200, help="steps per timed call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--episode-length", type=int, default=1000)
    parser.add_argument("--backend", default=None, help="one backend for every environment")
    parser.add_argument(
        "--max-retries",
        type=int,
        default=3,
        help="repeats of a timed call other processes disturbed (0: time whatever runs)",
    )
    parser.add_argument("--json", default=None, help="write the rows here")
    parser.add_argument("--markdown", default=None, help="write the table here")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.envs) - set(envs.names()))
    if unknown:
        parser.error(f"--envs: unknown {unknown}; choose from {', '.join(envs.names())}")
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    timer = Timer(repeats=args.repeats, max_retries=args.max_retries)
    rows = []
    for name in args.envs:
        backend = backend_for(name, args.backend)
        for n in args.num_envs:
            try:
                rows.append(bench_env(name, backend, n, args, timer))
            except Exception as error:  # noqa: BLE001 - reported, and the others still run
                log(f"{name} x {n} failed:\n{traceback.format_exc()}")
                message = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
                rows.append(dict(env=name, backend=backend, num_envs=n, error=message))
                break
    table = markdown(rows, args)
    print(table)
    for path, text in ((args.json, json.dumps(rows, indent=1)), (args.markdown, table)):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text + "\n")
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
