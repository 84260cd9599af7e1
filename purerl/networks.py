"""Policy and value networks (flax.linen)."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from purerl.distributions import Categorical, ClippedNormal, TanhNormal

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "swish": nn.swish, "elu": nn.elu}


class MLP(nn.Module):
    """Dense layers with orthogonal init; the last layer has no activation.

    Hidden layers use gain sqrt(2), the output layer `output_gain` (small for policy heads so
    the initial policy is close to uniform). Input (..., in), output (..., output_size).
    """

    hidden_sizes: Sequence[int]
    output_size: int
    activation: str = "tanh"
    output_gain: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden_sizes:
            x = nn.Dense(width, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x)
            x = ACTIVATIONS[self.activation](x)
        init = nn.initializers.orthogonal(self.output_gain)
        return nn.Dense(self.output_size, kernel_init=init)(x)


class ValueNetwork(nn.Module):
    """State value V(obs): (..., obs) -> (...)."""

    hidden_sizes: Sequence[int]
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return MLP(self.hidden_sizes, 1, self.activation)(obs)[..., 0]


class GaussianPolicy(nn.Module):
    """Gaussian policy with a state-independent log standard deviation.

    `squash` picks TanhNormal (True) or ClippedNormal (False). (..., obs) -> distribution over
    (..., action_size).
    """

    hidden_sizes: Sequence[int]
    action_size: int
    activation: str = "tanh"
    squash: bool = True
    init_log_std: float = 0.0

    @nn.compact
    def __call__(self, obs: jax.Array) -> TanhNormal | ClippedNormal:
        loc = MLP(self.hidden_sizes, self.action_size, self.activation, output_gain=0.01)(obs)
        log_std = self.param(
            "log_std", nn.initializers.constant(self.init_log_std), (self.action_size,)
        )
        scale = jnp.broadcast_to(jnp.exp(log_std), loc.shape)
        return (TanhNormal if self.squash else ClippedNormal)(loc, scale)


class CategoricalPolicy(nn.Module):
    """Categorical policy: (..., obs) -> distribution over num_actions."""

    hidden_sizes: Sequence[int]
    num_actions: int
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs: jax.Array) -> Categorical:
        logits = MLP(self.hidden_sizes, self.num_actions, self.activation, output_gain=0.01)(obs)
        return Categorical(logits)
