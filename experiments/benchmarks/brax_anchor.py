"""Brax anchor for the PPO benchmark: run Brax's *own* PPO trainer, print one JSON line.

This script is standalone: it imports only brax, jax, the standard library and its siblings
``args`` (standard library only) and ``replicated_shim``, and runs in the separate venv made by
``experiments/benchmarks/anchor_venv.py``
(``jax==0.8.0 jaxlib==0.8.0 brax==0.14.2``; brax 0.14.2's PPO trainer calls
``jax.device_put_replicated``, which is gone in jax 0.10).  Example::

    PY=$(python3 experiments/benchmarks/anchor_venv.py)
    $PY experiments/benchmarks/brax_anchor.py --env inverted_pendulum --backend generalized \
        --total-env-steps 300000

Geometry.  Brax's ``batch_size`` is the number of *sequences* (each
``unroll_length`` long) per minibatch, and one training step collects
``batch_size * num_minibatches`` sequences.  We set
``batch_size = num_envs * unrolls_per_iteration // num_minibatches`` so that one update
consumes exactly ``num_envs * unroll_length * unrolls_per_iteration`` env steps
(``unrolls_per_iteration`` consecutive unrolls of every env), split into
``num_minibatches`` minibatches and iterated ``num_epochs`` times
(brax: ``num_updates_per_batch``) -- the same geometry as the single-program PPO
this is compared with.

Timing.  Brax calls ``progress_fn`` once at step 0 (after the initial eval, only
when ``num_evals > 1``) and then once after each of ``num_evals - 1`` training
"epochs" (each epoch = one jitted/pmapped scan of several training steps,
followed by an eval).  Compilation is NOT confined to before the first
progress_fn call:

* the step-0 call happens before the training epoch is compiled at all;
* with brax 0.14.2 + jax 0.8.0 both the training epoch and the eval unroll are
  compiled a SECOND time on their second call (the replicated training state
  fed to the first call has unspecified sharding while the pmap outputs fed
  to the second have NamedSharding; the donated eval state comes back with
  different weak types).  Each recompile costs seconds on CPU.

So "first progress_fn call to last" would include compile.  Instead, a
``jax.monitoring`` listener records every XLA backend compile, and the timed
window starts at the EARLIEST progress_fn call after which no compile longer
than 50 ms happens up to the last progress_fn call (in practice the third
call, i.e. after two training epochs; so use ``--num-evals >= 4``).

* ``compile_and_first_eval_s``: wall time from just before ``ppo.train`` to the
  start of the timed window -- env construction, all compilation, the initial
  eval and the warm-up epochs with their evals (``warmup_env_steps`` steps).
* ``train_time_s``: wall time from the window start to the last progress_fn
  call.  Excludes compile (``compile_s_in_window`` reports the residual tiny
  compiles, normally ~0).  It DOES include Brax's periodic evals (one per
  epoch, each ``num_eval_envs`` envs x ``episode_length`` steps); keep
  ``--num-eval-envs`` small (default 128) so this is a minor cost.
* ``env_steps_per_second`` = (env_steps at last progress - env_steps at window
  start) / ``train_time_s``.
* ``train_only_env_steps_per_second``: the same env steps divided by the
  difference of Brax's own ``training/walltime`` (time inside the training
  epochs only), i.e. also excluding eval time.
* ``clean_window``: false if no compile-free window of >= 1 epoch existed (then
  the last epoch alone is timed, compile included).
* ``curve``: [env_steps, eval/episode_reward] at every progress_fn call.
* ``training``: Brax's training metrics (losses, entropy bonus, KL, policy scale) at every
  progress_fn call after step 0, without the ``training/`` prefix; each is the mean over
  the epoch's training steps, and each step's over its epochs and minibatches.

All incidental output (e.g. mujoco's "Failed to import warp" message, which
goes to *stdout* at import time) is redirected to stderr; stdout carries only
the final JSON line.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time

# Send everything written to fd 1 (Python prints, C-level writes) to stderr;
# keep a private handle on the real stdout for the final JSON line.
sys.stdout.flush()
_REAL_STDOUT_FD = os.dup(1)
os.dup2(2, 1)

# MuJoCo (used by brax.io.mjcf to load the env models) appends warnings such as
# "'settotalmass' is deprecated" to ./MUJOCO_LOG.TXT; keep that out of the repo.
# Nothing below uses relative paths.
import tempfile  # noqa: E402

os.chdir(tempfile.gettempdir())

import jax  # noqa: E402
import jax.monitoring  # noqa: E402
import replicated_shim  # noqa: E402  (a sibling)
from args import add_geometry, hidden_sizes  # noqa: E402  (a sibling: this runs as a script)
from brax import envs  # noqa: E402
from brax.training.agents.ppo import networks as ppo_networks  # noqa: E402
from brax.training.agents.ppo import train as ppo  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_geometry(p, backend="generalized")
    p.add_argument("--total-env-steps", type=int, default=500_000)
    p.add_argument("--episode-length", type=int, default=1000)
    p.add_argument(
        "--hidden-sizes",
        default="32,32,32,32",
        help="comma list used for both policy and value unless overridden",
    )
    p.add_argument("--policy-hidden-sizes", default=None)
    p.add_argument("--value-hidden-sizes", default=None)
    p.add_argument("--learning-rate", type=float, default=3e-4)
    p.add_argument("--discount", type=float, default=0.97)
    p.add_argument("--entropy-cost", type=float, default=1e-2)
    p.add_argument("--reward-scaling", type=float, default=10.0)
    p.add_argument("--normalize-observations", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--clipping-epsilon", type=float, default=0.3)
    p.add_argument("--gae-lambda", type=float, default=0.95)
    p.add_argument(
        "--max-grad-norm", type=float, default=None, help="global-norm clipping (default: none)"
    )
    p.add_argument(
        "--deterministic-eval",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="evaluate the policy's mode (brax's own default is a stochastic evaluation)",
    )
    p.add_argument("--num-evals", type=int, default=5)
    p.add_argument("--num-eval-envs", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if (args.num_envs * args.unrolls_per_iteration) % args.num_minibatches:
        p.error("--num-envs x --unrolls-per-iteration must be divisible by --num-minibatches")
    if args.num_evals < 3:
        p.error("--num-evals must be >= 3 (>= 4 for a compile-free timing window)")
    return args


_BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_SIGNIFICANT_COMPILE_S = 0.05
_compiles: list[tuple[float, float]] = []  # (perf_counter at end, duration s)


# Brax's trainer on jax >= 0.10 (the GPU machine); the report names it (``jax_shim``).
JAX_SHIM = replicated_shim.install()


def _compile_listener(event, duration, **kwargs):
    if event == _BACKEND_COMPILE_EVENT:
        _compiles.append((time.perf_counter(), float(duration)))


jax.monitoring.register_event_duration_secs_listener(_compile_listener)


# Brax's timing entries among its training metrics: not statistics of the update.
_TIMING = ("sps", "walltime")


def training_metrics(metrics: dict) -> dict:
    """The update's statistics among one progress call's metrics, unprefixed."""
    prefix = "training/"
    return {
        name[len(prefix) :]: value
        for name, value in metrics.items()
        if name.startswith(prefix) and name[len(prefix) :] not in _TIMING
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    policy_sizes = hidden_sizes(args.policy_hidden_sizes or args.hidden_sizes)
    value_sizes = hidden_sizes(args.value_hidden_sizes or args.hidden_sizes)

    env = envs.get_environment(args.env, backend=args.backend)
    network_factory = functools.partial(
        ppo_networks.make_ppo_networks,
        policy_hidden_layer_sizes=policy_sizes,
        value_hidden_layer_sizes=value_sizes,
    )

    calls: list[tuple[float, int, dict]] = []  # (wall time, env steps, metrics)

    def progress_fn(step, metrics):
        now = time.perf_counter()
        metrics = {k: float(v) for k, v in metrics.items()}
        calls.append((now, int(step), metrics))
        print(
            f"[anchor] step={int(step)} t={now - t_start:.1f}s "
            f"eval/episode_reward={metrics.get('eval/episode_reward', float('nan')):.2f}",
            file=sys.stderr,
            flush=True,
        )

    t_start = time.perf_counter()
    ppo.train(
        environment=env,
        num_timesteps=args.total_env_steps,
        episode_length=args.episode_length,
        num_envs=args.num_envs,
        unroll_length=args.unroll_length,
        # sequences (of unroll_length) per minibatch
        batch_size=args.num_envs * args.unrolls_per_iteration // args.num_minibatches,
        num_minibatches=args.num_minibatches,
        num_updates_per_batch=args.num_epochs,
        learning_rate=args.learning_rate,
        discounting=args.discount,
        entropy_cost=args.entropy_cost,
        reward_scaling=args.reward_scaling,
        clipping_epsilon=args.clipping_epsilon,
        gae_lambda=args.gae_lambda,
        max_grad_norm=args.max_grad_norm,
        deterministic_eval=args.deterministic_eval,
        normalize_observations=args.normalize_observations,
        network_factory=network_factory,
        num_evals=args.num_evals,
        num_eval_envs=args.num_eval_envs,
        seed=args.seed,
        progress_fn=progress_fn,
    )
    t_end = time.perf_counter()

    # Timed window: from the earliest progress call after which no significant
    # compile happens (up to the last progress call), to the last call.
    t_last = calls[-1][0]

    def compiles_between(ta, tb, min_s=0.0):
        return [d for t, d in _compiles if ta < t <= tb and d > min_s]

    start = len(calls) - 2
    clean = False
    for i in range(len(calls) - 1):
        if not compiles_between(calls[i][0], t_last, _SIGNIFICANT_COMPILE_S):
            start, clean = i, True
            break
    if not clean:
        print(
            "[anchor] WARNING: no compile-free window; timing the last epoch only",
            file=sys.stderr,
            flush=True,
        )
    (t1, s1, m1), (tl, sl, ml) = calls[start], calls[-1]
    train_time = tl - t1
    steps = sl - s1
    train_only = ml.get("training/walltime", float("nan")) - m1.get("training/walltime", 0.0)
    result = {
        "env": args.env,
        "backend": args.backend,
        "num_envs": args.num_envs,
        "unroll_length": args.unroll_length,
        "unrolls_per_iteration": args.unrolls_per_iteration,
        "num_minibatches": args.num_minibatches,
        "num_epochs": args.num_epochs,
        "env_steps": sl,
        "compile_and_first_eval_s": round(t1 - t_start, 3),
        "train_time_s": round(train_time, 3),
        "env_steps_per_second": round(steps / train_time, 1),
        "train_only_env_steps_per_second": round(steps / train_only, 1) if train_only > 0 else None,
        "final_eval_return": ml.get("eval/episode_reward"),
        "curve": [[s, m.get("eval/episode_reward")] for _, s, m in calls],
        "training": [training_metrics(m) for _, s, m in calls if s > 0],
        "timed_env_steps": steps,
        "warmup_env_steps": s1,
        "clean_window": clean,
        "compile_s_in_window": round(sum(compiles_between(t1, tl)), 3),
        "compile_s_total": round(sum(d for _, d in _compiles), 3),
        "total_wall_s": round(t_end - t_start, 3),
        "batch_size": args.num_envs * args.unrolls_per_iteration // args.num_minibatches,
        "policy_hidden_sizes": list(policy_sizes),
        "value_hidden_sizes": list(value_sizes),
        "num_eval_envs": args.num_eval_envs,
        "num_evals": args.num_evals,
        "seed": args.seed,
        "jax_version": jax.__version__,
        "jax_shim": "device_put_replicated" if JAX_SHIM else None,
        "jax_backend": jax.default_backend(),
        "device_count": jax.device_count(),
    }
    with os.fdopen(_REAL_STDOUT_FD, "w") as out:
        out.write(json.dumps(result) + "\n")
    return result


if __name__ == "__main__":
    main()
