"""Training speed, side by side with PureJaxRL's own PPO at its configuration.

    python -m experiments.benchmarks.speed --purejaxrl-dir PUREJAXRL --pythonpath DEPS \
        --env inverted_pendulum --backend spring --rounds 3 --json runs/bench/speed.json

Both sides train PureJaxRL's `ppo_continuous_action` configuration: 256x256 tanh actor and
critic (orthogonal init), a Gaussian whose samples are clipped to the action range,
observation and reward normalisation, clipped value loss, gradient-norm clipping 0.5,
advantages per batch, num_envs x unroll_length steps per update, num_minibatches x
num_epochs gradient steps. Each side compiles `train(key)` for `--num-updates` updates
(no evaluation) and is timed after compilation, best of two calls; rounds alternate
between the sides and the medians are compared. PureJaxRL runs in a subprocess
(`experiments/benchmarks/purejaxrl_anchor.py`) from the checkout given; `--skip-anchor` times
purerl alone.

`--paired N` measures the ratio more finely, for a machine whose speed drifts between rounds
(a shared VM's does by 10-20%): both sides compile once, then run one call each, N times,
alternately (PureJaxRL's process waits for a line on its stdin before each call), and each
pair gives one ratio. Their geometric mean and its 95% t-interval are reported.
`--simultaneous N` takes the machine's speed out of the ratio instead: each side runs
single-threaded in its own process pinned to a core of its own, both are called at the same
moment N times, then N more times with their cores swapped. That compares the work each does
per env step on one core, not how each uses two.

The breakdown times purerl's parts per iteration, each compiled alone and scanned over the
same number of iterations: collect (policy + environment steps, with resets), prepare
(normaliser updates, value passes, GAE), sgd (the epochs of minibatch steps) and the
non-finite check (whole run with it minus without it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import jax

from experiments.atomic import write_text_atomic
from experiments.benchmarks import anchors, hlo_loops, serving
from experiments.benchmarks.args import add_geometry, add_purejaxrl, geometry_flags
from purerl import Config, EnvConfig, PPOConfig, TrainConfig, Trainer
from purerl.config import FRESH_STARTS, SUBSTEPS, fresh_starts_per_step, unrolled_substeps


def purejaxrl_config(args: argparse.Namespace, check_finite: bool = True) -> Config:
    """purerl's config equal to PureJaxRL's ppo_continuous_action defaults at this geometry."""
    # --no-reward-normalization: for timing purerl versions from before the option existed.
    reward_normalization = {} if args.no_reward_normalization else {"normalize_rewards": True}
    return Config(
        EnvConfig(
            args.env,
            backend=args.backend,
            episode_length=1000,
            reset_to_first_state=args.reset_to_first_state,
            fresh_starts=args.fresh_starts,
            substeps=args.substeps,
        ),
        TrainConfig(
            num_envs=args.num_envs,
            unroll_length=args.unroll_length,
            total_env_steps=args.num_updates * args.num_envs * args.unroll_length,
            num_evals=1,
            check_finite=check_finite,
        ),
        PPOConfig(
            learning_rate=3e-4,
            num_epochs=args.num_epochs,
            num_minibatches=args.num_minibatches,
            discount=0.99,
            gae_lambda=0.95,
            clip_epsilon=0.2,
            clip_value_loss=True,
            value_loss_coef=0.5,
            entropy_coef=0.0,
            max_grad_norm=0.5,
            bootstrap_on_timeout=not args.mask_time_limits,
            policy_hidden_sizes=(256, 256),
            value_hidden_sizes=(256, 256),
            activation="tanh",
            action_distribution="clipped_normal",
            **reward_normalization,
        ),
    )


def best_time(fn, *args, repeats: int = 2) -> float:
    """Best wall time of `repeats` calls of fn(*args), each run to completion, after one
    untimed call."""

    def call():
        jax.block_until_ready(fn(*args))

    call()
    return min(serving.timed(call) for _ in range(repeats))


def run_keys(key: jax.Array, seeds: int) -> jax.Array:
    """What one call of the timed program takes: `key` for one seed, `seeds` keys split from it
    for several seeds trained at once."""
    return key if seeds == 1 else jax.random.split(key, seeds)


def compiled_train(trainer: Trainer, num_updates: int, key: jax.Array, seeds: int = 1):
    """`train(key)` for num_updates iterations and no evaluation, compiled; with seeds > 1,
    `train(keys)` for that many seeds at once under `jax.vmap` (keys: `run_keys`)."""

    def train(key):
        return trainer.run_iterations(trainer.init(key), num_updates)

    if seeds > 1:
        train = jax.vmap(train)
    return jax.jit(train).lower(run_keys(key, seeds)).compile()


def steps_per_call(args: argparse.Namespace) -> int:
    """Env steps one call of either side's program takes, over all its seeds."""
    return args.num_updates * args.num_envs * args.unroll_length * args.seeds


