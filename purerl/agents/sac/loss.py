"""SAC's critic pieces: pure functions of arrays (the actor and temperature losses are the
shared max-entropy ones in purerl/losses/max_entropy.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def soft_target(
    reward: jax.Array,
    termination: jax.Array,
    next_q: jax.Array,
    next_log_prob: jax.Array,
    alpha: jax.Array | float,
    discount: float,
) -> jax.Array:
    """The soft Bellman target r + discount * (1 - termination) * (min_i Q'_i(s', a') - alpha
    log pi(a' | s')), with a' ~ pi(s') -> (B,), gradient stopped.

    reward, termination, next_log_prob (B,); next_q (critics, B): the target critics' values
    of (s', a'). A time-limit truncation is not a termination: it bootstraps.
    """
    soft_value = next_q.min(axis=0) - alpha * next_log_prob
    return jax.lax.stop_gradient(reward + discount * (1.0 - termination) * soft_value)


def critic_loss(q: jax.Array, target: jax.Array) -> jax.Array:
    """0.5 * mean over critics and batch of (Q_i(s, a) - target)^2; q (critics, B), target
    (B,) -> scalar."""
    return 0.5 * jnp.mean((q - target[None, :]) ** 2)


def polyak(target: object, online: object, tau: float) -> object:
    """Target-network update (1 - tau) * target + tau * online, leaf by leaf."""
    return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)
