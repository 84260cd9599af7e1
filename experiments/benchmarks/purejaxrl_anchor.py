"""PureJaxRL anchor for the speed benchmark: time PureJaxRL's own `ppo_continuous_action`
training function and print one JSON line.

Runs in a subprocess of `experiments.benchmarks.speed`, with a checkout of luchris429/purejaxrl
(its `purejaxrl/` folder) and its Python dependencies importable: ::

    PYTHONPATH=PUREJAXRL/purejaxrl:DEPS python experiments/benchmarks/purejaxrl_anchor.py \
        --env inverted_pendulum --backend spring --num-envs 1024 --num-updates 20

Nothing of PureJaxRL is part of purerl: this script only calls its `make_train(config)` with
the configuration below (its `ppo_continuous_action` defaults, with the batch geometry and
environment taken from the command line) and times the compiled `train(key)`:
- compile: `jax.jit(train).lower(key).compile()` wall time;
- train: one call of the compiled function for `--num-updates` updates (network and
  environment initialisation included, a few milliseconds), best of `--repeats` calls;
  with `--seeds N`, of `jax.vmap(train)` on N keys.
With `--gpu-target` it compiles for that GPU on a machine without one and times nothing.
With `--curve K` it trains once and reports how it learned (`purejaxrl_curves` reads it).
With `--serve` it prints the result line after compiling and one untimed call, then times one
call for each line it reads on stdin and answers each with a line `{"train_s": seconds}`,
until stdin closes: `speed --paired` times the two sides alternately that way.
PureJaxRL's brax wrapper defaults to the positional backend; `--backend` replaces it.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
import types

from serving import claim_stdout, serve, timed  # sibling: this runs as a script

# Everything but the JSON lines goes to stderr (mujoco prints to stdout on import).
_OUT = claim_stdout()

import jax  # noqa: E402
from args import add_geometry  # noqa: E402
from gpu_target import TARGETS, gpu_key  # noqa: E402


def episode_returns(train, chunks: int, key):
    """(mean return of the training episodes that ended in each of `chunks` equal chunks of
    the run, how many ended there), from what PureJaxRL's LogWrapper records at every step:
    the return of the episode a step ended, and whether it ended one."""
    info = train(key)["metrics"]
    ended = info["returned_episode"].astype(jax.numpy.float32)  # (updates, steps, envs)

    def per_chunk(x):
        return x.reshape(chunks, -1).sum(1)

    episodes = per_chunk(ended)
    returns = per_chunk(info["returned_episode_returns"] * ended)
    return returns / jax.numpy.maximum(episodes, 1.0), episodes


def curve(args: argparse.Namespace, train, key) -> dict:
    """`--curve`: episode_returns of each seed, the seeds one after another. Not vmapped:
    PureJaxRL's orthogonal initialisation under vmap is one batched LAPACK QR, which can wedge
    XLA's CPU thread pool (a 10-seed run here hung with its CPU idle; purerl's initialiser
    maps its QRs one at a time for that reason, `purerl.networks.orthogonal`)."""
    run = jax.jit(functools.partial(episode_returns, train, args.curve))
    returns, episodes = [], []
    for seed_key in jax.random.split(key, args.seeds) if args.seeds > 1 else [key]:
        mean, count = run(seed_key)
        returns.append(mean.tolist())
        episodes.append(count.tolist())
    return {"anchor": "purejaxrl", "returns": returns, "episodes": episodes}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_geometry(p)
    p.add_argument("--num-updates", type=int, default=20)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="train this many seeds at once under jax.vmap (keys split from --seed's), as "
        "PureJaxRL's README does (on a CPU its batched QR can hang: see `curve`); with "
        "--curve, one after another",
    )
    p.add_argument("--hlo-out", help="also write the compiled program's text here")
    p.add_argument(
        "--curve",
        type=int,
        default=0,
        metavar="K",
        help="train once and report learning instead of time: the mean return of the "
        "training episodes that ended in each of K equal chunks of the run, per seed",
    )
    p.add_argument("--serve", action="store_true", help="time one call per line read on stdin")
    p.add_argument(
        "--gpu-target",
        choices=list(TARGETS),
        help="compile for this GPU without one (gpu_target.py) and time nothing",
    )
    args = p.parse_args(argv)
    if args.unrolls_per_iteration != 1:
        p.error("--unrolls-per-iteration must be 1: PureJaxRL collects one unroll per update")
    if args.seeds < 1 or (args.seeds > 1 and args.gpu_target):
        p.error("--seeds must be at least 1, and 1 with --gpu-target")
    if args.curve and (args.num_updates % args.curve or args.serve or args.gpu_target):
        p.error("--curve K needs --num-updates a multiple of K, and no --serve or --gpu-target")

    try:
        import navix  # noqa: F401
    except ImportError:
        # PureJaxRL's wrappers.py imports navix for its grid-world wrapper, which this
        # benchmark never builds; navix in turn needs wandb. Without them, an empty module.
        sys.modules["navix"] = types.ModuleType("navix")
    import ppo_continuous_action as pjrl  # from the PureJaxRL checkout on PYTHONPATH
    import wrappers

    pjrl.BraxGymnaxWrapper = functools.partial(wrappers.BraxGymnaxWrapper, backend=args.backend)
    config = {
        "LR": 3e-4,
        "NUM_ENVS": args.num_envs,
        "NUM_STEPS": args.unroll_length,
        "TOTAL_TIMESTEPS": args.num_updates * args.num_envs * args.unroll_length,
        "UPDATE_EPOCHS": args.num_epochs,
        "NUM_MINIBATCHES": args.num_minibatches,
        "GAMMA": 0.99,
        "GAE_LAMBDA": 0.95,
        "CLIP_EPS": 0.2,
        "ENT_COEF": 0.0,
        "VF_COEF": 0.5,
        "MAX_GRAD_NORM": 0.5,
        "ACTIVATION": "tanh",
        "ENV_NAME": args.env,
        "ANNEAL_LR": False,
        "NORMALIZE_ENV": True,
        "DEBUG": False,
    }
    key = gpu_key(args.gpu_target) if args.gpu_target else jax.random.PRNGKey(args.seed)
    train = pjrl.make_train(config)
    if args.curve:
        with _OUT as out:
            out.write(json.dumps(curve(args, train, key)) + "\n")
        return {}
    if args.seeds > 1:
        key = jax.random.split(key, args.seeds)
        train = jax.vmap(train)
    start = time.perf_counter()
    train = jax.jit(train).lower(key).compile()
    compile_s = time.perf_counter() - start
    if args.hlo_out:
        with open(args.hlo_out, "w") as f:
            f.write(train.as_text())
    steps = args.num_updates * args.num_envs * args.unroll_length * args.seeds
    result = {
        "anchor": "purejaxrl",
        "env": args.env,
        "backend": args.backend,
        "env_steps": steps,
        "compile_s": round(compile_s, 3),
        "jax_version": jax.__version__,
    }

    def call():
        jax.block_until_ready(train(key))

    with _OUT as out:
        if args.serve:
            serve(call, result, sys.stdin, out)
            return result
        if not args.gpu_target:
            times = [timed(call) for _ in range(args.repeats)]
            result["train_s"] = [round(t, 4) for t in times]
            result["env_steps_per_second"] = round(steps / min(times), 1)
        out.write(json.dumps(result) + "\n")
    return result


if __name__ == "__main__":
    main()
