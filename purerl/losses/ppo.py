"""PPO loss: clipped surrogate, (optionally clipped) value loss and entropy bonus."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct

from purerl.config import PPOConfig


@struct.dataclass
class PPOBatch:
    """A flat batch of B transitions prepared for the PPO loss.

    obs (B, obs) already normalised; raw_action (B, ...) as sampled; the rest (B,).
    """

    obs: jax.Array
    raw_action: jax.Array
    old_log_prob: jax.Array
    old_value: jax.Array
    advantage: jax.Array
    value_target: jax.Array


def ppo_objective(
    log_prob: jax.Array,
    entropy: jax.Array,
    value: jax.Array,
    batch: PPOBatch,
    config: PPOConfig,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The PPO objective from per-sample quantities under the current parameters, all (B,).

    Returns (scalar loss to minimise, metrics).
    """
    advantage = batch.advantage
    if config.normalize_advantages:
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    log_ratio = log_prob - batch.old_log_prob
    ratio = jnp.exp(log_ratio)
    clipped_ratio = jnp.clip(ratio, 1.0 - config.clip_epsilon, 1.0 + config.clip_epsilon)
    policy_loss = -jnp.minimum(ratio * advantage, clipped_ratio * advantage).mean()

    value_error = (value - batch.value_target) ** 2
    if config.clip_value_loss:
        clipped_value = batch.old_value + jnp.clip(
            value - batch.old_value, -config.clip_epsilon, config.clip_epsilon
        )
        value_error = jnp.maximum(value_error, (clipped_value - batch.value_target) ** 2)
    value_loss = 0.5 * value_error.mean()

    entropy = entropy.mean()
    loss = policy_loss + config.value_loss_coef * value_loss - config.entropy_coef * entropy
    metrics = {
        "loss/total": loss,
        "loss/policy": policy_loss,
        "loss/value": value_loss,
        "policy/entropy": entropy,
        "policy/approx_kl": ((ratio - 1.0) - log_ratio).mean(),
        "policy/clip_fraction": (jnp.abs(ratio - 1.0) > config.clip_epsilon).mean(),
    }
    return loss, metrics


def make_ppo_loss(
    policy_apply: Callable, value_apply: Callable, config: PPOConfig
) -> Callable[[dict, PPOBatch, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]:
    """Binds the networks: returns loss(params, batch, key) -> (loss, metrics).

    params = {"policy": ..., "value": ...}; `key` drives the entropy estimate where the
    distribution has no closed-form entropy.
    """

    def loss(params: dict, batch: PPOBatch, key: jax.Array):
        distribution = policy_apply(params["policy"], batch.obs)
        value = value_apply(params["value"], batch.obs)
        return ppo_objective(
            distribution.log_prob(batch.raw_action),
            distribution.entropy(key),
            value,
            batch,
            config,
        )

    return loss
