"""PPO loss: clipped surrogate, (optionally clipped) value loss and entropy bonus."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct

from purerl.agents.ppo.config import PPOConfig
from purerl.gae import NextObservations, values_and_next_values


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

    Written for a minibatch step that is launched, not computed, on a GPU (docs/BENCHMARKS.md):
    `lax.clamp` and `where` instead of `jnp.clip` and `jnp.minimum`/`maximum`, whose gradients
    split ties (every unclipped sample is one) with divisions of their own, give the same
    gradients here (tests/test_ppo_loss.py) in fewer operations. The five means are taken
    one by one, so that XLA fuses each into a reduction beside it: stacked into one (B, 5)
    reduction they cost two more kernels per minibatch step on the H200 (docs/BENCHMARKS.md).
    """
    advantage = batch.advantage
    if config.normalize_advantages:
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    log_ratio = log_prob - batch.old_log_prob
    ratio = jnp.exp(log_ratio)
    clipped_ratio = jax.lax.clamp(1.0 - config.clip_epsilon, ratio, 1.0 + config.clip_epsilon)
    unclipped_obj, clipped_obj = ratio * advantage, clipped_ratio * advantage
    policy_term = -jnp.where(unclipped_obj <= clipped_obj, unclipped_obj, clipped_obj)

    value_error = (value - batch.value_target) ** 2
    if config.clip_value_loss:
        clipped_value = batch.old_value + jax.lax.clamp(
            -config.clip_epsilon, value - batch.old_value, config.clip_epsilon
        )
        clipped_error = (clipped_value - batch.value_target) ** 2
        value_error = jnp.where(value_error >= clipped_error, value_error, clipped_error)

    policy_loss = policy_term.mean()
    value_loss = (0.5 * value_error).mean()
    entropy = entropy.mean()
    approx_kl = ((ratio - 1.0) - log_ratio).mean()
    clip_fraction = (jnp.abs(ratio - 1.0) > config.clip_epsilon).astype(policy_term.dtype).mean()
    loss = policy_loss + config.value_loss_coef * value_loss - config.entropy_coef * entropy
    metrics = {
        "loss/total": loss,
        "loss/policy": policy_loss,
        "loss/value": value_loss,
        "policy/entropy": entropy,
        "policy/approx_kl": approx_kl,
        "policy/clip_fraction": clip_fraction,
    }
    return loss, metrics


@struct.dataclass
class PPOTrajectoryBatch:
    """Whole environment trajectories, time-major (T, n, ...), for losses that estimate
    advantages themselves (advantage_estimation="per_minibatch").

    obs (T, n, obs) already normalised; raw_action (T, n, ...); next_obs what bootstraps the
    values (see `NextObservations`); reward already scaled; the rest (T, n). old_value is
    the value at collection time (used only by the clipped value loss).
    """

    obs: jax.Array
    raw_action: jax.Array
    old_log_prob: jax.Array
    old_value: jax.Array
    reward: jax.Array
    termination: jax.Array
    truncation: jax.Array
    next_obs: NextObservations

    def env_axes(self) -> PPOTrajectoryBatch:
        """The environment axis of every leaf (a tree of ints of the same structure)."""
        return jax.tree.map(lambda _: 1, self).replace(
            next_obs=NextObservations(last=0, truncated=1, truncated_step=1)
        )


Estimate = Callable[..., tuple[jax.Array, jax.Array]]


def make_ppo_trajectory_loss(
    policy_apply: Callable, value_apply: Callable, estimate: Estimate, config: PPOConfig
) -> Callable[[dict, PPOTrajectoryBatch, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]:
    """Brax's PPO loss: returns loss(params, batch, key) -> (loss, metrics) on a
    PPOTrajectoryBatch, re-estimating advantages and value targets with the value network
    being trained (held constant, as targets).

    `estimate(rewards, values, next_values, termination, truncation)` -> (advantages,
    targets), all (T, n).
    """

    def loss(params: dict, batch: PPOTrajectoryBatch, key: jax.Array):
        value_fn = lambda obs: value_apply(params["value"], obs)  # noqa: E731
        values, next_values = values_and_next_values(value_fn, batch.obs, batch.next_obs)
        advantages, targets = estimate(
            batch.reward,
            jax.lax.stop_gradient(values),
            jax.lax.stop_gradient(next_values),
            batch.termination,
            batch.truncation,
        )
        flat = PPOBatch(
            batch.obs,
            batch.raw_action,
            batch.old_log_prob,
            batch.old_value,
            jax.lax.stop_gradient(advantages),
            jax.lax.stop_gradient(targets),
        )
        flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), flat)
        distribution = policy_apply(params["policy"], flat.obs)
        return ppo_objective(
            distribution.log_prob(flat.raw_action),
            distribution.entropy(key),
            values.reshape(-1),
            flat,
            config,
        )

    return loss


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
