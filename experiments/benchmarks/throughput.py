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
the best reading, is repeated (up to 3 times) after waiting for the machine to be
quiet.  ``--rounds R`` repeats the whole ours/simulator/update/brax sequence;
the report gives medians over rounds, and the ratio is the median of the
per-round ratios (ours and brax measured minutes apart).

Results go to ``runs/bench/<env>_<backend>_<time>.json`` (or ``--out``) and a
markdown table is printed.  All timings exclude compilation: every jitted
function is called once to compile (and warm up) before the timed call(s) and
later rounds reuse the compiled executables; Brax's anchor excludes its
compiles with a ``jax.monitoring`` listener (see its docstring).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp

from experiments.benchmarks.args import add_geometry, geometry_flags
from purerl import Config, EnvConfig, PPOConfig, TrainConfig, Trainer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_ITERATIONS = {"ant": 6}  # everything else: 20


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in text.split(",") if s.strip())


def parse_args(argv=None) -> argparse.Namespace:
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
            normalize_observations=True,
            seed=args.seed,
        ),
        agent=PPOConfig(
            learning_rate=args.learning_rate,
            num_epochs=args.num_epochs,
            num_minibatches=args.num_minibatches,
            discount=args.discount,
            reward_scale=args.reward_scale,
            entropy_coef=args.entropy_cost,
            policy_hidden_sizes=_sizes(args.policy_hidden_sizes),
            value_hidden_sizes=_sizes(args.value_hidden_sizes),
            activation=args.activation,
        ),
    )