def ours_call(args: argparse.Namespace, key: jax.Array, check_finite: bool = True):
    """purerl's side compiled: (one call of it, run to completion; its compile seconds)."""
    trainer = Trainer(purejaxrl_config(args, check_finite))
    start = time.perf_counter()
    train = compiled_train(trainer, args.num_updates, key, args.seeds)
    compile_s = time.perf_counter() - start
    if args.hlo_dir and check_finite:
        Path(args.hlo_dir).mkdir(parents=True, exist_ok=True)
        (Path(args.hlo_dir) / "purerl.hlo.txt").write_text(train.as_text())
    keys = run_keys(key, args.seeds)
    return lambda: jax.block_until_ready(train(keys)), compile_s


def time_ours(args: argparse.Namespace, check_finite: bool, key: jax.Array) -> dict:
    call, compile_s = ours_call(args, key, check_finite)
    seconds = best_time(call)
    steps = steps_per_call(args)
    return {"compile_s": compile_s, "train_s": seconds, "env_steps_per_second": steps / seconds}


def breakdown(args: argparse.Namespace, key: jax.Array) -> dict:
    """Seconds per iteration of collect, prepare and sgd, each scanned num_updates times."""
    trainer = Trainer(purejaxrl_config(args, check_finite=False))
    agent, n = trainer.agent, args.num_updates
    state = trainer.init(key)
    _, trajectory, _ = jax.jit(trainer.collect)(state.agent, state.env, key)

    def collect(agent_state, env_state, key):
        def body(env_state, key):
            env_state, trajectory, _ = trainer.collect(agent_state, env_state, key)
            return env_state, trajectory.reward.sum()

        return jax.lax.scan(body, env_state, jax.random.split(key, n))

    def prepare(agent_state, trajectory):
        def body(agent_state, _):
            agent_state, batch = agent.prepare_batch(agent_state, trajectory)
            return agent_state, jax.tree.leaves(batch)[-1].sum()

        return jax.lax.scan(body, agent_state, None, length=n)

    def update(agent_state, trajectory, key):  # prepare + sgd
        def body(agent_state, key):
            agent_state, metrics = agent.update(agent_state, trajectory, key)
            return agent_state, metrics["loss/total"]

        return jax.lax.scan(body, agent_state, jax.random.split(key, n))

    parts = {
        "collect": best_time(jax.jit(collect), state.agent, state.env, key),
        "prepare": best_time(jax.jit(prepare), state.agent, trajectory),
        "update": best_time(jax.jit(update), state.agent, trajectory, key),
    }
    per_iteration = {name: seconds / n for name, seconds in parts.items()}
    per_iteration["sgd"] = per_iteration["update"] - per_iteration["prepare"]
    return per_iteration


def anchor_environment(args: argparse.Namespace) -> dict:
    """The environment PureJaxRL's anchor runs in: its checkout and dependencies importable."""
    env = dict(os.environ)
    paths = [str(Path(args.purejaxrl_dir) / "purejaxrl"), *args.pythonpath]
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    return env


