"""The throughput benchmark's other side: Brax's own PPO trainer, in a subprocess under the
anchor venv's python, timed like our side.

Brax 0.14.2's trainer needs jax < 0.10, so it runs as ``brax_anchor.py`` under another
python (by default the venv ``anchor_venv.py`` makes; on the GPU machine the same python with
the anchor's jax shim). The whole subprocess is one timed section of the noise harness, so a
run that other processes or a slow machine disturbed is repeated like any timed call.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys

from experiments.benchmarks import anchors
from experiments.benchmarks.timing import Timer, log


def brax_command(args: argparse.Namespace, python: str) -> tuple[list[str], int]:
    """The anchor's command at the benchmark's geometry and hyperparameters, and the
    iterations in each of Brax's training epochs.

    Brax gets ``brax_num_evals`` epochs of ``ceil(iterations / 2)`` iterations each, so its
    compile-free window (the last two epochs, see brax_anchor.py) covers about as many
    iterations as one timed call of ours.
    """
    spi = args.num_envs * args.unroll_length * args.unrolls_per_iteration
    per_epoch = max(1, math.ceil(args.iterations / 2))
    # Brax: num_training_steps_per_epoch = ceil(total / ((num_evals - 1) * spi)).
    total = (args.brax_num_evals - 1) * per_epoch * spi
    command = anchors.command(
        python,
        "brax_anchor",
        args,
        total_env_steps=total,
        episode_length=args.episode_length,
        policy_hidden_sizes=args.policy_hidden_sizes,
        value_hidden_sizes=args.value_hidden_sizes,
        learning_rate=args.learning_rate,
        discount=args.discount,
        entropy_cost=args.entropy_cost,
        reward_scaling=args.reward_scale,
        normalize_observations=True,
        num_evals=args.brax_num_evals,
        num_eval_envs=args.brax_num_eval_envs,
        seed=args.seed,
    )
    return command, per_epoch


def bench_brax(args: argparse.Namespace, timer: Timer) -> dict:
    """Runs Brax's anchor once, undisturbed, and returns its JSON plus the run's evidence."""
    if args.brax_python:
        python = args.brax_python
    else:
        from experiments.benchmarks.anchor_venv import ensure_anchor_venv

        python = ensure_anchor_venv()
    command, per_epoch = brax_command(args, python)
    log("brax anchor: " + " ".join(command[1:]))
    run = timer.measure(
        "brax anchor",
        lambda: subprocess.run(command, capture_output=True, text=True),
        final=lambda proc: proc.returncode != 0,  # a failure is reported, not repeated
    )
    proc = run.result
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise RuntimeError(f"brax anchor failed with exit code {proc.returncode}")
    result = anchors.result(proc.stdout)
    result["subprocess_wall_s"] = round(run.wall_s, 2)
    result["own_cpu_s"] = round(run.own_cpu_s, 2)
    result["foreign_cpu_s"] = None if run.foreign_cpu_s is None else round(run.foreign_cpu_s, 2)
    result["polluted_runs_repeated"] = run.repeated
    result["canary_gflops_before_after"] = tuple(round(g) for g in run.canaries)
    result["iterations_per_epoch"] = per_epoch
    result["command"] = " ".join(command)
    log(
        f"brax anchor: train-only {result['train_only_env_steps_per_second']} steps/s, "
        f"with evals {result['env_steps_per_second']} steps/s, clean={result['clean_window']}, "
        f"wall {run.wall_s:.1f}s"
    )
    return result
