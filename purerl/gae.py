"""Advantage estimation: GAE with terminations and truncations kept apart, and the values it
bootstraps from."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct


def compute_gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminations: jax.Array,
    dones: jax.Array,
    discount: float,
    gae_lambda: float,
    masked_truncations: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Advantages and value targets for a time-major trajectory, all arrays (T, N).

    values[t] = V(obs_t); next_values[t] = V(obs reached by step t, before any reset).
    terminations[t] = 1 when step t ended the episode in a terminal state (no bootstrap);
    dones[t] = 1 when step t ended the episode for any reason (termination or time limit), which
    stops the advantage recursion. On truncation the TD error still bootstraps from
    next_values[t], the value of the true final observation.

    `masked_truncations` (T, N), if given, marks time-limit steps to leave out instead of
    bootstrapping there (Brax's trainer without bootstrap_on_timeout): their TD error, and so
    their advantage, is zero and their return is their own value.

    Returns (advantages, returns) with returns = advantages + values.
    """
    deltas = rewards + discount * (1.0 - terminations) * next_values - values
    if masked_truncations is not None:
        deltas = deltas * (1.0 - masked_truncations)
    continues = discount * gae_lambda * (1.0 - dones)

    def backward(advantage, step):
        delta, cont = step
        advantage = delta + cont * advantage
        return advantage, advantage

    # Two trips of half the steps each: on a GPU a loop costs its body's launches per trip
    # (docs/BENCHMARKS.md), and the chain of one unrolled half fuses into a few kernels. Fully
    # unrolled, it fuses into the code around it, differently in the CLI's chunked program and
    # the one-program run, which then round it differently (tests/test_loop.py).
    _, advantages = jax.lax.scan(
        backward,
        jnp.zeros_like(deltas[0]),
        (deltas, continues),
        reverse=True,
        unroll=-(-deltas.shape[0] // 2),
    )
    return advantages, advantages + values


def one_step_lambda_advantages(
    advantages: jax.Array, dones: jax.Array, discount: float, gae_lambda: float
) -> jax.Array:
    """r_t + discount * G_{t+1} - V(s_t) from GAE advantages A (T, N), G the lambda-return.

    This is the policy-gradient advantage of Brax's trainer (V-trace's with unit importance
    weights): it weighs the TD errors after step t by discount^k * lambda^(k-1) instead of GAE's
    (discount * lambda)^k. Since G_{t+1} = V(s_{t+1}) + A_{t+1}, it equals
    A_t + discount * (1 - lambda) * A_{t+1} within an episode, and A_t where step t ended one.
    """
    following = jnp.concatenate([advantages[1:], jnp.zeros_like(advantages[:1])])
    return advantages + discount * (1.0 - gae_lambda) * (1.0 - dones) * following


@struct.dataclass
class NextObservations:
    """The observations a value function must see, beyond a trajectory's own (T, N) `obs`, to
    bootstrap every step: within an episode the next observation is obs[t + 1]; only the last
    step and steps that hit the time limit (whose final observation was replaced by a reset)
    need more.

    last (N, obs): the observation reached by step T - 1.
    truncated (K, N, obs): each environment's final observation at its k-th time-limit
      truncation among steps 0 .. T - 2 (K is the most that fit, see `num_truncation_slots`).
    truncated_step (K, N) int32: the step of that truncation, -1 where there was none.
    """

    last: jax.Array
    truncated: jax.Array
    truncated_step: jax.Array

    @classmethod
    def from_trajectory(
        cls, final_obs: jax.Array, truncation: jax.Array, num_slots: int
    ) -> NextObservations:
        """final_obs (T, N, obs): the observation each step reached (before any reset);
        truncation (T, N): 1 where that step hit the time limit."""
        truncated = truncation[:-1] > 0  # (T - 1, N)
        rank = jnp.cumsum(truncated, axis=0) - 1  # which truncation of its env a step is
        steps, slots = [], []
        for slot in range(num_slots):
            hit = truncated & (rank == slot)
            step = jnp.where(hit.any(0), jnp.argmax(hit, axis=0), -1)
            index = jnp.maximum(step, 0)[None, :, None]
            slots.append(jnp.take_along_axis(final_obs[:-1], index, axis=0)[0])
            steps.append(step)
        shape = (0,) + final_obs.shape[1:]
        return cls(
            last=final_obs[-1],
            truncated=jnp.stack(slots) if slots else jnp.zeros(shape, final_obs.dtype),
            truncated_step=(
                jnp.stack(steps).astype(jnp.int32)
                if steps
                else jnp.zeros((0, final_obs.shape[1]), jnp.int32)
            ),
        )


def num_truncation_slots(unroll_length: int, episode_length: int) -> int:
    """The most time-limit truncations one environment can hit in steps 0 .. T - 2 of an
    unroll of T steps: consecutive ones are at least episode_length steps apart."""
    return 0 if unroll_length < 2 else (unroll_length - 2) // episode_length + 1


def in_passes(
    fn: Callable[[jax.Array], jax.Array], x: jax.Array, max_rows: int | None = None
) -> jax.Array:
    """fn(x) for a time-major x (T, N, ...), computed in passes over consecutive time steps of
    at most max_rows rows (at least one step) each, so fn's intermediates (a network's hidden
    activations, T x N x width) exist for one pass at a time; None, or a batch that fits: one
    pass. fn must treat rows independently."""
    steps, columns = x.shape[:2]
    per_pass = steps if max_rows is None else max(1, max_rows // columns)
    if per_pass >= steps:
        return fn(x)
    return jax.lax.map(fn, x, batch_size=per_pass)


def values_and_next_values(
    value_fn: Callable[[jax.Array], jax.Array],
    obs: jax.Array,
    next_obs: NextObservations,
    max_rows: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """(V(obs_t), V(observation step t reached)), both (T, N), with one pass over the T x N
    observations plus N per truncation slot and N for the last step, instead of a second
    T x N pass over every next observation. At steps that terminated, next values are those
    of the reset observation; GAE never uses them there. `max_rows` splits the pass over obs
    (`in_passes`)."""
    values = in_passes(value_fn, obs, max_rows)
    last = value_fn(next_obs.last)
    next_values = jnp.concatenate([values[1:], last[None]])
    if next_obs.truncated.shape[0]:
        truncated = value_fn(next_obs.truncated)  # (K, N)
        step = jnp.arange(obs.shape[0])[:, None]
        for slot in range(truncated.shape[0]):
            here = step == next_obs.truncated_step[slot][None]
            next_values = jnp.where(here, truncated[slot][None], next_values)
    return values, next_values
