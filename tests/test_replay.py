"""Trajectory replay buffer and future-goal relabelling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from purerl.replay import init_buffer, insert, sample_future_offsets, sample_with_future


def test_insert_wraps_and_assigns_trajectory_ids():
    buffer = init_buffer({"x": jnp.zeros((2,))}, capacity=5)
    # Env 0 ends an episode after its 2nd step, env 1 after its 3rd.
    dones = jnp.array([[0, 0], [1, 0], [0, 1]], jnp.float32)
    buffer = insert(buffer, {"x": jnp.array([[1.0, 10], [2, 20], [3, 30]])}, dones)
    np.testing.assert_array_equal(buffer.trajectory_id[:3], [[0, 0], [0, 0], [1, 0]])
    np.testing.assert_array_equal(buffer.next_id, [1, 1])
    assert int(buffer.position) == 3 and int(buffer.size) == 3
    buffer = insert(buffer, {"x": jnp.array([[4.0, 40], [5, 50], [6, 60]])}, jnp.zeros((3, 2)))
    # Rows 3, 4 then wrap to row 0: the oldest step (x=1) is overwritten.
    np.testing.assert_array_equal(buffer.data["x"][:, 0], [6, 2, 3, 4, 5])
    np.testing.assert_array_equal(buffer.trajectory_id[:, 1], [1, 0, 0, 1, 1])
    assert int(buffer.position) == 1 and int(buffer.size) == 5


def truncated_geometric(max_offset: int, discount: float) -> np.ndarray:
    """P(k) for k = 1..max_offset, proportional to discount^k (plain numpy reference)."""
    weights = np.array([discount**k for k in range(1, max_offset + 1)])
    return weights / weights.sum()


@pytest.mark.parametrize("max_offset, discount", [(5, 0.9), (40, 0.97), (1, 0.5)])
def test_offsets_follow_truncated_geometric(max_offset, discount):
    n = 200_000
    offsets = sample_future_offsets(
        jax.random.PRNGKey(0), jnp.full((n,), max_offset, jnp.int32), discount
    )
    counts = np.bincount(np.asarray(offsets), minlength=max_offset + 1)
    assert counts[0] == 0 and counts.sum() == n  # never the state itself, never past the end
    expected = truncated_geometric(max_offset, discount) * n
    if max_offset > 1:
        _, p_value = stats.chisquare(counts[1:], expected)
        assert p_value > 1e-3


def test_no_future_gives_offset_zero():
    offsets = sample_future_offsets(jax.random.PRNGKey(1), jnp.zeros((100,), jnp.int32), 0.99)
    assert (offsets == 0).all()


def filled_buffer(num_envs=3, capacity=12, length=4, episode=5, chunks=5):
    """A buffer fed chunks from envs whose episodes last `episode` steps (staggered per env).

    Each stored step records its env, trajectory id (a plain-Python count) and step index.
    """
    example = {"env": jnp.zeros((num_envs,), jnp.int32), "traj": jnp.zeros((num_envs,), jnp.int32)}
    example["step"] = jnp.zeros((num_envs,), jnp.int32)
    buffer = init_buffer(example, capacity)
    t = 0
    for _ in range(chunks):
        times = np.arange(t, t + length)[:, None] + np.arange(num_envs)[None, :]  # stagger
        steps = {
            "env": jnp.broadcast_to(jnp.arange(num_envs), (length, num_envs)),
            "traj": jnp.asarray(times // episode),
            "step": jnp.asarray(times % episode),
        }
        dones = jnp.asarray((times % episode) == episode - 1, jnp.float32)
        buffer = insert(buffer, steps, dones)
        t += length
    return buffer


def test_relabelling_never_crosses_trajectories():
    buffer = filled_buffer()
    now, future, offsets = sample_with_future(
        buffer, jax.random.PRNGKey(2), batch_size=4096, discount=0.8, horizon=5
    )
    assert (now["env"] == future["env"]).all()
    assert (now["traj"] == future["traj"]).all()
    np.testing.assert_array_equal(future["step"] - now["step"], offsets)
    # A step has a future unless it is the last of its trajectory or the newest stored step.
    has_future = offsets > 0
    assert has_future.mean() > 0.5
    last = now["step"] == 4
    assert (offsets[np.asarray(last)] == 0).all()


def test_relabelled_offsets_match_the_distribution_per_position():
    """Offsets from a stored step with m future steps in its trajectory follow P(k) ~ d^k."""
    buffer = filled_buffer(num_envs=1, capacity=40, length=8, episode=20, chunks=5)
    discount = 0.85
    now, _, offsets = sample_with_future(
        buffer, jax.random.PRNGKey(3), batch_size=200_000, discount=discount, horizon=20
    )
    step, offsets = np.asarray(now["step"]), np.asarray(offsets)
    traj = np.asarray(now["traj"])
    complete = traj == 0  # trajectory 0 (steps 0..19) is fully stored and not overwritten
    for position in (0, 10, 17):
        chosen = offsets[complete & (step == position)]
        max_offset = 19 - position
        counts = np.bincount(chosen, minlength=max_offset + 1)[1:]
        assert len(counts) == max_offset
        _, p_value = stats.chisquare(
            counts, truncated_geometric(max_offset, discount) * len(chosen)
        )
        assert p_value > 1e-3, position


def test_insert_updates_the_buffer_in_place():
    """The compiled insert writes rows; it must not copy the whole buffer per call."""
    buffer = init_buffer({"x": jnp.zeros((64, 8))}, capacity=4096)
    steps = {"x": jnp.ones((16, 64, 8))}
    dones = jnp.zeros((16, 64))
    compiled = jax.jit(insert, donate_argnums=0).lower(buffer, steps, dones).compile()
    text = compiled.as_text()
    full = "f32[4096,64,8]"
    copies = [line for line in text.splitlines() if " copy(" in line and full in line]
    assert not copies, copies
