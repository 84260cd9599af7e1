"""ResidualTrunk / ResidualBlock / SquashedGaussianActor (deep residual nets for CRL)."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl.networks import ResidualBlock, ResidualTrunk, SquashedGaussianActor

IN, OUT, WIDTH = 5, 3, 8


def _x(batch: int = 4, scale: float = 1.0) -> jax.Array:
    return scale * jax.random.normal(jax.random.key(1), (batch, IN))


def _count(params) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))


def _unstack(scanned: dict, num_blocks: int) -> dict:
    """Scanned params -> the unscanned trunk's tree (blocks_i = slice i of the stacked axis)."""
    params = {k: v for k, v in scanned["params"].items() if k != "blocks"}
    for i in range(num_blocks):
        params[f"blocks_{i}"] = jax.tree.map(lambda a, i=i: a[i], scanned["params"]["blocks"])
    return {"params": params}


def test_scanned_param_tree_and_count():
    depth = 12
    trunk = ResidualTrunk(WIDTH, depth, OUT)
    params = trunk.init(jax.random.key(0), _x())
    blocks = params["params"]["blocks"]
    for i in range(4):
        assert blocks[f"dense_{i}"]["kernel"].shape == (depth // 4, WIDTH, WIDTH)
        assert blocks[f"norm_{i}"]["scale"].shape == (depth // 4, WIDTH)
    # split_rngs={"params": True}: every block gets its own initial kernel.
    k = blocks["dense_0"]["kernel"]
    assert not np.allclose(k[0], k[1])

    unscanned = ResidualTrunk(WIDTH, depth, OUT, scan=False).init(jax.random.key(0), _x())
    # input Dense + its LayerNorm, depth x (Dense + LayerNorm), output Dense.
    by_hand = (
        (IN * WIDTH + WIDTH)
        + 2 * WIDTH
        + depth * (WIDTH * WIDTH + WIDTH + 2 * WIDTH)
        + (WIDTH * OUT + OUT)
    )
    assert _count(params) == _count(unscanned) == by_hand
    no_norm = ResidualTrunk(WIDTH, depth, OUT, normalization="none").init(jax.random.key(0), _x())
    assert _count(no_norm) == by_hand - 2 * WIDTH * (depth + 1)


def test_kernel_init_bounds_and_zero_biases():
    params = ResidualTrunk(16, 4, OUT).init(jax.random.key(0), _x())["params"]
    for kernel, fan_in in [
        (params["input"]["kernel"], IN),
        (params["blocks"]["dense_2"]["kernel"], 16),
        (params["output"]["kernel"], 16),
    ]:
        assert np.abs(kernel).max() <= 1 / np.sqrt(fan_in)
        assert np.abs(kernel).max() > 0.8 / np.sqrt(fan_in)  # uniform over the whole range
    for bias in [params["input"]["bias"], params["blocks"]["dense_0"]["bias"]]:
        assert not np.any(bias)


@pytest.mark.parametrize("normalization", ["layer_norm", "none"])
def test_scanned_equals_unscanned(normalization):
    depth = 8
    scanned = ResidualTrunk(WIDTH, depth, OUT, normalization=normalization)
    params = scanned.init(jax.random.key(0), _x())
    unscanned = ResidualTrunk(WIDTH, depth, OUT, normalization=normalization, scan=False)
    loop_params = _unstack(params, depth // 4)
    # The unstacked tree has exactly the unscanned trunk's structure and shapes.
    reference = unscanned.init(jax.random.key(0), _x())
    assert jax.tree.structure(loop_params) == jax.tree.structure(reference)
    assert jax.tree.map(jnp.shape, loop_params) == jax.tree.map(jnp.shape, reference)
    np.testing.assert_allclose(
        scanned.apply(params, _x()), unscanned.apply(loop_params, _x()), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("scan", [True, False])
def test_remat_same_output_and_grads(scan):
    plain = ResidualTrunk(WIDTH, 8, OUT, scan=scan)
    remat = ResidualTrunk(WIDTH, 8, OUT, scan=scan, remat=True)
    params = plain.init(jax.random.key(0), _x())
    assert jax.tree.structure(params) == jax.tree.structure(remat.init(jax.random.key(0), _x()))

    def loss(module, p):
        return jnp.sum(jnp.sin(module.apply(p, _x())))

    np.testing.assert_allclose(plain.apply(params, _x()), remat.apply(params, _x()), rtol=1e-6)
    g_plain = jax.grad(lambda p: loss(plain, p))(params)
    g_remat = jax.grad(lambda p: loss(remat, p))(params)
    # The recomputed forward is fused differently, so allow float32 round-off.
    for a, b in zip(jax.tree.leaves(g_plain), jax.tree.leaves(g_remat), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("depth", [6, 0, -4])
@pytest.mark.parametrize("scan", [True, False])
def test_bad_depth_raises(depth, scan):
    trunk = ResidualTrunk(WIDTH, depth, OUT, scan=scan)  # constructing is fine; calling fails
    with pytest.raises(ValueError, match=rf"depth must be a positive multiple of 4.*got {depth}"):
        trunk.init(jax.random.key(0), _x())


def test_depth_error_suggests_neighbours():
    with pytest.raises(ValueError, match="e.g. 4 or 8"):
        ResidualTrunk(WIDTH, 6, OUT).init(jax.random.key(0), _x())


@pytest.mark.parametrize("field", ["activation", "normalization"])
def test_bad_names_raise(field):
    with pytest.raises(ValueError, match=field):
        ResidualTrunk(WIDTH, 4, OUT, **{field: "nope"}).init(jax.random.key(0), _x())


def test_every_field_changes_output():
    # Same key everywhere; scale 3 so LayerNorm and the activation choice both matter.
    x = _x(scale=3.0)
    base = dict(width=WIDTH, depth=4, output_size=OUT)

    def out(**overrides):
        trunk = ResidualTrunk(**{**base, **overrides})
        return trunk.apply(trunk.init(jax.random.key(0), x), x)

    reference = out()
    for overrides in [
        {"width": 16},
        {"depth": 8},
        {"activation": "tanh"},
        {"normalization": "none"},
    ]:
        assert not np.allclose(reference, out(**overrides), atol=1e-4), overrides


def test_zeroed_block_is_identity():
    # Dense -> 0, LayerNorm(0) = 0 (zero mean, zero bias), swish(0) = 0: only the skip remains.
    block = ResidualBlock(WIDTH)
    h = jax.random.normal(jax.random.key(2), (4, WIDTH))
    params = block.init(jax.random.key(0), h)
    zeroed = jax.tree_util.tree_map_with_path(
        lambda path, a: jnp.zeros_like(a) if "dense" in jax.tree_util.keystr(path) else a, params
    )
    np.testing.assert_array_equal(block.apply(zeroed, h), h)
    assert not np.allclose(block.apply(params, h), h)  # and the unzeroed block is not


def _lowered_size(depth: int) -> int:
    trunk = ResidualTrunk(WIDTH, depth, OUT)
    params = jax.eval_shape(trunk.init, jax.random.key(0), _x())
    grad = jax.grad(lambda p, x: trunk.apply(p, x).sum())
    return len(jax.jit(grad).lower(params, _x()).as_text())


def test_scanned_program_size_flat_in_depth():
    # The scan holds one block whatever the depth, so the program barely grows with it.
    assert _lowered_size(1024) < 1.2 * _lowered_size(8)


@pytest.mark.parametrize("remat", [False, True])
def test_depth_1024_init_forward_backward(remat):
    depth = 1024
    trunk = ResidualTrunk(WIDTH, depth, OUT, remat=remat)
    x = _x()
    start = time.perf_counter()
    params = jax.jit(trunk.init)(jax.random.key(0), x)
    y = jax.jit(trunk.apply)(params, x)
    grads = jax.jit(jax.grad(lambda p: trunk.apply(p, x).sum()))(params)
    jax.block_until_ready(grads)
    elapsed = time.perf_counter() - start
    assert params["params"]["blocks"]["dense_0"]["kernel"].shape == (depth // 4, WIDTH, WIDTH)
    assert y.shape == (4, OUT) and np.all(np.isfinite(y))
    assert jax.tree.map(jnp.shape, grads) == jax.tree.map(jnp.shape, params)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    # Gradient reaches the first layer through 256 blocks.
    assert np.abs(grads["params"]["input"]["kernel"]).max() > 0
    # Unrolled, 1024 layers take minutes to compile; scanned it is seconds (generous bound for
    # a loaded 2-core CI machine).
    assert elapsed < 20.0


def test_actor_log_std_bounds_and_samples():
    action_size = 2
    actor = SquashedGaussianActor(action_size, WIDTH, 4)
    params = actor.init(jax.random.key(0), _x())
    for scale in [1.0, 1e6, -1e6]:
        dist = actor.apply(params, _x(scale=scale))
        log_std = np.log(dist.scale)
        assert log_std.shape == (4, action_size)
        assert np.all(log_std >= -5.0 - 1e-5) and np.all(log_std <= 2.0 + 1e-5)
    # LayerNorm makes the trunk scale-invariant in its input, so push the raw log-std itself to
    # +-1e4 through the output bias: the tanh saturates at the bounds, never past them.
    for sign, bound in [(1.0, 2.0), (-1.0, -5.0)]:
        pushed = jax.tree.map(lambda a: a, params)
        bias = pushed["params"]["trunk"]["output"]["bias"]
        pushed["params"]["trunk"]["output"]["bias"] = bias.at[action_size:].set(sign * 1e4)
        log_std = np.log(actor.apply(pushed, _x()).scale)
        np.testing.assert_allclose(log_std, bound, atol=1e-5)

    batch = jnp.zeros((3, 4, IN))  # any leading shape
    dist = actor.apply(params, batch + _x())
    raw = dist.sample(jax.random.key(3))
    assert raw.shape == (3, 4, action_size)
    action = dist.to_action(raw)
    assert np.all(np.abs(action) < 1.0)
    assert dist.log_prob(raw).shape == (3, 4)
