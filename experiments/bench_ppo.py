"""PPO throughput benchmark: purerl vs Brax's own PPO trainer, plus a cost breakdown.

Run (one benchmark at a time -- parallel runs pollute each other's timings)::

    python -m experiments.bench_ppo --env inverted_pendulum --backend spring
    python -m experiments.bench_ppo --env ant --backend spring
    python -m experiments.bench_ppo --env inverted_pendulum --backend generalized

Side by side, on the same environment, batch geometry (num_envs x unroll_length per
iteration, num_minibatches, num_epochs) and network sizes (Brax's defaults: policy
(32,)*4, value (256,)*5, swish; discount 0.97, reward scale 1, observation
normalisation on), it measures:

1. ``ours``: purerl training, ``jax.jit(trainer.run_iterations, static_argnums=1)``
   called with ``n`` iterations.  The first call compiles (and runs); the
   following call(s) are timed with ``block_until_ready``.  Steps per call =
   ``n * num_envs * unroll_length``.  No evaluation inside.
2. ``brax``: Brax's own ``ppo.train`` in the separate ``.bench-venv``
   (``experiments/bench_brax_anchor.py``, jax 0.8.0) with the same arguments.
   Its ``train_only_env_steps_per_second`` (Brax's own ``training/walltime``,
   no evals, no compiles) is used for the ratio; ``env_steps_per_second``
   (evals included) is reported too.  Brax gets ``num_evals`` (default 5)
   epochs of ``ceil(n / 2)`` iterations each, so its compile-free window (the
   last two epochs) covers about ``n`` iterations, like ours.
3. ``simulator``: the same batched auto-reset env (``trainer.env.step``) with
   uniform random actions in [-1, 1], ``lax.scan`` over ``unroll_length``, scanned
   ``n`` times -- the raw cost of the env steps one iteration consumes.
4. ``update``: ``trainer.agent.update`` on one fixed collected trajectory,
   scanned ``n`` times; time per update (GAE + normaliser + epochs x minibatches).

``overhead_fraction = 1 - (simulator + update) / ours`` per iteration: the share
of our iteration not explained by stepping the physics and doing SGD (policy
inference and sampling during the rollout, scan plumbing, ...).

``--breakdown`` adds finer components (each timed the same way): ``collect``
(rollout with the policy), the env step without auto-reset, a forced reset of
every env, the update's pre-SGD part (normaliser + value recompute + GAE), and
one evaluation.

Results go to ``runs/bench/<env>_<backend>_<time>.json`` and a markdown table is
printed.  All timings exclude compilation: every jitted function is called once
to compile (and warm up) before the timed call(s); Brax's anchor excludes its
compiles with a ``jax.monitoring`` listener (see its docstring).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import time

import jax
import jax.numpy as jnp

from purerl import Config, EnvConfig, PPOConfig, Trainer, TrainConfig

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_ITERATIONS = {"ant": 10}  # everything else: 50


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in text.split(",") if s.strip())


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="inverted_pendulum")
    p.add_argument("--backend", default="spring")
    p.add_argument("--num-envs", type=int, default=1024)
    p.add_argument("--unroll-length", type=int, default=10)
    p.add_argument("--num-minibatches", type=int, default=8)
    p.add_argument("--num-epochs", type=int, default=4)
    p.add_argument("--iterations", type=int, default=None,
                   help="iterations per timed call (default: 10 for ant, 50 otherwise)")
    p.add_argument("--repeats", type=int, default=2,
                   help="timed calls per measurement after the warm-up; the median is reported")
    p.add_argument("--episode-length", type=int, default=1000)
    p.add_argument("--policy-hidden-sizes", default="32,32,32,32")
    p.add_argument("--value-hidden-sizes", default="256,256,256,256,256")
    p.add_argument("--activation", default="swish")
    p.add_argument("--discount", type=float, default=0.97)
    p.add_argument("--reward-scale", type=float, default=1.0)
    p.add_argument("--learning-rate", type=float, default=3e-4)
    p.add_argument("--entropy-cost", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-brax", action="store_true", help="do not run Brax's PPO anchor")
    p.add_argument("--brax-num-evals", type=int, default=5,
                   help=">= 4 so Brax's anchor gets a compile-free window")
    p.add_argument("--brax-num-eval-envs", type=int, default=128)
    p.add_argument("--brax-python", default=None,
                   help="python of the anchor venv (default: ensure_anchor_venv())")
    p.add_argument("--breakdown", action="store_true",
                   help="also time collect / env step without reset / reset / GAE prep / eval")
    p.add_argument("--out", default=None, help="JSON path (default runs/bench/<env>_<backend>_<t>.json)")
    args = p.parse_args(argv)
    if args.iterations is None:
        args.iterations = DEFAULT_ITERATIONS.get(args.env, 50)
    if args.num_envs % args.num_minibatches:
        p.error("--num-envs must be divisible by --num-minibatches (Brax's batch_size)")
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
            total_env_steps=n * args.num_envs * args.unroll_length,
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


def time_calls(fn, make_args, repeats: int, name: str) -> dict:
    """Calls fn(*make_args(i)) once to compile/warm up, then `repeats` timed calls.

    `make_args(i)` gives the arguments of call i (0 = warm-up); the outputs are blocked on.
    Returns the warm-up (compile + one run) time and the timed wall times (median first).
    """
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*make_args(0, None)))
    warmup = time.perf_counter() - t0
    times = []
    for i in range(1, repeats + 1):
        call_args = make_args(i, out)
        jax.block_until_ready(call_args)
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn(*call_args))
        times.append(time.perf_counter() - t0)
    median = sorted(times)[len(times) // 2] if len(times) % 2 else \
        sum(sorted(times)[len(times) // 2 - 1: len(times) // 2 + 1]) / 2
    _log(f"{name}: warm-up {warmup:.2f}s, timed {['%.3f' % t for t in times]}")
    return {"warmup_s": round(warmup, 4), "times_s": [round(t, 4) for t in times],
            "time_s": median}


# --------------------------------------------------------------------------- ours


def bench_ours(trainer: Trainer, n: int, repeats: int, key: jax.Array) -> dict:
    run = jax.jit(trainer.run_iterations, static_argnums=1)
    state0 = trainer.init(key)

    def make_args(i, prev):
        # Keep training from where the previous call stopped (as a real run would).
        return (state0 if prev is None else prev[0], n)

    r = time_calls(run, make_args, repeats, "ours (run_iterations)")
    steps = n * trainer.config.train.steps_per_iteration
    r.update(env_steps=steps, env_steps_per_second=steps / r["time_s"],
             time_per_iteration_s=r["time_s"] / n)
    return r


# ---------------------------------------------------------------------- simulator


def bench_simulator(trainer: Trainer, n: int, repeats: int, key: jax.Array) -> dict:
    env = trainer.env
    unroll = trainer.config.train.unroll_length
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

    run = jax.jit(run)
    reset_key, key = jax.random.split(key)
    env_state0 = jax.jit(env.reset)(reset_key)

    def make_args(i, prev):
        return (env_state0 if prev is None else prev[0], jax.random.fold_in(key, i))

    r = time_calls(run, make_args, repeats, "simulator (random actions)")
    steps = n * trainer.config.train.steps_per_iteration
    r.update(env_steps=steps, env_steps_per_second=steps / r["time_s"],
             time_per_iteration_s=r["time_s"] / n)
    return r


# ------------------------------------------------------------------------- update


def _fixed_trajectory(trainer: Trainer, key: jax.Array):
    state = trainer.init(key)
    _, trajectory, _ = jax.jit(trainer.collect)(state.agent, state.env, jax.random.fold_in(key, 1))
    return state, jax.block_until_ready(trajectory)


def bench_update(trainer: Trainer, n: int, repeats: int, key: jax.Array, state, trajectory) -> dict:
    agent = trainer.agent

    # The trajectory is an argument (not a closed-over constant XLA could fold).
    def run(agent_state, trajectory, key):
        def body(s, k):
            s, metrics = agent.update(s, trajectory, k)
            return s, metrics["loss/total"]

        return jax.lax.scan(body, agent_state, jax.random.split(key, n))

    run = jax.jit(run)

    def make_args(i, prev):
        return (state.agent if prev is None else prev[0], trajectory, jax.random.fold_in(key, i))

    r = time_calls(run, make_args, repeats, "update (fixed trajectory)")
    r.update(time_per_update_s=r["time_s"] / n)
    return r


# ---------------------------------------------------------------------- breakdown


def bench_breakdown(trainer: Trainer, n: int, repeats: int, key: jax.Array, state,
                    trajectory) -> dict:
    """Finer components, each scanned n times like the others (seconds per iteration)."""
    from purerl.gae import compute_gae
    from purerl.normalize import normalize, update_statistics

    out = {}
    env = trainer.env
    unroll = trainer.config.train.unroll_length
    num_envs = trainer.config.train.num_envs

    # collect: policy inference + sampling + env step (what one iteration's rollout costs).
    def collect_run(env_state, key):
        def body(es, k):
            es, traj, _ = trainer.collect(state.agent, es, k)
            return es, traj.reward.sum()

        return jax.lax.scan(body, env_state, jax.random.split(key, n))

    r = time_calls(jax.jit(collect_run),
                   lambda i, prev: (state.env if prev is None else prev[0],
                                    jax.random.fold_in(key, 100 + i)),
                   repeats, "breakdown: collect (policy + env)")
    out["collect_per_iteration_s"] = r["time_s"] / n

    # env step without the auto-reset: vmap(EpisodeWrapper.step) only (episodes run on past
    # their end; the physics cost per step is the same).
    inner = trainer.env.env
    inner_keys = [k for k in state.env.info if k not in
                  ("reset_key", "final_obs", "last_episode_return", "last_episode_length")]

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

    r = time_calls(jax.jit(noreset_run),
                   lambda i, prev: (env_inner0 if prev is None else prev[0],
                                    jax.random.fold_in(key, 200 + i)),
                   repeats, "breakdown: env step without auto-reset")
    out["env_step_no_reset_per_iteration_s"] = r["time_s"] / n

    # reset of every env (what the lax.cond branch costs when it fires), unroll_length times.
    def reset_run(env_state, key):
        def body(es, k):
            def step(s, _):
                s = s.replace(done=jnp.ones_like(s.done))
                s = env._reset_finished(s)
                return s, s.obs.sum()

            es, o = jax.lax.scan(step, es, None, length=unroll)
            return es, o.sum()

        return jax.lax.scan(body, env_state, None, length=n)

    r = time_calls(jax.jit(reset_run),
                   lambda i, prev: (state.env if prev is None else
                                    jax.tree.map(lambda new, old: new.astype(old.dtype),
                                                 prev[0], state.env),
                                    key),
                   repeats, "breakdown: forced reset of all envs")
    out["reset_all_envs_per_iteration_s"] = r["time_s"] / n

    # update pre-SGD: normaliser update + value recompute on obs and next_obs + GAE.
    agent = trainer.agent
    cfg = agent.config

    def prep(agent_state, traj):
        normalizer = update_statistics(agent_state.normalizer, traj.obs)
        obs = normalize(normalizer, traj.obs)
        values = agent.value.apply(agent_state.params["value"], obs)
        next_values = agent.value.apply(agent_state.params["value"],
                                        normalize(normalizer, traj.next_obs))
        dones = jnp.maximum(traj.termination, traj.truncation)
        adv, targets = compute_gae(traj.reward * cfg.reward_scale, values, next_values,
                                   traj.termination, dones, cfg.discount, cfg.gae_lambda)
        return adv.sum() + targets.sum() + obs.sum()

    def prep_run(agent_state, key):
        def body(c, k):
            # Perturb the trajectory so the loop body is not hoisted out of the scan.
            eps = c * 0.0
            traj = trajectory.replace(reward=trajectory.reward + eps, obs=trajectory.obs + eps,
                                      next_obs=trajectory.next_obs + eps)
            return c + prep(agent_state, traj) * 1e-12, None

        return jax.lax.scan(body, jnp.zeros(()), None, length=n)

    r = time_calls(jax.jit(prep_run), lambda i, prev: (state.agent, key), repeats,
                   "breakdown: update pre-SGD (normaliser + values + GAE)")
    out["update_prep_per_iteration_s"] = r["time_s"] / n

    # one deterministic evaluation (num_eval_envs envs until all finish).
    r = time_calls(jax.jit(trainer.evaluate), lambda i, prev: (state,), repeats,
                   "breakdown: one evaluation")
    out["evaluate_s"] = r["time_s"]
    out["eval_env_steps"] = trainer.config.train.num_eval_envs  # x episode length (max)
    return out


# --------------------------------------------------------------------------- brax


def bench_brax(args: argparse.Namespace) -> dict:
    if args.brax_python:
        python = args.brax_python
    else:
        from experiments.bench_anchor_venv import ensure_anchor_venv

        python = ensure_anchor_venv()
    spi = args.num_envs * args.unroll_length
    per_epoch = max(1, math.ceil(args.iterations / 2))
    # Brax: num_training_steps_per_epoch = ceil(total / ((num_evals - 1) * spi)).
    total = (args.brax_num_evals - 1) * per_epoch * spi
    cmd = [
        python, os.path.join(REPO_ROOT, "experiments", "bench_brax_anchor.py"),
        "--env", args.env, "--backend", args.backend,
        "--num-envs", str(args.num_envs), "--unroll-length", str(args.unroll_length),
        "--num-minibatches", str(args.num_minibatches), "--num-epochs", str(args.num_epochs),
        "--total-env-steps", str(total), "--episode-length", str(args.episode_length),
        "--policy-hidden-sizes", args.policy_hidden_sizes,
        "--value-hidden-sizes", args.value_hidden_sizes,
        "--learning-rate", str(args.learning_rate), "--discount", str(args.discount),
        "--entropy-cost", str(args.entropy_cost), "--reward-scaling", str(args.reward_scale),
        "--normalize-observations", "--num-evals", str(args.brax_num_evals),
        "--num-eval-envs", str(args.brax_num_eval_envs), "--seed", str(args.seed),
    ]
    _log("brax anchor: " + " ".join(cmd[1:]))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise RuntimeError(f"brax anchor failed with exit code {proc.returncode}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("{")]
    result = json.loads(lines[-1])
    result["subprocess_wall_s"] = round(wall, 2)
    result["iterations_per_epoch"] = per_epoch
    result["command"] = " ".join(cmd)
    _log(f"brax anchor: train-only {result['train_only_env_steps_per_second']} steps/s, "
         f"with evals {result['env_steps_per_second']} steps/s, clean={result['clean_window']}, "
         f"wall {wall:.1f}s")
    return result


# ------------------------------------------------------------------------- report


def _fmt_rate(x):
    return "n/a" if x is None else f"{x:,.0f}"


def _fmt_ms(x):
    return "n/a" if x is None else f"{1e3 * x:.1f} ms"


def markdown_table(result: dict) -> str:
    rows = result["summary"]
    g = result["geometry"]
    head = (f"**{g['env']} ({g['backend']})**, {g['num_envs']} envs x unroll {g['unroll_length']}"
            f" = {g['steps_per_iteration']} steps/iteration, {g['num_minibatches']} minibatches,"
            f" {g['num_epochs']} epochs, {g['iterations']} iterations per timed call")
    lines = [head, "", "| metric | value |", "|---|---|"]
    lines += [
        f"| ours: PPO training env-steps/s | {_fmt_rate(rows['ours_steps_per_s'])} |",
        f"| brax PPO env-steps/s, train-only | {_fmt_rate(rows['brax_train_only_steps_per_s'])} |",
        f"| brax PPO env-steps/s, incl. evals | {_fmt_rate(rows['brax_steps_per_s_with_evals'])} |",
        f"| ratio ours / brax (train-only) | "
        f"{'n/a' if rows['ratio_ours_over_brax'] is None else '%.2fx' % rows['ratio_ours_over_brax']} |",
        f"| raw simulator env-steps/s (random actions) | {_fmt_rate(rows['simulator_steps_per_s'])} |",
        f"| ours: time per iteration | {_fmt_ms(rows['ours_time_per_iteration_s'])} |",
        f"| simulator time per iteration | {_fmt_ms(rows['simulator_time_per_iteration_s'])} |",
        f"| SGD update time (per iteration) | {_fmt_ms(rows['update_time_per_iteration_s'])} |",
        f"| overhead fraction 1 - (sim + update) / ours | {rows['overhead_fraction']:.1%} |",
    ]
    b = result.get("breakdown")
    if b:
        lines += [
            f"| breakdown: collect (policy + env) per iteration | {_fmt_ms(b['collect_per_iteration_s'])} |",
            f"| breakdown: env step w/o auto-reset per iteration | {_fmt_ms(b['env_step_no_reset_per_iteration_s'])} |",
            f"| breakdown: reset of all envs x unroll per iteration | {_fmt_ms(b['reset_all_envs_per_iteration_s'])} |",
            f"| breakdown: update pre-SGD (normaliser+values+GAE) | {_fmt_ms(b['update_prep_per_iteration_s'])} |",
            f"| breakdown: one evaluation ({b['eval_env_steps']} envs) | {_fmt_ms(b['evaluate_s'])} |",
        ]
    return "\n".join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    n = args.iterations
    config = make_config(args)
    trainer = Trainer(config)
    key = jax.random.PRNGKey(args.seed)
    _log(f"{args.env}/{args.backend}: {n} iterations x {config.train.steps_per_iteration} steps; "
         f"jax {jax.__version__} on {jax.default_backend()}")

    t_start = time.perf_counter()
    ours = bench_ours(trainer, n, args.repeats, key)
    sim = bench_simulator(trainer, n, args.repeats, jax.random.fold_in(key, 1))
    state, trajectory = _fixed_trajectory(trainer, jax.random.fold_in(key, 2))
    upd = bench_update(trainer, n, args.repeats, jax.random.fold_in(key, 3), state, trajectory)
    breakdown = (bench_breakdown(trainer, n, args.repeats, jax.random.fold_in(key, 4), state,
                                 trajectory) if args.breakdown else None)
    ours_wall = time.perf_counter() - t_start
    brax = None if args.skip_brax else bench_brax(args)

    t_it = ours["time_per_iteration_s"]
    t_sim = sim["time_per_iteration_s"]
    t_upd = upd["time_per_update_s"]
    brax_train = None if brax is None else brax.get("train_only_env_steps_per_second")
    summary = {
        "ours_steps_per_s": ours["env_steps_per_second"],
        "brax_train_only_steps_per_s": brax_train,
        "brax_steps_per_s_with_evals": None if brax is None else brax.get("env_steps_per_second"),
        "ratio_ours_over_brax": (ours["env_steps_per_second"] / brax_train) if brax_train else None,
        "simulator_steps_per_s": sim["env_steps_per_second"],
        "ours_time_per_iteration_s": t_it,
        "simulator_time_per_iteration_s": t_sim,
        "update_time_per_iteration_s": t_upd,
        "overhead_fraction": 1.0 - (t_sim + t_upd) / t_it,
    }
    result = {
        "summary": summary,
        "geometry": {
            "env": args.env, "backend": args.backend, "num_envs": args.num_envs,
            "unroll_length": args.unroll_length, "num_minibatches": args.num_minibatches,
            "num_epochs": args.num_epochs, "iterations": n,
            "steps_per_iteration": config.train.steps_per_iteration,
            "minibatch_size": config.train.steps_per_iteration // args.num_minibatches,
            "episode_length": args.episode_length,
        },
        "config": dataclasses.asdict(config),
        "ours": ours, "simulator": sim, "update": upd, "breakdown": breakdown, "brax": brax,
        "ours_wall_s": round(ours_wall, 2),
        "machine": {
            "platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "jax": jax.__version__, "jax_backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()],
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
        },
        "argv": sys.argv[1:] if argv is None else list(argv),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    out = args.out or os.path.join(
        REPO_ROOT, "runs", "bench", f"{args.env}_{args.backend}_{time.strftime('%Y%m%d-%H%M%S')}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=2, default=float)
    _log(f"wrote {out}")
    print(json.dumps({"summary": summary, "geometry": result["geometry"], "json": out},
                     default=float))
    print()
    print(markdown_table(result))
    return result


if __name__ == "__main__":
    main()
