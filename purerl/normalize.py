"""Running mean and variance of observations, updated inside the jitted program."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class RunningStatistics:
    """Count, mean and sum of squared deviations (M2) of everything seen so far."""

    count: jax.Array  # () float32
    mean: jax.Array  # (size,)
    sum_squared_deviations: jax.Array  # (size,)

    @property
    def variance(self) -> jax.Array:
        return jnp.where(self.count > 1, self.sum_squared_deviations / self.count, 1.0)


def init_statistics(size: int) -> RunningStatistics:
    """Statistics of nothing: normalisation is the identity until the first update."""
    return RunningStatistics(jnp.zeros(()), jnp.zeros((size,)), jnp.zeros((size,)))


def update_statistics(stats: RunningStatistics, batch: jax.Array) -> RunningStatistics:
    """Merges a batch (..., size) into the statistics (Chan et al.'s parallel update)."""
    batch = batch.reshape(-1, batch.shape[-1])
    batch_count = jnp.asarray(batch.shape[0], jnp.float32)
    batch_mean = batch.mean(0)
    batch_m2 = ((batch - batch_mean) ** 2).sum(0)
    count = stats.count + batch_count
    delta = batch_mean - stats.mean
    mean = stats.mean + delta * batch_count / count
    m2 = stats.sum_squared_deviations + batch_m2 + delta**2 * stats.count * batch_count / count
    return RunningStatistics(count, mean, m2)


def normalize(stats: RunningStatistics, obs: jax.Array, clip: float | None = 10.0) -> jax.Array:
    """(obs - mean) / std, clipped to [-clip, clip] unless clip is None; obs (..., size)."""
    normalized = (obs - stats.mean) / jnp.sqrt(stats.variance + 1e-8)
    return normalized if clip is None else jnp.clip(normalized, -clip, clip)
