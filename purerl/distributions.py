"""Action distributions over a raw (pre-squash) action, built on distrax.

The learner stores the raw sample and evaluates log-probabilities of it, never of the squashed
action: inverting tanh near +-1 is numerically unstable.
"""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class DiagonalNormal:
    """Diagonal Gaussian over the raw action. loc, scale: (..., action_size).

    What the policies build is a subclass that maps raw samples into [-1, 1] (`to_action`):
    `ClippedNormal` or `TanhNormal`."""

    loc: jax.Array
    scale: jax.Array

    def _base(self) -> distrax.MultivariateNormalDiag:
        return distrax.MultivariateNormalDiag(self.loc, self.scale)

    def sample(self, key: jax.Array) -> jax.Array:
        return self._base().sample(seed=key)

    def mode(self) -> jax.Array:
        return self.loc

    def log_prob(self, raw: jax.Array) -> jax.Array:
        return self._base().log_prob(raw)

    def entropy(self, key: jax.Array) -> jax.Array:
        del key
        return self._base().entropy()


@struct.dataclass
class ClippedNormal(DiagonalNormal):
    """Diagonal Gaussian whose samples are clipped to [-1, 1] before reaching the environment."""

    def to_action(self, raw: jax.Array) -> jax.Array:
        return jnp.clip(raw, -1.0, 1.0)


def _tanh_log_det(raw: jax.Array) -> jax.Array:
    """log |d tanh(raw) / d raw| summed over the action, shape (...)."""
    return distrax.Tanh().forward_log_det_jacobian(raw).sum(-1)


@struct.dataclass
class TanhNormal(DiagonalNormal):
    """Diagonal Gaussian squashed by tanh into (-1, 1)."""

    def log_prob(self, raw: jax.Array) -> jax.Array:
        """Log-density of the squashed action tanh(raw), shape (...)."""
        return self._base().log_prob(raw) - _tanh_log_det(raw)

    def entropy(self, key: jax.Array) -> jax.Array:
        """One-sample estimate (no closed form exists after the squash), shape (...)."""
        return self._base().entropy() + _tanh_log_det(self.sample(key))

    def to_action(self, raw: jax.Array) -> jax.Array:
        return jnp.tanh(raw)


@struct.dataclass
class Categorical:
    """Categorical over `num_actions` discrete actions. logits: (..., num_actions)."""

    logits: jax.Array

    def _base(self) -> distrax.Categorical:
        return distrax.Categorical(logits=self.logits)

    def sample(self, key: jax.Array) -> jax.Array:
        return self._base().sample(seed=key)

    def mode(self) -> jax.Array:
        return jnp.argmax(self.logits, axis=-1)

    def log_prob(self, raw: jax.Array) -> jax.Array:
        return self._base().log_prob(raw)

    def entropy(self, key: jax.Array) -> jax.Array:
        del key
        return self._base().entropy()

    def to_action(self, raw: jax.Array) -> jax.Array:
        return raw
