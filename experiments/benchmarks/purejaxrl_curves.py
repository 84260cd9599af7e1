"""Learning-curve parity with PureJaxRL: purerl and PureJaxRL's own `ppo_continuous_action`
at PureJaxRL's configuration, on the same environment and budget.

    python -m experiments.benchmarks.purejaxrl_curves --purejaxrl-dir PUREJAXRL \
        --pythonpath DEPS --seeds 8 --num-updates 100 --chunks 10 \
        --json runs/bench/purejaxrl-curves.json

PureJaxRL evaluates nothing: its LogWrapper records the return of each training episode as
it ends. So both sides are measured that way, from their stochastic policies: the mean return
of the training episodes that ended in each of `--chunks` equal chunks of the run, per seed.
Both sides train seeds from keys split off `--seed`'s (`speed.run_keys`): purerl all of
them in one program under `jax.vmap`, PureJaxRL one after another (vmapped, its
initialisation's batched QR can hang XLA's CPU thread pool: `purejaxrl_anchor.curve`).
purerl's configuration is the speed benchmark's (`speed.purejaxrl_config`: 256x256 tanh
actor and critic, clipped Gaussian, observation and reward normalisation, clipped value
loss, gradient clipping 0.5, advantages per batch), with `--variant NAME:field=value,...`
runs of it alongside (for instance `bootstrap_on_timeout=false`, PureJaxRL's ending of
episodes at time limits).

Reported per side as by the Brax parity benchmark (`curves`): mean and 95% t-interval over
seeds at every chunk, the area under the curve, and each purerl side's targets against
PureJaxRL's (its mean at every chunk at least PureJaxRL's lower bound, its area at least
PureJaxRL's) with Welch's and Mann-Whitney's p on the per-seed areas. `--reuse` reports the
sides of an earlier run at the same settings again, training only new variants.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from experiments.atomic import write_text_atomic
from experiments.benchmarks import curves, speed
from experiments.benchmarks.args import add_geometry, add_purejaxrl


def settings(args: argparse.Namespace) -> argparse.Namespace:
    """The speed benchmark's settings at this run's geometry, budget, seeds and checkout."""
    return speed.settings(
        args, seeds=args.seeds, purejaxrl_dir=args.purejaxrl_dir, pythonpath=args.pythonpath
    )


def steps(args: argparse.Namespace) -> list[int]:
    """The env steps at the end of each chunk, for one seed."""
    per_chunk = args.num_updates // args.chunks * args.num_envs * args.unroll_length
    return [per_chunk * (k + 1) for k in range(args.chunks)]


def run_purerl(args: argparse.Namespace, overrides: dict) -> dict:
    """{"steps", "returns" (per seed, per chunk), "episodes"} of purerl's configuration with
    `overrides`, all seeds in one vmapped program."""
    import jax

    from purerl import Trainer
    from purerl.config import replace

    setting = settings(args)
    trainer = Trainer(replace(speed.purejaxrl_config(setting), **overrides))
    per_chunk = args.num_updates // args.chunks

    def run(key):
        def chunk(state, _):
            state, metrics = trainer.run_iterations(state, per_chunk)
            return state, (metrics["train/episode_return"], metrics["train/episodes"])

        return jax.lax.scan(chunk, trainer.init(key), None, length=args.chunks)[1]

    keys = speed.run_keys(jax.random.PRNGKey(args.seed), args.seeds)
    returns, episodes = jax.jit(jax.vmap(run))(keys)
    print(f"[purerl {overrides or ''}] {np.round(returns, 0).tolist()}", file=sys.stderr)
    return {"steps": steps(args), "returns": returns.tolist(), "episodes": episodes.tolist()}


def run_purejaxrl(args: argparse.Namespace) -> dict:
    """The same from PureJaxRL's anchor (`purejaxrl_anchor.py --curve`), in its own process."""
    result = speed.time_anchor(settings(args), seed=args.seed, curve=args.chunks)
    print(f"[purejaxrl] {np.round(result['returns'], 0).tolist()}", file=sys.stderr)
    return {"steps": steps(args), "returns": result["returns"], "episodes": result["episodes"]}


# Settings that may differ from those of the earlier run that --reuse reports again.
REUSE_FREE = {"variant", "reuse", "json", "purejaxrl_dir", "pythonpath", "equivalence_margin"}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_geometry(p)
    p.add_argument("--num-updates", type=int, default=100)
    p.add_argument("--chunks", type=int, default=10)
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--seed", type=int, default=0, help="the key the seeds' keys split from")
    add_purejaxrl(p, required=True)
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        help="extra purerl run, NAME:field=value,... over purerl's PureJaxRL configuration",
    )
    p.add_argument(
        "--reuse",
        help="an earlier result JSON at the same settings: report its sides again instead of "
        "training them, beside this run's new --variant sides",
    )
    curves.add_equivalence_margin(p)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    if args.seeds < 2:
        p.error("--seeds must be at least 2 (the intervals are over seeds)")
    if args.chunks < 2 or args.num_updates % args.chunks:
        p.error("--num-updates must be a multiple of --chunks, and --chunks at least 2")
    if args.unrolls_per_iteration != 1:
        p.error("--unrolls-per-iteration must be 1: PureJaxRL collects one unroll per update")
    variants = [curves.parse_variant(v) for v in args.variant]
    if len({name for name, _ in variants}) < len(variants):
        p.error("--variant names must differ")
    if args.reuse:
        earlier = curves.earlier_run("--reuse", args.reuse, args, REUSE_FREE)
        sides = {
            name: {k: side[k] for k in ("steps", "returns", "episodes")}
            for name, side in earlier["sides"].items()
        }
    else:
        sides = {"purejaxrl": run_purejaxrl(args), "purerl": run_purerl(args, {})}
    for name, _ in variants:
        if f"purerl-{name}" in sides:
            p.error(f"--variant {name}: --reuse {args.reuse} already has it; choose a new name")
    for name, overrides in variants:
        sides[f"purerl-{name}"] = run_purerl(args, overrides)
    sides = {name: curves.summarise(side) for name, side in sides.items()}
    anchor = sides["purejaxrl"]
    targets = {
        name: curves.targets_against(side, anchor, args.equivalence_margin)
        for name, side in sides.items()
        if name != "purejaxrl"
    }
    result = {"config": vars(args), "sides": sides, "targets": targets}
    print(curves.markdown(result, anchor="purejaxrl"))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(Path(args.json), json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