def time_anchor(args: argparse.Namespace, **values: object) -> dict:
    """PureJaxRL's run at args' geometry (purejaxrl_anchor.py), with `values` as more flags."""
    hlo_out = (
        {"hlo_out": Path(args.hlo_dir).resolve() / "purejaxrl.hlo.txt"} if args.hlo_dir else {}
    )
    command = anchors.command(
        sys.executable,
        "purejaxrl_anchor",
        args,
        num_updates=args.num_updates,
        seeds=args.seeds,
        **hlo_out,
        **values,
    )
    done = subprocess.run(command, env=anchor_environment(args), capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"PureJaxRL anchor failed:\n{done.stderr[-3000:]}")
    return anchors.result(done.stdout)


def paired_times(time_ours, time_anchor, pairs: int) -> tuple[list[float], list[float]]:
    """`pairs` timings of each side, one call each per pair: purerl first in even pairs and
    PureJaxRL first in odd ones, so that the machine's drift within a pair favours neither."""
    ours, theirs = [], []
    for index in range(pairs):
        if index % 2 == 0:
            ours.append(time_ours())
            theirs.append(time_anchor())
        else:
            theirs.append(time_anchor())
            ours.append(time_ours())
    return ours, theirs


def paired_summary(ours_s: list[float], anchor_s: list[float]) -> dict:
    """purerl's speed over PureJaxRL's in each pair (PureJaxRL's seconds over purerl's, the
    same steps on both sides): their median, their geometric mean with its 95% t-interval (on
    the logarithms), and the number of pairs purerl was faster in."""
    from scipy import stats

    ratios = [theirs / ours for ours, theirs in zip(ours_s, anchor_s, strict=True)]
    logs = [math.log(ratio) for ratio in ratios]
    mean, n = statistics.fmean(logs), len(logs)
    half = stats.t.ppf(0.975, df=n - 1) * statistics.stdev(logs) / math.sqrt(n)
    return {
        "pairs": n,
        "ratios": [round(ratio, 4) for ratio in ratios],
        "median": statistics.median(ratios),
        "geometric_mean": math.exp(mean),
        "interval_95": [math.exp(mean - half), math.exp(mean + half)],
        "purerl_faster": sum(ratio > 1 for ratio in ratios),
    }


def anchor_command(args: argparse.Namespace) -> list[str]:
    """PureJaxRL's run at args' geometry as a server (purejaxrl_anchor.py --serve)."""
    return anchors.command(
        sys.executable,
        "purejaxrl_anchor",
        args,
        num_updates=args.num_updates,
        seeds=args.seeds,
        serve=True,
    )


def paired(args: argparse.Namespace, key: jax.Array) -> dict:
    """`--paired`: both sides compiled once, then args.paired pairs of alternate calls."""
    call, _ = ours_call(args, key)

    def time_ours() -> float:
        return serving.timed(call)

    with serving.Server(
        "PureJaxRL anchor", anchor_command(args), anchor_environment(args)
    ) as anchor:
        time_ours()  # PureJaxRL's first call is made before it reports ready
        ours_s, anchor_s = paired_times(time_ours, anchor, args.paired)
    return with_speeds(args, paired_summary(ours_s, anchor_s), ours_s, anchor_s)


def with_speeds(args: argparse.Namespace, summary: dict, ours_s: list, anchor_s: list) -> dict:
    steps = steps_per_call(args)
    return {
        **summary,
        "ours_s": ours_s,
        "purejaxrl_s": anchor_s,
        "ours_env_steps_per_second": steps / statistics.median(ours_s),
        "purejaxrl_env_steps_per_second": steps / statistics.median(anchor_s),
    }


