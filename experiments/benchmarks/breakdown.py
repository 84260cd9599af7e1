"""``--breakdown``: where an iteration's time goes, finer than ours / simulator / update.

Each component is compiled alone, scanned ``n`` times like the others and timed by the same
harness (seconds per iteration unless named otherwise):

- ``collect``: one iteration's rollout with the policy (inference, sampling, env steps);
- the env step without auto-reset (episodes run on past their end; the physics costs the same);
- a forced reset of every env at every step: what the auto-reset branch costs when it fires;
- the update's part before SGD: normaliser update, value recompute, GAE;
- the XLA matmul ceiling of this machine at the value network's layer shape (GFLOP/s);
- one deterministic evaluation (``num_eval_envs`` envs until all finish, seconds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from experiments.benchmarks.iteration import random_action_run
from experiments.benchmarks.timing import Timer, dense_chain

if TYPE_CHECKING:
    from purerl import Trainer

# Episode bookkeeping the auto-reset wrapper adds to the inner env's state info.
_AUTO_RESET_INFO = ("reset_key", "final_obs", "last_episode_return", "last_episode_length")


def bench_breakdown(
    trainer: Trainer, n: int, timer: Timer, key: jax.Array, state: Any, trajectory: Any
) -> dict:
    """Finer components, each scanned n times like the others (seconds per iteration)."""
    out: dict = {}
    env, train = trainer.env, trainer.config.train
    unroll = train.unroll_length * train.unrolls_per_iteration

    # collect: policy inference + sampling + env step (what one iteration's rollout costs).
    def collect_run(env_state: Any, key: jax.Array) -> tuple[Any, jax.Array]:
        def body(es: Any, k: jax.Array) -> tuple[Any, jax.Array]:
            es, traj, _ = trainer.collect(state.agent, es, k)
            return es, traj.reward.sum()

        return jax.lax.scan(body, env_state, jax.random.split(key, n))

    r = timer.time_calls(
        jax.jit(collect_run),
        lambda i, prev: (state.env if prev is None else prev[0], jax.random.fold_in(key, 100 + i)),
        "breakdown: collect (policy + env)",
    )
    out["collect_per_iteration_s"] = r["time_s"] / n

    # env step without the auto-reset: vmap(EpisodeTracker.step) only.
    inner = env.env

    def inner_step(s: Any, action: jax.Array) -> Any:
        new = jax.vmap(inner.step)(s, action)
        # brax steps return weak types; keep the scan carry's types fixed
        return jax.tree.map(lambda x, old: x.astype(old.dtype), new, s)

    noreset_run = random_action_run(inner_step, train.num_envs, env.action_size, unroll, n)
    info = {k: v for k, v in state.env.info.items() if k not in _AUTO_RESET_INFO}
    env_inner0 = state.env.replace(info=info)
    r = timer.time_calls(
        jax.jit(noreset_run),
        lambda i, prev: (env_inner0 if prev is None else prev[0], jax.random.fold_in(key, 200 + i)),
        "breakdown: env step without auto-reset",
    )
    out["env_step_no_reset_per_iteration_s"] = r["time_s"] / n

    # reset of every env (what the lax.cond branch costs when it fires), unroll_length times.
    def reset_run(env_state: Any) -> tuple[Any, jax.Array]:
        def body(es: Any, _: None) -> tuple[Any, jax.Array]:
            def step(s: Any, _: None) -> tuple[Any, jax.Array]:
                s = s.replace(done=jnp.ones_like(s.done))
                s = env._reset_finished(s)
                return s, s.obs.sum()

            es, o = jax.lax.scan(step, es, None, length=unroll)
            return es, o.sum()

        return jax.lax.scan(body, env_state, None, length=n)

    r = timer.time_calls(
        jax.jit(reset_run),
        lambda i, prev: (
            state.env
            if prev is None
            else jax.tree.map(lambda new, old: new.astype(old.dtype), prev[0], state.env),
        ),
        "breakdown: forced reset of all envs",
    )
    out["reset_all_envs_per_iteration_s"] = r["time_s"] / n

    # update pre-SGD: normaliser update + value recompute on obs and next_obs + GAE.
    agent = trainer.agent

    def prep(agent_state: Any, traj: Any) -> jax.Array:
        _, batch = agent.prepare_batch(agent_state, traj)
        return batch.advantage.sum() + batch.value_target.sum() + batch.obs.sum()

    def prep_run(agent_state: Any, trajectory: Any) -> tuple[jax.Array, None]:
        def body(c: jax.Array, _: None) -> tuple[jax.Array, None]:
            # Perturb the trajectory so the loop body is not hoisted out of the scan.
            eps = c * 0.0
            traj = trajectory.replace(
                reward=trajectory.reward + eps,
                obs=trajectory.obs + eps,
                next_obs=trajectory.next_obs + eps,
            )
            return c + prep(agent_state, traj) * 1e-12, None

        return jax.lax.scan(body, jnp.zeros(()), None, length=n)

    r = timer.time_calls(
        jax.jit(prep_run),
        lambda i, prev: (state.agent, trajectory),
        "breakdown: update pre-SGD (normaliser + values + GAE)",
    )
    out["update_prep_per_iteration_s"] = r["time_s"] / n

    # Matmul ceiling of this machine under XLA: a chain of (minibatch, 256) @ (256, 256) dense
    # layers (the value network's hidden layer shape), in GFLOP/s.
    width = max(agent.config.value_hidden_sizes)
    rows = train.steps_per_iteration // agent.num_minibatches
    gemm, gemm_args, flops = dense_chain(key, rows, width, layers=1000)
    r = timer.time_calls(
        gemm,
        lambda i, prev: gemm_args,
        f"breakdown: GEMM ceiling ({rows}x{width} @ {width}x{width})",
    )
    out["gemm_gflops_per_s"] = flops / r["time_s"] / 1e9

    # one deterministic evaluation (num_eval_envs envs until all finish).
    r = timer.time_calls(
        jax.jit(trainer.evaluate), lambda i, prev: (state,), "breakdown: one evaluation"
    )
    out["evaluate_s"] = r["time_s"]
    out["eval_envs"] = train.num_eval_envs
    return out
