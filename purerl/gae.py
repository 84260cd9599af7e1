"""Generalised advantage estimation with terminations and truncations kept apart."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def compute_gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminations: jax.Array,
    dones: jax.Array,
    discount: float,
    gae_lambda: float,
) -> tuple[jax.Array, jax.Array]:
    """Advantages and value targets for a time-major trajectory, all arrays (T, N).

    values[t] = V(obs_t); next_values[t] = V(obs reached by step t, before any reset).
    terminations[t] = 1 when step t ended the episode in a terminal state (no bootstrap);
    dones[t] = 1 when step t ended the episode for any reason (termination or time limit), which
    stops the advantage recursion. On truncation the TD error still bootstraps from
    next_values[t], the value of the true final observation.

    Returns (advantages, returns) with returns = advantages + values.
    """
    deltas = rewards + discount * (1.0 - terminations) * next_values - values
    continues = discount * gae_lambda * (1.0 - dones)

    def backward(advantage, step):
        delta, cont = step
        advantage = delta + cont * advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(deltas[0]), (deltas, continues), reverse=True
    )
    return advantages, advantages + values