REPO = Path(__file__).resolve().parents[2]
# One thread of XLA's per process: each side has its core to itself.
ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def simultaneous(args: argparse.Namespace) -> dict:
    """`--simultaneous`: purerl and PureJaxRL each in its own process pinned to one core, called
    at the same moment args.simultaneous times, so that whatever slows the machine slows both;
    then again with their cores swapped. Each pair of calls gives one ratio."""
    cores = sorted(os.sched_getaffinity(0))[:2]
    ours_command = [sys.executable, "-m", "experiments.benchmarks.speed", "--serve"]
    ours_command += [*geometry_flags(args), "--num-updates", str(args.num_updates)]
    ours_command += ["--seeds", str(args.seeds)]
    ours_command += ["--fresh-starts", args.fresh_starts, "--substeps", args.substeps]
    ours_command += ["--reset-to-first-state"] if args.reset_to_first_state else []
    ours_command += ["--mask-time-limits"] if args.mask_time_limits else []
    env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {ONE_THREAD}"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    anchor_env = {**anchor_environment(args), "XLA_FLAGS": env["XLA_FLAGS"]}
    ours_s, anchor_s, by_cores = [], [], {}
    for ours_core, anchor_core in (cores, cores[::-1]):
        with (
            serving.Server("purerl", ours_command, env, ours_core) as ours,
            serving.Server(
                "PureJaxRL anchor", anchor_command(args), anchor_env, anchor_core
            ) as anchor,
        ):
            times = []
            for _ in range(args.simultaneous):
                ours.ask()
                anchor.ask()
                times.append((ours.answer(), anchor.answer()))
        mine, theirs = map(list, zip(*times, strict=True))
        summary = paired_summary(mine, theirs)
        by_cores[f"purerl on {ours_core}, PureJaxRL on {anchor_core}"] = summary["geometric_mean"]
        ours_s, anchor_s = ours_s + mine, anchor_s + theirs
    result = with_speeds(args, paired_summary(ours_s, anchor_s), ours_s, anchor_s)
    return {**result, "geometric_mean_by_cores": by_cores, "xla_flags": ONE_THREAD}


def serve_ours(args: argparse.Namespace, key: jax.Array) -> None:
    """`--serve`: purerl's side of --simultaneous (serving.serve on stdin and stdout)."""
    out = serving.claim_stdout()
    call, _ = ours_call(args, key)
    with out:
        serving.serve(call, {"side": "purerl"}, sys.stdin, out)


