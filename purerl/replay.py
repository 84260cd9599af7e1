"""On-device trajectory replay buffer with future-state goal relabelling.

The buffer is a ring over time of whole environment columns: every leaf has shape
(capacity, num_envs, ...), and each collected (T, num_envs) trajectory chunk is scattered into
the next T rows (wrapping around), so memory is fixed and an insert writes T rows in place
instead of copying the buffer. Every stored step carries the id of the trajectory (episode) it
belongs to in its environment column, so relabelling can find where a trajectory ends without
ever crossing into the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from purerl.types import scan_metrics


@struct.dataclass
class TrajectoryBuffer:
    """A fixed-size ring of (capacity, num_envs) steps.

    data: pytree of arrays (capacity, num_envs, ...). trajectory_id: (capacity, num_envs) int32,
    per-column episode counter of each stored step (-1 where nothing was written yet).
    next_id: (num_envs,) id the next inserted step of each column gets. position: int32 row the
    next insert starts at. size: int32 rows holding data (at most capacity).
    """

    data: Any
    trajectory_id: jax.Array
    next_id: jax.Array
    position: jax.Array
    size: jax.Array

    @property
    def capacity(self) -> int:
        return self.trajectory_id.shape[0]

    @property
    def num_envs(self) -> int:
        return self.trajectory_id.shape[1]


def init_buffer(example: Any, capacity: int) -> TrajectoryBuffer:
    """An empty buffer for steps shaped like `example` (a pytree, leaves (num_envs, ...))."""
    num_envs = jax.tree.leaves(example)[0].shape[0]
    data = jax.tree.map(lambda x: jnp.zeros((capacity,) + x.shape, x.dtype), example)
    return TrajectoryBuffer(
        data=data,
        trajectory_id=jnp.full((capacity, num_envs), -1, jnp.int32),
        next_id=jnp.zeros((num_envs,), jnp.int32),
        position=jnp.zeros((), jnp.int32),
        size=jnp.zeros((), jnp.int32),
    )


def insert(buffer: TrajectoryBuffer, steps: Any, dones: jax.Array) -> TrajectoryBuffer:
    """Writes a (T, num_envs) chunk into the next T rows.

    `dones` (T, num_envs) is 1 where the episode ended with that step, so the following step
    starts a new trajectory id. T must not exceed the capacity.
    """
    length = dones.shape[0]
    ended = dones.astype(jnp.int32)
    ids = buffer.next_id + jnp.cumsum(ended, axis=0) - ended  # episodes ended before step t
    rows = (buffer.position + jnp.arange(length)) % buffer.capacity
    return TrajectoryBuffer(
        data=jax.tree.map(lambda stored, new: stored.at[rows].set(new), buffer.data, steps),
        trajectory_id=buffer.trajectory_id.at[rows].set(ids),
        next_id=buffer.next_id + ended.sum(0),
        position=(buffer.position + length) % buffer.capacity,
        size=jnp.minimum(buffer.size + length, buffer.capacity),
    )


def sample_future_offsets(key: jax.Array, max_offsets: jax.Array, discount: float) -> jax.Array:
    """Offsets k in {1, ..., max_offset} with P(k) proportional to discount^k (int32, shape of
    max_offsets); 0 where max_offset is 0 (the last step of a trajectory has no future).

    Inverse-CDF sampling of the geometric distribution truncated at max_offset, exact for every
    truncation point, with no (T x T) probability matrix.
    """
    uniform = jax.random.uniform(key, max_offsets.shape)
    truncated_mass = 1.0 - discount ** max_offsets.astype(jnp.float32)
    offsets = 1 + jnp.floor(jnp.log1p(-uniform * truncated_mass) / jnp.log(discount))
    return jnp.clip(offsets.astype(jnp.int32), 0, max_offsets)


def sample_with_future(
    buffer: TrajectoryBuffer, key: jax.Array, batch_size: int, discount: float, horizon: int
) -> tuple[Any, Any, jax.Array]:
    """Samples stored steps uniformly and, for each, a later step of the same trajectory.

    The later step is k steps ahead with P(k) proportional to discount^k, truncated where the
    trajectory ends (or where the buffer's data ends); the last step of a trajectory gets
    itself (k = 0). `horizon` bounds the look-ahead: use the episode length, the longest a
    trajectory can be. Returns (steps, future steps, offsets): pytrees with leaves
    (batch_size, ...) and offsets (batch_size,) int32.
    """
    env_key, age_key, offset_key = jax.random.split(key, 3)
    env = jax.random.randint(env_key, (batch_size,), 0, buffer.num_envs)
    # Age 0 is the oldest stored row; ages below `size` hold data.
    age = jax.random.randint(age_key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    oldest = buffer.position - buffer.size

    def row(ages):
        return (oldest + ages) % buffer.capacity

    ahead = age[:, None] + jnp.arange(1, horizon + 1)[None, :]  # (batch, horizon)
    own_id = buffer.trajectory_id[row(age), env]
    same = (ahead < buffer.size) & (
        buffer.trajectory_id[row(ahead), env[:, None]] == own_id[:, None]
    )
    # Consecutive same-trajectory steps after the sampled one; cumprod stops at the first break.
    max_offsets = jnp.cumprod(same, axis=1).sum(axis=1)
    offsets = sample_future_offsets(offset_key, max_offsets, discount)

    def gather(ages):
        return jax.tree.map(lambda x: x[row(ages), env], buffer.data)

    return gather(age), gather(age + offsets), offsets


def train_after_warmup(
    buffer: TrajectoryBuffer,
    warmup_env_steps: int,
    num_steps: int,
    gradient_step: Callable[[Any, jax.Array], tuple[Any, dict]],
    carry: Any,
    key: jax.Array,
) -> tuple[Any, dict]:
    """An off-policy agent's learning phase: `num_steps` scanned `gradient_step(carry, key) ->
    (carry, metrics)` once `buffer` holds `warmup_env_steps` env steps, nothing before.

    Returns the carry and the steps' mean metrics (zeros while warming up) plus
    "buffer/env_steps" and "trained" (1.0 when steps were taken: the loop averages an agent's
    metrics over the iterations that trained).
    """

    def train(carry):
        return scan_metrics(gradient_step, carry, jax.random.split(key, num_steps), mean=True)

    def wait(carry):
        shapes = jax.eval_shape(train, carry)[1]
        return carry, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    stored = buffer.size * buffer.num_envs
    warm = stored >= warmup_env_steps
    carry, metrics = jax.lax.cond(warm, train, wait, carry)
    metrics["buffer/env_steps"] = stored.astype(jnp.float32)
    metrics["trained"] = warm.astype(jnp.float32)
    return carry, metrics


def buffer_shardings(agent_state: Any, mesh: Mesh) -> Any:
    """Shardings for an agent state holding TrajectoryBuffers (or its eval_shape): every
    buffer split along its environment columns over the mesh's environment axis, the rest
    (parameters, optimiser states) replicated. An agent with a buffer registers this as its
    `AgentSpec.shardings`, so each device keeps the columns of the environments it steps."""
    (env_axis,) = mesh.axis_names  # purerl.parallel's 1-D environment mesh
    replicated = NamedSharding(mesh, P())
    columns = NamedSharding(mesh, P(None, env_axis))

    def leaf(node):
        if not isinstance(node, TrajectoryBuffer):
            return replicated
        return TrajectoryBuffer(
            data=jax.tree.map(lambda _: columns, node.data),
            trajectory_id=columns,
            next_id=NamedSharding(mesh, P(env_axis)),
            position=replicated,
            size=replicated,
        )

    return jax.tree.map(leaf, agent_state, is_leaf=lambda node: isinstance(node, TrajectoryBuffer))