def _log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _system_busy_s() -> float | None:
    """CPU seconds all processes on this machine have spent busy (from /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = [float(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class CpuMonitor:
    """Measures CPU time used by *other* processes during a timed section.

    Timings on this 2-core machine are only meaningful if nothing else runs; `foreign_cpu_s`
    is (machine busy time - our own CPU time) over the section, ~0 when the machine is quiet.
    """

    def __enter__(self):
        self.busy0, self.own0 = _system_busy_s(), _own_cpu_s()
        return self

    def __exit__(self, *exc):
        busy1, own1 = _system_busy_s(), _own_cpu_s()
        self.own_cpu_s = own1 - self.own0
        self.foreign_cpu_s = (
            None
            if busy1 is None or self.busy0 is None
            else max(0.0, (busy1 - self.busy0) - self.own_cpu_s)
        )
        return False


_CANARY: dict = {}
SLOW_SHARE = 0.85  # a canary reading below this share of the best one marks a slow machine


def machine_canary(rows: int = 1280, width: int = 256, layers: int = 200) -> float:
    """GFLOP/s of a short (~0.2 s) dense-layer chain: a probe of this machine's current speed.

    The shared 2-core VM's speed drifts by tens of percent for seconds to minutes even when no
    other process is visible (host contention); timings taken then are not comparable.
    """
    if "fn" not in _CANARY:

        def chain(x, w):
            def body(h, _):
                return jax.nn.swish(h @ w) * 0.5, None

            return jax.lax.scan(body, x, None, length=layers)[0]

        key = jax.random.PRNGKey(0)
        x = jax.random.normal(key, (rows, width)) * 0.1
        w = jax.random.normal(jax.random.fold_in(key, 1), (width, width)) / jnp.sqrt(width)
        _CANARY.update(fn=jax.jit(chain), args=(x, w), best=0.0)
        jax.block_until_ready(_CANARY["fn"](x, w))
    t0 = time.perf_counter()
    jax.block_until_ready(_CANARY["fn"](*_CANARY["args"]))
    gflops = 2.0 * rows * width * width * layers / (time.perf_counter() - t0) / 1e9
    _CANARY["best"] = max(_CANARY["best"], gflops)
    return gflops


def _slow(*canaries: float) -> bool:
    return min(canaries) < SLOW_SHARE * _CANARY["best"]


# A timed section counts as polluted when other processes used more than this share of the
# machine's CPU capacity during it; it is then repeated once the machine is quiet again.
POLLUTED_SHARE = 0.05
MAX_RETRIES = 3


def _polluted(mon: CpuMonitor, wall_s: float) -> bool:
    cores = os.cpu_count() or 1
    # /proc/stat counts in 10 ms ticks: never call a section polluted below 0.1 CPU-s.
    limit = max(POLLUTED_SHARE * wall_s * cores, 0.1)
    return mon.foreign_cpu_s is not None and mon.foreign_cpu_s > limit


def wait_for_quiet(max_wait_s: float = 3600.0, window_s: float = 1.0) -> float:
    """Blocks until other processes use < POLLUTED_SHARE of the CPUs over a window.

    Returns the seconds waited. Gives up (with a warning) after max_wait_s.
    """
    t0 = time.perf_counter()
    warned = False
    while True:
        with CpuMonitor() as mon:
            time.sleep(window_s)
        if not _polluted(mon, window_s):
            return time.perf_counter() - t0
        if not warned:
            _log(
                f"other processes are using the CPU ({mon.foreign_cpu_s:.1f} CPU-s in "
                f"{window_s:.0f}s); waiting for the machine to be quiet"
            )
            warned = True
        if time.perf_counter() - t0 > max_wait_s:
            _log("WARNING: machine never became quiet; timing anyway")
            return time.perf_counter() - t0


def time_calls(fn, make_args, repeats: int, name: str, warmup: bool = True) -> dict:
    """Calls fn(*make_args(i)) once to compile/warm up, then `repeats` timed calls.

    `make_args(i)` gives the arguments of call i (0 = warm-up); the outputs are blocked on.
    Returns the warm-up (compile + one run) time, the timed wall times and their median.
    """
    out, warmup_s = None, None
    if warmup:
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn(*make_args(0, None)))
        warmup_s = time.perf_counter() - t0
    times, foreign, own, canaries, retried = [], [], [], [], 0
    for i in range(1, repeats + 1):
        for attempt in range(MAX_RETRIES + 1):
            wait_for_quiet()
            call_args = make_args(i, out)
            jax.block_until_ready(call_args)
            before = machine_canary()
            with CpuMonitor() as mon:
                t0 = time.perf_counter()
                result = jax.block_until_ready(fn(*call_args))
                wall = time.perf_counter() - t0
            after = machine_canary()
            polluted, slow = _polluted(mon, wall), _slow(before, after)
            if not (polluted or slow) or attempt == MAX_RETRIES:
                break
            retried += 1
            why = (
                f"other processes used {mon.foreign_cpu_s:.1f} CPU-s"
                if polluted
                else f"machine canary {before:.0f}/{after:.0f} GFLOP/s (best {_CANARY['best']:.0f})"
            )
            _log(f"{name}: {why} during a {wall:.1f}s call; repeating it")
            time.sleep(5.0)
        out = result
        times.append(wall)
        foreign.append(mon.foreign_cpu_s)
        own.append(mon.own_cpu_s)
        canaries.append((round(before), round(after)))
    _log(
        f"{name}: warm-up {'-' if warmup_s is None else f'{warmup_s:.2f}s'},"
        f" timed {[f'{t:.3f}' for t in times]}"
        f" (own CPU {[f'{c:.2f}' for c in own]} s, other processes' CPU "
        f"{['n/a' if c is None else f'{c:.2f}' for c in foreign]} s)"
    )
    return {
        "warmup_s": None if warmup_s is None else round(warmup_s, 4),
        "times_s": [round(t, 4) for t in times],
        "time_s": statistics.median(times),
        "min_time_s": min(times),
        "own_cpu_s": [round(c, 3) for c in own],
        "foreign_cpu_s": [None if c is None else round(c, 3) for c in foreign],
        "canary_gflops_before_after": canaries,
        "polluted_calls_repeated": retried,
    }


# --------------------------------------------------------------------------- ours


# Every bench_* function keeps its jitted program (and fixed inputs) in `jits`, so later rounds
# reuse the compiled executable and skip the warm-up call.


def bench_ours(trainer: Trainer, n: int, repeats: int, key: jax.Array, jits: dict) -> dict:
    warmup = "ours" not in jits
    if warmup:
        jits["ours"] = jax.jit(trainer.run_iterations, static_argnums=1)
        jits["ours_state0"] = trainer.init(key)
    run, state0 = jits["ours"], jits["ours_state0"]

    def make_args(i, prev):
        # Keep training from where the previous call stopped (as a real run would).
        return (state0 if prev is None else prev[0], n)

    r = time_calls(run, make_args, repeats, "ours (run_iterations)", warmup)
    steps = n * trainer.config.train.steps_per_iteration
    r.update(
        env_steps=steps,
        env_steps_per_second=steps / r["time_s"],
        time_per_iteration_s=r["time_s"] / n,
    )
    return r


# ---------------------------------------------------------------------- simulator


def bench_simulator(trainer: Trainer, n: int, repeats: int, key: jax.Array, jits: dict) -> dict:
    env = trainer.env
    unroll = trainer.config.train.unroll_length * trainer.config.train.unrolls_per_iteration
    num_envs = trainer.config.train.num_envs
    action_size = env.action_size

    def unroll_fn(env_state, key):
        def step(state, k):
            action = jax.random.uniform(k, (num_envs, action_size), minval=-1.0, maxval=1.0)
            state = env.step(state, action)
            return state, state.reward.sum()

        state, rewards = jax.lax.scan(step, env_state, jax.random.split(key, unroll))
        return state, rewards.sum()

    def run(env_state, key):
        return jax.lax.scan(unroll_fn, env_state, jax.random.split(key, n))

    warmup = "simulator" not in jits
    if warmup:
        jits["simulator"] = jax.jit(run)
        jits["simulator_state0"] = jax.jit(env.reset)(jax.random.fold_in(key, 12345))
    run, env_state0 = jits["simulator"], jits["simulator_state0"]

    def make_args(i, prev):
        return (env_state0 if prev is None else prev[0], jax.random.fold_in(key, i))

    r = time_calls(run, make_args, repeats, "simulator (random actions)", warmup)
    steps = n * trainer.config.train.steps_per_iteration
    r.update(
        env_steps=steps,
        env_steps_per_second=steps / r["time_s"],
        time_per_iteration_s=r["time_s"] / n,
    )
    return r


# ------------------------------------------------------------------------- update


def _fixed_trajectory(trainer: Trainer, key: jax.Array):
    state = trainer.init(key)
    _, trajectory, _ = jax.jit(trainer.collect)(state.agent, state.env, jax.random.fold_in(key, 1))
    return state, jax.block_until_ready(trajectory)


def bench_update(
    trainer: Trainer, n: int, repeats: int, key: jax.Array, state, trajectory, jits: dict
) -> dict:
    agent = trainer.agent

    # The trajectory is an argument (not a closed-over constant XLA could fold).
    def run(agent_state, trajectory, key):
        def body(s, k):
            s, metrics = agent.update(s, trajectory, k)
            return s, metrics["loss/total"]

        return jax.lax.scan(body, agent_state, jax.random.split(key, n))

    warmup = "update" not in jits
    run = jits.setdefault("update", jax.jit(run))

    def make_args(i, prev):
        return (state.agent if prev is None else prev[0], trajectory, jax.random.fold_in(key, i))

    r = time_calls(run, make_args, repeats, "update (fixed trajectory)", warmup)
    r.update(time_per_update_s=r["time_s"] / n)
    return r


# ---------------------------------------------------------------------- breakdown


def bench_breakdown(
    trainer: Trainer, n: int, repeats: int, key: jax.Array, state, trajectory
) -> dict:
    """Finer components, each scanned n times like the others (seconds per iteration)."""

    out = {}
    env = trainer.env
    unroll = trainer.config.train.unroll_length * trainer.config.train.unrolls_per_iteration
    num_envs = trainer.config.train.num_envs

    # collect: policy inference + sampling + env step (what one iteration's rollout costs).
    def collect_run(env_state, key):
        def body(es, k):
            es, traj, _ = trainer.collect(state.agent, es, k)
            return es, traj.reward.sum()

        return jax.lax.scan(body, env_state, jax.random.split(key, n))

    r = time_calls(
        jax.jit(collect_run),
        lambda i, prev: (state.env if prev is None else prev[0], jax.random.fold_in(key, 100 + i)),
        repeats,
        "breakdown: collect (policy + env)",
    )
    out["collect_per_iteration_s"] = r["time_s"] / n

    # env step without the auto-reset: vmap(EpisodeTracker.step) only (episodes run on past
    # their end; the physics cost per step is the same).
    inner = trainer.env.env
    inner_keys = [
        k
        for k in state.env.info
        if k not in ("reset_key", "final_obs", "last_episode_return", "last_episode_length")
    ]

    def noreset_run(env_state, key):
        def unroll_fn(es, k):
            def step(s, kk):
                a = jax.random.uniform(kk, (num_envs, env.action_size), minval=-1.0, maxval=1.0)
                new = jax.vmap(inner.step)(s, a)
                # brax steps return weak types; keep the scan carry's types fixed
                s = jax.tree.map(lambda x, old: x.astype(old.dtype), new, s)
                return s, s.reward.sum()

            es, rew = jax.lax.scan(step, es, jax.random.split(k, unroll))
            return es, rew.sum()

        return jax.lax.scan(unroll_fn, env_state, jax.random.split(key, n))

    env_inner0 = state.env.replace(info={k: state.env.info[k] for k in inner_keys})

    r = time_calls(
        jax.jit(noreset_run),
        lambda i, prev: (env_inner0 if prev is None else prev[0], jax.random.fold_in(key, 200 + i)),
        repeats,
        "breakdown: env step without auto-reset",
    )
    out["env_step_no_reset_per_iteration_s"] = r["time_s"] / n

    # reset of every env (what the lax.cond branch costs when it fires), unroll_length times.
    def reset_run(env_state):
        def body(es, _):
            def step(s, _):
                s = s.replace(done=jnp.ones_like(s.done))
                s = env._reset_finished(s)
                return s, s.obs.sum()

            es, o = jax.lax.scan(step, es, None, length=unroll)
            return es, o.sum()

        return jax.lax.scan(body, env_state, None, length=n)

    r = time_calls(
        jax.jit(reset_run),
        lambda i, prev: (
            state.env
            if prev is None
            else jax.tree.map(lambda new, old: new.astype(old.dtype), prev[0], state.env),
        ),
        repeats,
        "breakdown: forced reset of all envs",
    )
    out["reset_all_envs_per_iteration_s"] = r["time_s"] / n

    # update pre-SGD: normaliser update + value recompute on obs and next_obs + GAE.
    agent = trainer.agent
    cfg = agent.config

    def prep(agent_state, traj):
        _, batch = agent.prepare_batch(agent_state, traj)
        return batch.advantage.sum() + batch.value_target.sum() + batch.obs.sum()

    def prep_run(agent_state, trajectory):
        def body(c, _):
            # Perturb the trajectory so the loop body is not hoisted out of the scan.
            eps = c * 0.0
            traj = trajectory.replace(
                reward=trajectory.reward + eps,
                obs=trajectory.obs + eps,
                next_obs=trajectory.next_obs + eps,
            )
            return c + prep(agent_state, traj) * 1e-12, None

        return jax.lax.scan(body, jnp.zeros(()), None, length=n)

    r = time_calls(
        jax.jit(prep_run),
        lambda i, prev: (state.agent, trajectory),
        repeats,
        "breakdown: update pre-SGD (normaliser + values + GAE)",
    )
    out["update_prep_per_iteration_s"] = r["time_s"] / n

    # Matmul ceiling of this machine under XLA: a chain of (minibatch, 256) @ (256, 256) dense
    # layers (the value network's hidden layer shape), in GFLOP/s.
    width = max(agent.config.value_hidden_sizes)
    rows = trainer.config.train.steps_per_iteration // cfg.num_minibatches
    layers = 1000

    def gemm_run(x, w):
        def body(h, _):
            return jax.nn.swish(h @ w) * 0.5, None

        return jax.lax.scan(body, x, None, length=layers)[0]

    x0 = jax.random.normal(key, (rows, width)) * 0.1
    w0 = jax.random.normal(jax.random.fold_in(key, 1), (width, width)) / jnp.sqrt(width)
    r = time_calls(
        jax.jit(gemm_run),
        lambda i, prev: (x0, w0),
        repeats,
        f"breakdown: GEMM ceiling ({rows}x{width} @ {width}x{width})",
    )
    out["gemm_gflops_per_s"] = 2.0 * rows * width * width * layers / r["time_s"] / 1e9

    # one deterministic evaluation (num_eval_envs envs until all finish).
    r = time_calls(
        jax.jit(trainer.evaluate), lambda i, prev: (state,), repeats, "breakdown: one evaluation"
    )
    out["evaluate_s"] = r["time_s"]
    out["eval_envs"] = trainer.config.train.num_eval_envs
    return out


# -------------------------------------------------------------------------- flops


def _mlp_macs(sizes: list[int]) -> int:
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def analytic_flops(trainer: Trainer) -> dict:
    """Dense-layer FLOPs of one iteration (matmuls only; backward counted as 2x forward)."""
    spec, cfg = trainer.agent.spec, trainer.agent.config
    out_size = spec.num_actions if spec.discrete else spec.action_size
    policy = _mlp_macs([spec.observation_size, *cfg.policy_hidden_sizes, out_size])
    value = _mlp_macs([spec.observation_size, *cfg.value_hidden_sizes, 1])
    train = trainer.config.train
    samples = train.steps_per_iteration
    collect = 2 * samples * policy
    # V(obs), then V of the last step's and each time limit's final observations.
    slots = trainer.agent.truncation_slots
    prep = 2 * (samples + (1 + slots) * train.num_envs) * value
    sgd = cfg.num_epochs * samples * 3 * 2 * (policy + value)  # forward + backward
    return {
        "policy_macs_per_sample": policy,
        "value_macs_per_sample": value,
        "collect_flops": collect,
        "update_prep_flops": prep,
        "update_sgd_flops": sgd,
        "update_flops": prep + sgd,
        "iteration_flops": collect + prep + sgd,
    }


# --------------------------------------------------------------------------- brax


def bench_brax(args: argparse.Namespace) -> dict:
    if args.brax_python:
        python = args.brax_python
    else:
        from experiments.benchmarks.anchor_venv import ensure_anchor_venv

        python = ensure_anchor_venv()
    spi = args.num_envs * args.unroll_length * args.unrolls_per_iteration
    per_epoch = max(1, math.ceil(args.iterations / 2))
    # Brax: num_training_steps_per_epoch = ceil(total / ((num_evals - 1) * spi)).
    total = (args.brax_num_evals - 1) * per_epoch * spi
    cmd = [
        python,
        os.path.join(REPO_ROOT, "experiments", "benchmarks", "brax_anchor.py"),
        *geometry_flags(args),
        "--total-env-steps",
        str(total),
        "--episode-length",
        str(args.episode_length),
        "--policy-hidden-sizes",
        args.policy_hidden_sizes,
        "--value-hidden-sizes",
        args.value_hidden_sizes,
        "--learning-rate",
        str(args.learning_rate),
        "--discount",
        str(args.discount),
        "--entropy-cost",
        str(args.entropy_cost),
        "--reward-scaling",
        str(args.reward_scale),
        "--normalize-observations",
        "--num-evals",
        str(args.brax_num_evals),
        "--num-eval-envs",
        str(args.brax_num_eval_envs),
        "--seed",
        str(args.seed),
    ]
    _log("brax anchor: " + " ".join(cmd[1:]))
    retried = 0
    for attempt in range(MAX_RETRIES + 1):
        wait_for_quiet()
        before = machine_canary()
        with CpuMonitor() as mon:  # our CPU includes the finished child's
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - t0
        after = machine_canary()
        polluted, slow = _polluted(mon, wall), _slow(before, after)
        if proc.returncode != 0 or not (polluted or slow) or attempt == MAX_RETRIES:
            break
        retried += 1
        why = (
            f"other processes used {mon.foreign_cpu_s:.1f} CPU-s"
            if polluted
            else f"machine canary {before:.0f}/{after:.0f} GFLOP/s (best {_CANARY['best']:.0f})"
        )
        _log(f"brax anchor: {why} during the {wall:.0f}s run; repeating it")
        time.sleep(5.0)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise RuntimeError(f"brax anchor failed with exit code {proc.returncode}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("{")]
    result = json.loads(lines[-1])
    result["subprocess_wall_s"] = round(wall, 2)
    result["own_cpu_s"] = round(mon.own_cpu_s, 2)
    result["foreign_cpu_s"] = None if mon.foreign_cpu_s is None else round(mon.foreign_cpu_s, 2)
    result["polluted_runs_repeated"] = retried
    result["canary_gflops_before_after"] = (round(before), round(after))
    result["iterations_per_epoch"] = per_epoch
    result["command"] = " ".join(cmd)
    _log(
        f"brax anchor: train-only {result['train_only_env_steps_per_second']} steps/s, "
        f"with evals {result['env_steps_per_second']} steps/s, clean={result['clean_window']}, "
        f"wall {wall:.1f}s"
    )
    return result


# ------------------------------------------------------------------------- report


def round_summary(ours: dict, sim: dict, upd: dict, brax: dict | None, flops: dict) -> dict:
    t_it = ours["time_per_iteration_s"]
    t_sim = sim["time_per_iteration_s"]
    t_upd = upd["time_per_update_s"]
    brax_train = None if brax is None else brax.get("train_only_env_steps_per_second")
    return {
        "ours_steps_per_s": ours["env_steps_per_second"],
        "brax_train_only_steps_per_s": brax_train,
        "brax_steps_per_s_with_evals": None if brax is None else brax.get("env_steps_per_second"),
        "ratio_ours_over_brax": (ours["env_steps_per_second"] / brax_train) if brax_train else None,
        "simulator_steps_per_s": sim["env_steps_per_second"],
        "ours_time_per_iteration_s": t_it,
        "simulator_time_per_iteration_s": t_sim,
        "update_time_per_iteration_s": t_upd,
        "overhead_fraction": 1.0 - (t_sim + t_upd) / t_it,
        "update_gflops_per_s": flops["update_flops"] / t_upd / 1e9,
    }


def combine_rounds(summaries: list[dict]) -> dict:
    """Median of every field over rounds; the per-round ratios are kept as a list."""
    out = {}
    for k in summaries[0]:
        values = [sm[k] for sm in summaries if sm[k] is not None]
        out[k] = statistics.median(values) if values else None
    t_it = out["ours_time_per_iteration_s"]
    t_sim = out["simulator_time_per_iteration_s"]
    t_upd = out["update_time_per_iteration_s"]
    out["overhead_fraction"] = 1.0 - (t_sim + t_upd) / t_it  # of the median times
    out["ratio_per_round"] = [sm["ratio_ours_over_brax"] for sm in summaries]
    out["rounds"] = len(summaries)
    return out


def _fmt_rate(x):
    return "n/a" if x is None else f"{x:,.0f}"


def _fmt_ms(x):
    return "n/a" if x is None else f"{1e3 * x:.1f} ms"


def markdown_table(result: dict) -> str:
    r = result["summary"]
    g = result["geometry"]
    head = (
        f"**{g['env']} ({g['backend']})**, {g['num_envs']} envs x {g['unrolls_per_iteration']}"
        f" unroll(s) of {g['unroll_length']}"
        f" = {g['steps_per_iteration']} steps/iteration, {g['num_minibatches']} minibatches,"
        f" {g['num_epochs']} epochs, {g['iterations']} iterations per timed call,"
        f" {r['rounds']} round(s) (medians)"
    )
    ratio = r["ratio_ours_over_brax"]
    rows = [
        ("ours: PPO training env-steps/s", _fmt_rate(r["ours_steps_per_s"])),
        ("brax PPO env-steps/s, train-only", _fmt_rate(r["brax_train_only_steps_per_s"])),
        ("brax PPO env-steps/s, incl. evals", _fmt_rate(r["brax_steps_per_s_with_evals"])),
        ("ratio ours / brax (train-only)", "n/a" if ratio is None else f"{ratio:.2f}x"),
        (
            "ratio per round",
            ", ".join("n/a" if x is None else f"{x:.2f}" for x in r["ratio_per_round"]),
        ),
        ("raw simulator env-steps/s (random actions)", _fmt_rate(r["simulator_steps_per_s"])),
        ("ours: time per iteration", _fmt_ms(r["ours_time_per_iteration_s"])),
        ("simulator time per iteration", _fmt_ms(r["simulator_time_per_iteration_s"])),
        ("SGD update time (per iteration)", _fmt_ms(r["update_time_per_iteration_s"])),
        ("overhead fraction 1 - (sim + update) / ours", f"{r['overhead_fraction']:.1%}"),
        (
            "update: dense-layer GFLOP per iteration (analytic)",
            f"{result['flops']['update_flops'] / 1e9:.1f}",
        ),
        ("update: achieved GFLOP/s", f"{r['update_gflops_per_s']:.0f}"),
        (
            "machine canary GFLOP/s (min-max over the run)",
            "{:.0f}-{:.0f}".format(*r["canary_gflops_per_s_min_max"]),
        ),
    ]
    b = result.get("breakdown")
    if b:
        rows += [
            (
                "breakdown: collect (policy + env) per iteration",
                _fmt_ms(b["collect_per_iteration_s"]),
            ),
            (
                "breakdown: env step w/o auto-reset per iteration",
                _fmt_ms(b["env_step_no_reset_per_iteration_s"]),
            ),
            (
                "breakdown: reset of all envs x unroll per iteration",
                _fmt_ms(b["reset_all_envs_per_iteration_s"]),
            ),
            (
                "breakdown: update pre-SGD (normaliser+values+GAE)",
                _fmt_ms(b["update_prep_per_iteration_s"]),
            ),
            (f"breakdown: one evaluation ({b['eval_envs']} envs)", _fmt_ms(b["evaluate_s"])),
            (
                "breakdown: GEMM ceiling GFLOP/s (XLA, this machine)",
                f"{b['gemm_gflops_per_s']:.0f}",
            ),
        ]
    lines = [head, "", "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def main(argv=None) -> dict:
    global MAX_RETRIES
    args = parse_args(argv)
    MAX_RETRIES = args.max_retries
    n = args.iterations
    config = make_config(args)
    trainer = Trainer(config)
    key = jax.random.PRNGKey(args.seed)
    _log(
        f"{args.env}/{args.backend}: {n} iterations x {config.train.steps_per_iteration} steps; "
        f"jax {jax.__version__} on {jax.default_backend()}"
    )

    t_start = time.perf_counter()
    jits: dict = {}
    flops = analytic_flops(trainer)
    state, trajectory = _fixed_trajectory(trainer, jax.random.fold_in(key, 2))
    rounds, breakdown = [], None
    for r in range(args.rounds):
        if args.rounds > 1:
            _log(f"round {r + 1}/{args.rounds}")
        canary = [machine_canary()]
        ours = bench_ours(trainer, n, args.repeats, key, jits)
        sim = bench_simulator(trainer, n, args.repeats, jax.random.fold_in(key, 1), jits)
        upd = bench_update(
            trainer, n, args.repeats, jax.random.fold_in(key, 3 + r), state, trajectory, jits
        )
        if args.breakdown and r == 0:
            breakdown = bench_breakdown(
                trainer, n, args.repeats, jax.random.fold_in(key, 4), state, trajectory
            )
        canary.append(machine_canary())
        brax = None
        if not args.skip_brax:
            brax = bench_brax(args)
            canary.append(machine_canary())
        _log(f"machine canary GFLOP/s this round: {[round(c) for c in canary]}")
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
    _log(f"wrote {out}")
    print(
        json.dumps({"summary": summary, "geometry": result["geometry"], "json": out}, default=float)
    )
    print()
    print(markdown_table(result))
    return result


if __name__ == "__main__":
    main()