def parser() -> argparse.ArgumentParser:
    """speed's command line; its defaults are also the settings other benchmarks give
    `purejaxrl_config` (`settings`)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_geometry(p)
    p.add_argument("--num-updates", type=int, default=20)
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="both sides train this many seeds at once under jax.vmap, as PureJaxRL's README "
        "does; steps/s count all of them (the breakdown times one seed)",
    )
    p.add_argument("--rounds", type=int, default=3)
    add_purejaxrl(p)
    p.add_argument("--skip-anchor", action="store_true")
    p.add_argument("--no-reward-normalization", action="store_true")
    p.add_argument(
        "--mask-time-limits",
        action="store_true",
        help="purerl does not bootstrap at time limits (bootstrap_on_timeout=False), so it "
        "values no final observation there, as PureJaxRL, which ends the episode there",
    )
    p.add_argument("--no-breakdown", action="store_true")
    p.add_argument(
        "--reset-to-first-state",
        action="store_true",
        help="purerl restarts finished environments from their first state, as PureJaxRL's "
        "brax wrapper does (env.reset_to_first_state), instead of fresh resets",
    )
    p.add_argument(
        "--fresh-starts",
        choices=FRESH_STARTS,
        default="auto",
        help="how purerl builds fresh starts (env.fresh_starts; auto: per step on an "
        "accelerator, per unroll on a CPU)",
    )
    p.add_argument(
        "--substeps",
        choices=SUBSTEPS,
        default="auto",
        help="how purerl steps brax's physics substeps (env.substeps; auto: unrolled on an "
        "accelerator, brax's scan on a CPU)",
    )
    p.add_argument(
        "--skip-unchecked",
        action="store_true",
        help="do not also time purerl without the non-finite check (one compile less)",
    )
    p.add_argument(
        "--paired",
        type=int,
        default=0,
        metavar="N",
        help="instead of --rounds: compile each side once and time N pairs of alternate calls",
    )
    p.add_argument(
        "--simultaneous",
        type=int,
        default=0,
        metavar="N",
        help="instead of --rounds: each side single-threaded on a core of its own, N calls at "
        "the same moment on each, then N more with the cores swapped",
    )
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", help="write the results here")
    p.add_argument(
        "--hlo-dir",
        help="write both compiled programs here (purerl.hlo.txt, purejaxrl.hlo.txt) and "
        "their loop structure to hlo_loops.json (see experiments.benchmarks.hlo_loops)",
    )
    return p


def settings(geometry: argparse.Namespace, **values: object) -> argparse.Namespace:
    """speed's settings at `geometry`'s batch geometry and num_updates, with speed's defaults
    for the rest and `values` in place of any of them."""
    flags = [*geometry_flags(geometry), "--num-updates", str(geometry.num_updates)]
    return argparse.Namespace(**{**vars(parser().parse_args(flags)), **values})


def main(argv=None) -> dict:
    p = parser()
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    if not (args.skip_anchor or args.serve or args.purejaxrl_dir):
        p.error("--purejaxrl-dir is required unless --skip-anchor")
    if args.unrolls_per_iteration != 1:
        p.error("--unrolls-per-iteration must be 1: PureJaxRL collects one unroll per update")
    for mode in ("paired", "simultaneous"):
        if getattr(args, mode) and (args.skip_anchor or getattr(args, mode) < 2):
            p.error(f"--{mode} needs PureJaxRL (no --skip-anchor) and at least 2 pairs")
    if args.simultaneous and len(os.sched_getaffinity(0)) < 2:
        p.error("--simultaneous needs two CPU cores")

    key = jax.random.PRNGKey(0)
    if args.serve:
        serve_ours(args, key)
        return {}
    measures = {"paired": lambda: paired(args, key), "simultaneous": lambda: simultaneous(args)}
    for mode, measure in measures.items():
        if getattr(args, mode):
            result = {"config": {k: v for k, v in vars(args).items() if k != "json"}}
            result |= {"jax_version": jax.__version__, mode: measure()}
            write(result, args.json)
            print(json.dumps({k: v for k, v in result[mode].items() if not k.endswith("_s")}))
            return result
    rounds = []
    for index in range(args.rounds):
        row = {"ours": time_ours(args, True, key)}
        if not args.skip_unchecked:
            row["ours_unchecked"] = time_ours(args, False, key)
        if not args.skip_anchor:
            row["purejaxrl"] = time_anchor(args)
        rounds.append(row)
        print(f"round {index}: " + json.dumps(row), file=sys.stderr, flush=True)

    def median(side):
        return statistics.median(r[side]["env_steps_per_second"] for r in rounds)

    env_config = purejaxrl_config(args).env
    result = {
        "config": {k: v for k, v in vars(args).items() if k not in ("json",)},
        "jax_version": jax.__version__,
        # What env.fresh_starts resolved to on this backend.
        "fresh_starts_per_step": fresh_starts_per_step(env_config, jax.default_backend()),
        "unrolled_substeps": unrolled_substeps(env_config, jax.default_backend()),
        "rounds": rounds,
        "ours_env_steps_per_second": median("ours"),
    }
    if not args.skip_unchecked:
        result["ours_unchecked_env_steps_per_second"] = median("ours_unchecked")
    if not args.skip_anchor:
        result["purejaxrl_env_steps_per_second"] = median("purejaxrl")
        result["ratio"] = result["ours_env_steps_per_second"] / median("purejaxrl")
    write(result, args.json)  # first without the breakdown, so a time limit cannot lose it
    if args.hlo_dir:
        names = ["purerl.hlo.txt"] + ([] if args.skip_anchor else ["purejaxrl.hlo.txt"])
        programs = [str(Path(args.hlo_dir) / name) for name in names]
        trees = hlo_loops.main([*programs, "--json", str(Path(args.hlo_dir) / "hlo_loops.json")])
        result["hlo_loops"] = {Path(path).name: tree for path, tree in trees.items()}
        write(result, args.json)
    if not args.no_breakdown:
        result["breakdown_s_per_iteration"] = breakdown(args, key)
        write(result, args.json)
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=1))
    return result


def write(result: dict, path: str | None) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(Path(path), json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
