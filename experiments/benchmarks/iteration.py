"""What one PPO iteration of purerl costs, timed three ways each round:

1. ``ours``: training, ``jax.jit(trainer.run_iterations, static_argnums=1)`` called for ``n``
   iterations, each call continuing from where the previous one stopped;
2. ``simulator``: the same batched auto-reset environment stepped with uniform random
   actions for the iteration's steps, ``n`` times: the physics alone;
3. ``update``: ``trainer.agent.update`` on one fixed collected trajectory, ``n`` times: the
   SGD alone (GAE, normaliser, epochs x minibatches).

Their difference is what the iteration spends on neither (policy inference, sampling, scan
plumbing). Every function keeps its jitted program (and fixed inputs) in ``jits``, so later
rounds reuse the compiled executable and skip the warm-up call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax

from experiments.benchmarks.timing import Timer

if TYPE_CHECKING:
    from purerl import Trainer


def _per_iteration(r: dict, trainer: Trainer, n: int) -> dict:
    """Adds the env steps of a timed call of n iterations and the rates they give."""
    steps = n * trainer.config.train.steps_per_iteration
    r.update(
        env_steps=steps,
        env_steps_per_second=steps / r["time_s"],
        time_per_iteration_s=r["time_s"] / n,
    )
    return r


def random_action_run(
    step: Callable[[Any, jax.Array], Any],
    num_envs: int,
    action_size: int,
    unroll: int,
    n: int,
    num_actions: int | None = None,
) -> Callable[[Any, jax.Array], tuple[Any, jax.Array]]:
    """run(env_state, key): `n` iterations of `unroll` batched steps `step(state, action)`
    with uniform random actions: in [-1, 1]^action_size, or integers in [0, num_actions) for
    a discrete environment; returns the last state and each iteration's summed reward (so no
    step can be optimised away)."""

    def random_actions(k: jax.Array) -> jax.Array:
        if num_actions is not None:
            return jax.random.randint(k, (num_envs,), 0, num_actions)
        return jax.random.uniform(k, (num_envs, action_size), minval=-1.0, maxval=1.0)

    def unroll_fn(env_state: Any, key: jax.Array) -> tuple[Any, jax.Array]:
        def one_step(state: Any, k: jax.Array) -> tuple[Any, jax.Array]:
            state = step(state, random_actions(k))
            return state, state.reward.sum()

        state, rewards = jax.lax.scan(one_step, env_state, jax.random.split(key, unroll))
        return state, rewards.sum()

    def run(env_state: Any, key: jax.Array) -> tuple[Any, jax.Array]:
        return jax.lax.scan(unroll_fn, env_state, jax.random.split(key, n))

    return run


def bench_ours(trainer: Trainer, n: int, timer: Timer, key: jax.Array, jits: dict) -> dict:
    """purerl's training, n iterations per timed call, no evaluation."""
    warmup = "ours" not in jits
    if warmup:
        jits["ours"] = jax.jit(trainer.run_iterations, static_argnums=1)
        jits["ours_state0"] = trainer.init(key)
    run, state0 = jits["ours"], jits["ours_state0"]

    def make_args(i: int, prev: Any) -> tuple:
        # Keep training from where the previous call stopped (as a real run would).
        return (state0 if prev is None else prev[0], n)

    return _per_iteration(
        timer.time_calls(run, make_args, "ours (run_iterations)", warmup), trainer, n
    )


def bench_simulator(trainer: Trainer, n: int, timer: Timer, key: jax.Array, jits: dict) -> dict:
    """The env steps one iteration consumes, with random actions instead of the policy."""
    env, train = trainer.env, trainer.config.train
    warmup = "simulator" not in jits
    if warmup:
        unroll = train.unroll_length * train.unrolls_per_iteration
        run = random_action_run(env.step, train.num_envs, env.action_size, unroll, n)
        jits["simulator"] = jax.jit(run)
        jits["simulator_state0"] = jax.jit(env.reset)(jax.random.fold_in(key, 12345))
    run, env_state0 = jits["simulator"], jits["simulator_state0"]

    def make_args(i: int, prev: Any) -> tuple:
        return (env_state0 if prev is None else prev[0], jax.random.fold_in(key, i))

    return _per_iteration(
        timer.time_calls(run, make_args, "simulator (random actions)", warmup), trainer, n
    )


def fixed_trajectory(trainer: Trainer, key: jax.Array) -> tuple[Any, Any]:
    """A fresh training state and one trajectory collected from it, for the update timings."""
    state = trainer.init(key)
    _, trajectory, _ = jax.jit(trainer.collect)(state.agent, state.env, jax.random.fold_in(key, 1))
    return state, jax.block_until_ready(trajectory)


def bench_update(
    trainer: Trainer,
    n: int,
    timer: Timer,
    key: jax.Array,
    state: Any,
    trajectory: Any,
    jits: dict,
) -> dict:
    """The agent's update on a fixed trajectory, n times per timed call."""
    agent = trainer.agent

    # The trajectory is an argument (not a closed-over constant XLA could fold).
    def run(agent_state: Any, trajectory: Any, key: jax.Array) -> tuple[Any, jax.Array]:
        def body(s: Any, k: jax.Array) -> tuple[Any, jax.Array]:
            s, metrics = agent.update(s, trajectory, k)
            return s, metrics["loss/total"]

        return jax.lax.scan(body, agent_state, jax.random.split(key, n))

    warmup = "update" not in jits
    run = jits.setdefault("update", jax.jit(run))

    def make_args(i: int, prev: Any) -> tuple:
        return (state.agent if prev is None else prev[0], trajectory, jax.random.fold_in(key, i))

    r = timer.time_calls(run, make_args, "update (fixed trajectory)", warmup)
    r.update(time_per_update_s=r["time_s"] / n)
    return r
