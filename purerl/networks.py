"""Policy and value networks (flax.linen)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from purerl.checks import residual_depth_problem
from purerl.distributions import Categorical, ClippedNormal, TanhNormal

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "swish": nn.swish, "elu": nn.elu}


def orthogonal(scale: float) -> nn.initializers.Initializer:
    """`jax.nn.initializers.orthogonal(scale)`, same values, but under vmap the matrices are
    drawn one after another (a lax.map) instead of as one batched QR.

    Why: on CPU, jaxlib runs a batched QR by scheduling pieces on XLA's intra-op thread pool
    and blocking until they finish. When as many batched QRs as the pool has threads run at
    once (a vmapped init of several layers, e.g. a seed sweep on a 2-core machine), every
    thread waits on work only a waiting thread could run: the program hangs forever
    (gdb: jax::ParallelBatchMap -> BlockingCounter::Wait in every tf_XLAEigen thread). An
    unbatched QR runs inline, so mapping one matrix at a time cannot wedge; init runs once.
    """
    base = jax.nn.initializers.orthogonal(scale)

    def init(key, shape, dtype=jnp.float32):
        @jax.custom_batching.custom_vmap
        def draw(key):
            return base(key, shape, dtype)

        @draw.def_vmap
        def draw_batched(axis_size, in_batched, key):
            del axis_size
            return (jax.lax.map(draw, key), True) if in_batched[0] else (draw(key), False)

        return draw(key)

    return init


class MLP(nn.Module):
    """Dense layers; the last layer has no activation. Input (..., in), output (..., out).

    kernel_init "orthogonal" (PureJaxRL, CleanRL): hidden layers with gain sqrt(2), the output
    layer with `output_gain` (small for policy heads, so the initial policy is close to
    uniform). "lecun_uniform" (Brax): every layer, the output one included, lecun-uniform.
    Biases start at zero either way.
    """

    hidden_sizes: Sequence[int]
    output_size: int
    activation: str = "tanh"
    output_gain: float = 1.0
    kernel_init: str = "orthogonal"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.kernel_init == "lecun_uniform":
            hidden = output = nn.initializers.lecun_uniform()
        else:
            hidden = orthogonal(np.sqrt(2))
            output = orthogonal(self.output_gain)
        for width in self.hidden_sizes:
            x = ACTIVATIONS[self.activation](nn.Dense(width, kernel_init=hidden)(x))
        return nn.Dense(self.output_size, kernel_init=output)(x)


@dataclasses.dataclass(frozen=True)
class Body:
    """A network's layers up to and including its output layer, chosen by config.

    kind "mlp": Dense layers of `hidden_sizes` (orthogonal init, see MLP); kind "residual": a
    ResidualTrunk of `depth` and `width` (so a deep actor or critic is one config change).
    """

    kind: str = "mlp"
    hidden_sizes: tuple[int, ...] = (64, 64)
    depth: int = 4
    width: int = 256
    activation: str = "tanh"
    kernel_init: str = "orthogonal"

    def build(self, output_size: int, output_gain: float = 1.0) -> nn.Module:
        """The module mapping (..., in) -> (..., output_size); `output_gain` and
        `kernel_init` apply to MLPs."""
        if self.kind == "residual":
            return ResidualTrunk(self.width, self.depth, output_size, self.activation)
        return MLP(self.hidden_sizes, output_size, self.activation, output_gain, self.kernel_init)


class ValueNetwork(nn.Module):
    """State value V(obs): (..., obs) -> (...)."""

    body: Body

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return self.body.build(1)(obs)[..., 0]


class GaussianPolicy(nn.Module):
    """Diagonal Gaussian policy; (..., obs) -> distribution over (..., action_size).

    `scale` "state_independent": the network outputs the mean and a learned log standard
    deviation per action dimension, starting at `init_log_std`, sets the scale (PureJaxRL,
    CleanRL). "softplus": the network outputs 2 x action_size values, the mean and a raw
    scale, and scale = softplus(raw) + min_std depends on the state (Brax). `squash` picks
    TanhNormal (True) or ClippedNormal (False).
    """

    body: Body
    action_size: int
    squash: bool = True
    init_log_std: float = 0.0
    scale: str = "state_independent"
    min_std: float = 0.001

    @nn.compact
    def __call__(self, obs: jax.Array) -> TanhNormal | ClippedNormal:
        if self.scale == "softplus":
            out = self.body.build(2 * self.action_size, output_gain=0.01)(obs)
            loc, raw_scale = jnp.split(out, 2, axis=-1)
            scale = nn.softplus(raw_scale) + self.min_std
        else:
            loc = self.body.build(self.action_size, output_gain=0.01)(obs)
            log_std = self.param(
                "log_std", nn.initializers.constant(self.init_log_std), (self.action_size,)
            )
            scale = jnp.broadcast_to(jnp.exp(log_std), loc.shape)
        return (TanhNormal if self.squash else ClippedNormal)(loc, scale)


class CategoricalPolicy(nn.Module):
    """Categorical policy: (..., obs) -> distribution over num_actions."""

    body: Body
    num_actions: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> Categorical:
        return Categorical(self.body.build(self.num_actions, output_gain=0.01)(obs))


# --- Deep residual networks for contrastive RL (Wang et al. 2025, "1000 Layer Networks") ---

NORMALIZATIONS = ("layer_norm", "none")

# Uniform in +-1/sqrt(fan_in): variance_scaling(1/3, fan_in, uniform) has limit sqrt(3 * s/fan_in).
_RESIDUAL_KERNEL_INIT = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _residual_dense(features: int, name: str) -> nn.Dense:
    return nn.Dense(
        features, kernel_init=_RESIDUAL_KERNEL_INIT, bias_init=nn.initializers.zeros, name=name
    )


def _check_residual_fields(depth: int, activation: str, normalization: str) -> None:
    """Raise ValueError naming the field and a fix, instead of silently rounding the depth."""
    problem = residual_depth_problem(depth)
    if problem is not None:
        raise ValueError(f"depth {problem}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {activation!r}")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}; got {normalization!r}")


class ResidualBlock(nn.Module):
    """Four (Dense(width) -> norm -> activation) layers plus a skip connection.

    Input and output (..., width): the skip adds the block input, so the input's last axis must
    already be `width`.
    """

    width: int
    activation: str = "swish"
    normalization: str = "layer_norm"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        h = x
        for i in range(4):
            h = _residual_dense(self.width, f"dense_{i}")(h)
            if self.normalization == "layer_norm":
                h = nn.LayerNorm(name=f"norm_{i}")(h)
            h = act(h)
        return x + h


def _scan_body(block: ResidualBlock, x: jax.Array, _: None) -> tuple[jax.Array, None]:
    # nn.scan wants (carry, xs) -> (carry, ys); the block's output is the next carry.
    return block(x), None


class ResidualTrunk(nn.Module):
    """Deep residual MLP: Dense -> norm -> act, depth/4 ResidualBlocks, then a linear Dense.

    `depth` counts the Dense layers inside the residual blocks (depth 1024 = 256 blocks) and
    must be a positive multiple of 4. With `scan=True` the blocks run under `nn.scan`: their
    parameters are stacked along a leading axis of length depth/4 (param tree
    `blocks/dense_i/kernel: (depth/4, width, width)`) and the program holds one block, so
    compile time is nearly flat in depth. `scan=False` applies `blocks_0 ... blocks_{n-1}` in a
    Python loop (same function, unstacked params). `remat=True` recomputes each block's
    activations in the backward pass, keeping only the block inputs.

    Input (..., in_features) -> output (..., output_size).
    """

    width: int
    depth: int
    output_size: int
    activation: str = "swish"
    normalization: str = "layer_norm"
    remat: bool = False
    scan: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_residual_fields(self.depth, self.activation, self.normalization)
        x = _residual_dense(self.width, "input")(x)
        if self.normalization == "layer_norm":
            x = nn.LayerNorm(name="input_norm")(x)
        x = ACTIVATIONS[self.activation](x)

        block_cls = nn.remat(ResidualBlock) if self.remat else ResidualBlock
        num_blocks = self.depth // 4
        if self.scan:
            scanned = nn.scan(
                _scan_body,
                variable_axes={"params": 0},
                split_rngs={"params": True},
                length=num_blocks,
            )
            block = block_cls(self.width, self.activation, self.normalization, name="blocks")
            x, _ = scanned(block, x, None)
        else:
            for i in range(num_blocks):
                block = block_cls(
                    self.width, self.activation, self.normalization, name=f"blocks_{i}"
                )
                x = block(x)
        return _residual_dense(self.output_size, "output")(x)


class SquashedGaussianActor(nn.Module):
    """Tanh-squashed Gaussian policy on a (scanned) ResidualTrunk, as in the CRL actor.

    The trunk outputs 2 * action_size values: the mean and a raw log-std, which tanh maps
    smoothly into [log_std_min, log_std_max] (a hard clip would zero its gradient outside the
    bounds). (..., obs) -> TanhNormal over (..., action_size).
    """

    action_size: int
    width: int
    depth: int
    activation: str = "swish"
    normalization: str = "layer_norm"
    remat: bool = False
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    scan: bool = True

    @nn.compact
    def __call__(self, obs: jax.Array) -> TanhNormal:
        out = ResidualTrunk(
            self.width,
            self.depth,
            2 * self.action_size,
            self.activation,
            self.normalization,
            self.remat,
            self.scan,
            name="trunk",
        )(obs)
        loc, raw_log_std = jnp.split(out, 2, axis=-1)
        half_range = 0.5 * (self.log_std_max - self.log_std_min)
        log_std = self.log_std_min + half_range * (jnp.tanh(raw_log_std) + 1.0)
        return TanhNormal(loc, jnp.exp(log_std))
