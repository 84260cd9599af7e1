"""PPO throughput benchmark: purerl vs Brax's own PPO trainer, plus a cost breakdown.

Run (one benchmark at a time -- parallel runs pollute each other's timings)::

    python -m experiments.benchmarks.throughput --env inverted_pendulum --backend spring
    python -m experiments.benchmarks.throughput --env ant --backend spring
    python -m experiments.benchmarks.throughput --env inverted_pendulum --backend generalized

Side by side, on the same environment, batch geometry (num_envs x unrolls_per_iteration
unrolls of unroll_length per iteration, num_minibatches, num_epochs) and network sizes
(Brax's defaults: policy (32,)*4, value (256,)*5, swish; discount 0.97, reward scale 1,
observation normalisation on), it measures:

1. ``ours``: purerl training, ``jax.jit(trainer.run_iterations, static_argnums=1)``
   called with ``n`` iterations.  The first call compiles (and runs); the
   following call(s) are timed with ``block_until_ready``.  Steps per call =
   ``n * num_envs * unroll_length * unrolls_per_iteration``.  No evaluation inside.
2. ``brax``: Brax's own ``ppo.train`` in the separate ``.bench-venv``
   (``experiments/benchmarks/brax_anchor.py``, jax 0.8.0) with the same arguments.
   Its ``train_only_env_steps_per_second`` (Brax's own ``training/walltime``,
   no evals, no compiles) is used for the ratio; ``env_steps_per_second``
   (evals included) is reported too.  Brax gets ``num_evals`` (default 5)
   epochs of ``ceil(n / 2)`` iterations each, so its compile-free window (the
   last two epochs) covers about ``n`` iterations, like ours.
3. ``simulator``: the same batched auto-reset env (``trainer.env.step``) with
   uniform random actions in [-1, 1], ``lax.scan`` over the iteration's steps per env, scanned
   ``n`` times -- the raw cost of the env steps one iteration consumes.
4. ``update``: ``trainer.agent.update`` on one fixed collected trajectory,
   scanned ``n`` times; time per update (GAE + normaliser + epochs x minibatches).

``overhead_fraction = 1 - (simulator + update) / ours`` per iteration: the share
of our iteration not explained by stepping the physics and doing SGD (policy
inference and sampling during the rollout, scan plumbing, ...).

``--breakdown`` adds finer components (each timed the same way): ``collect``
(rollout with the policy), the env step without auto-reset, a forced reset of
every env, the update's pre-SGD part (normaliser + value recompute + GAE), the
XLA matmul ceiling of this machine, and one evaluation.  The update's analytic
dense-layer FLOPs give its achieved GFLOP/s.

Noise control (the machine is a shared 2-core VM).  Every timed call (and the
Brax subprocess) is bracketed by (a) a check of the CPU time other processes
used (``/proc/stat`` minus our own, incl. the Brax child) and (b) a ~0.2 s
"canary" matmul whose GFLOP/s tracks the machine's current speed; a call during
which other processes used > 5% of the CPUs, or whose canary fell below 85% of
the best reading, is repeated (up to ``--max-retries``, default 3, times) after
waiting for the machine to be quiet.  ``--rounds R`` repeats the whole
ours/simulator/update/brax sequence; the report gives medians over rounds, and the
ratio is the median of the per-round ratios (ours and brax measured minutes apart).

Results go to ``runs/bench/<env>_<backend>_<time>.json`` (or ``--out``) and a
markdown table is printed.  All timings exclude compilation: every jitted
function is called once to compile (and warm up) before the timed call(s) and
later rounds reuse the compiled executables; Brax's anchor excludes its
compiles with a ``jax.monitoring`` listener (see its docstring).

This module is the entry point: its command line, the config, and the rounds. The parts are
``timing`` (the noise-controlled harness), ``iteration`` (ours, simulator, update),
``breakdown``, ``brax_run`` (Brax's anchor in its own venv), ``flops`` (the analytic FLOP
count) and ``report`` (summaries and the markdown table).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time

import jax

from experiments.benchmarks.args import add_geometry, hidden_sizes
from experiments.benchmarks.brax_run import bench_brax
from experiments.benchmarks.breakdown import bench_breakdown
from experiments.benchmarks.flops import analytic_flops
from experiments.benchmarks.iteration import (
    bench_ours,
    bench_simulator,
    bench_update,
    fixed_trajectory,
)
from experiments.benchmarks.report import combine_rounds, markdown_table, round_summary
from experiments.benchmarks.timing import MAX_RETRIES, Timer, log
from purerl import Config, EnvConfig, PPOConfig, TrainConfig, Trainer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_ITERATIONS = {"ant": 6}  # everything else: 20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_geometry(p)
    p.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="iterations per timed call (default: 6 for ant, 20 otherwise)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed calls per measurement after the warm-up; the median is reported",
    )
    p.add_argument("--episode-length", type=int, default=1000)
    p.add_argument("--policy-hidden-sizes", default="32,32,32,32")
    p.add_argument("--value-hidden-sizes", default="256,256,256,256,256")
    p.add_argument("--activation", default="swish")
    p.add_argument("--discount", type=float, default=0.97)
    p.add_argument("--reward-scale", type=float, default=1.0)
    p.add_argument("--learning-rate", type=float, default=3e-4)
    p.add_argument("--entropy-cost", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat the whole ours/simulator/update/brax sequence; medians over rounds are "
        "reported and the ratio is the median of per-round (time-adjacent) ratios",
    )
    p.add_argument("--skip-brax", action="store_true", help="do not run Brax's PPO anchor")
    p.add_argument(
        "--max-retries",
        type=int,
        default=MAX_RETRIES,
        help="repeats of a timed call that other processes or a slow CPU disturbed (0 on an "
        "accelerator, whose timings the CPU canary does not describe)",
    )
    p.add_argument(
        "--brax-num-evals",
        type=int,
        default=5,
        help=">= 4 so Brax's anchor gets a compile-free window",
    )
    p.add_argument("--brax-num-eval-envs", type=int, default=128)
    p.add_argument(
        "--brax-python",
        default=None,
        help="python of the anchor venv (default: ensure_anchor_venv())",
    )
    p.add_argument(
        "--breakdown",
        action="store_true",
        help="also time collect / env step without reset / reset / GAE prep / eval",
    )
    p.add_argument(
        "--out", default=None, help="JSON path (default runs/bench/<env>_<backend>_<time>.json)"
    )
    args = p.parse_args(argv)
    if args.iterations is None:
        args.iterations = DEFAULT_ITERATIONS.get(args.env, 20)
    if (args.num_envs * args.unrolls_per_iteration) % args.num_minibatches:
        p.error(
            "--num-envs x --unrolls-per-iteration must be divisible by --num-minibatches "
            "(Brax's batch_size)"
        )
    if args.brax_num_evals < 4:
        p.error("--brax-num-evals must be >= 4")
    return args


def make_config(args: argparse.Namespace) -> Config:
    """purerl's config at the benchmark's geometry and Brax's defaults, sized for exactly one
    timed call of `--iterations` iterations (evaluation is timed only in --breakdown)."""
    n = args.iterations
    return Config(
        env=EnvConfig(name=args.env, backend=args.backend, episode_length=args.episode_length),
        train=TrainConfig(
            num_envs=args.num_envs,
            unroll_length=args.unroll_length,
            unrolls_per_iteration=args.unrolls_per_iteration,
            total_env_steps=n * args.num_envs * args.unroll_length * args.unrolls_per_iteration,
            num_evals=1,
            num_eval_envs=args.brax_num_eval_envs,
            seed=args.seed,
        ),
        agent=PPOConfig(
            learning_rate=args.learning_rate,
            num_epochs=args.num_epochs,
            num_minibatches=args.num_minibatches,
            discount=args.discount,
            reward_scale=args.reward_scale,
            entropy_coef=args.entropy_cost,
            policy_hidden_sizes=hidden_sizes(args.policy_hidden_sizes),
            value_hidden_sizes=hidden_sizes(args.value_hidden_sizes),
            activation=args.activation,
        ),
    )


def main(argv: list[str] | None = None) -> dict:
    """Runs every round, writes the JSON, prints its summary line and the markdown table."""
    args = parse_args(argv)
    timer = Timer(repeats=args.repeats, max_retries=args.max_retries)
    n = args.iterations
    config = make_config(args)
    trainer = Trainer(config)
    key = jax.random.PRNGKey(args.seed)
    log(
        f"{args.env}/{args.backend}: {n} iterations x {config.train.steps_per_iteration} steps; "
        f"jax {jax.__version__} on {jax.default_backend()}"
    )

    t_start = time.perf_counter()
    jits: dict = {}
    flops = analytic_flops(trainer)
    state, trajectory = fixed_trajectory(trainer, jax.random.fold_in(key, 2))
    rounds, breakdown = [], None
    for r in range(args.rounds):
        if args.rounds > 1:
            log(f"round {r + 1}/{args.rounds}")
        canary = [timer.canary()]
        ours = bench_ours(trainer, n, timer, key, jits)
        sim = bench_simulator(trainer, n, timer, jax.random.fold_in(key, 1), jits)
        upd = bench_update(
            trainer, n, timer, jax.random.fold_in(key, 3 + r), state, trajectory, jits
        )
        if args.breakdown and r == 0:
            breakdown = bench_breakdown(
                trainer, n, timer, jax.random.fold_in(key, 4), state, trajectory
            )
        canary.append(timer.canary())
        brax = None
        if not args.skip_brax:
            if args.out and r == 0:
                # Ours is measured: keep it if Brax's anchor (compiling for minutes on a GPU)
                # runs out of a caller's time limit. The complete JSON replaces this one.
                partial = {"partial": "Brax's anchor did not finish", "ours": ours}
                partial.update(simulator=sim, update=upd, argv=argv or sys.argv[1:])
                os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
                with open(args.out, "w") as f:
                    json.dump(partial, f, indent=2, default=float)
            brax = bench_brax(args, timer)
            canary.append(timer.canary())
        log(f"machine canary GFLOP/s this round: {[round(c) for c in canary]}")
        rounds.append(
            {
                "summary": round_summary(ours, sim, upd, brax, flops),
                "ours": ours,
                "simulator": sim,
                "update": upd,
                "brax": brax,
                "canary_gflops_per_s": canary,
            }
        )
    wall = time.perf_counter() - t_start
    summary = combine_rounds([rd["summary"] for rd in rounds])
    canaries = [c for rd in rounds for c in rd["canary_gflops_per_s"]]
    summary["canary_gflops_per_s_min_max"] = [min(canaries), max(canaries)]
    result = {
        "summary": summary,
        "geometry": {
            "env": args.env,
            "backend": args.backend,
            "num_envs": args.num_envs,
            "unroll_length": args.unroll_length,
            "unrolls_per_iteration": args.unrolls_per_iteration,
            "num_minibatches": args.num_minibatches,
            "num_epochs": args.num_epochs,
            "iterations": n,
            "steps_per_iteration": config.train.steps_per_iteration,
            "minibatch_size": config.train.steps_per_iteration // args.num_minibatches,
            "episode_length": args.episode_length,
        },
        "config": dataclasses.asdict(config),
        "flops": flops,
        "rounds": rounds,
        "breakdown": breakdown,
        "wall_s": round(wall, 2),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "jax": jax.__version__,
            "jax_backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()],
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
        },
        "argv": sys.argv[1:] if argv is None else list(argv),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or os.path.join(
        REPO_ROOT, "runs", "bench", f"{args.env}_{args.backend}_{stamp}.json"
    )
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=2, default=float)
    log(f"wrote {out}")
    print(
        json.dumps({"summary": summary, "geometry": result["geometry"], "json": out}, default=float)
    )
    print()
    print(markdown_table(result))
    return result


if __name__ == "__main__":
    main()
