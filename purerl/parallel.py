"""Device meshes and shardings: the only module that knows about devices.

Data parallelism over environments: the environment batch (the leading axis of
`TrainState.env`, and the environment-column axis of any `TrajectoryBuffer` in the agent
state) is split over a 1-D mesh of devices named "envs"; parameters, optimiser states, keys
and counters are replicated. `jax.jit` with these shardings partitions the one program
(GSPMD): each device steps its own environments, and means over the batch (gradients,
normaliser statistics) become collectives the compiler inserts. No pmap, no hand-written
all-reduce. On a CPU, `XLA_FLAGS=--xla_force_host_platform_device_count=N` gives N devices.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from purerl.replay import TrajectoryBuffer

ENV_AXIS = "envs"


def make_mesh(num_devices: int) -> Mesh:
    """A 1-D mesh of the first `num_devices` devices along the "envs" axis."""
    devices = jax.devices()
    if num_devices > len(devices):
        raise ValueError(f"{num_devices} devices asked for, {len(devices)} available")
    return Mesh(np.array(devices[:num_devices]), (ENV_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def state_shardings(state: Any, mesh: Mesh) -> Any:
    """Shardings for a `TrainState` (or its `jax.eval_shape`), same tree structure.

    Environment states split along their leading axis; replay buffers along their
    environment columns; everything else is replicated.
    """
    by_env = NamedSharding(mesh, P(ENV_AXIS))

    def agent_leaf(node):
        if isinstance(node, TrajectoryBuffer):
            columns = NamedSharding(mesh, P(None, ENV_AXIS))
            return TrajectoryBuffer(
                data=jax.tree.map(lambda _: columns, node.data),
                trajectory_id=columns,
                next_id=by_env,
                position=replicated(mesh),
                size=replicated(mesh),
            )
        return replicated(mesh)

    is_buffer = lambda node: isinstance(node, TrajectoryBuffer)  # noqa: E731
    return state.replace(
        agent=jax.tree.map(agent_leaf, state.agent, is_leaf=is_buffer),
        env=jax.tree.map(lambda _: by_env, state.env),
        key=replicated(mesh),
        iteration=replicated(mesh),
    )
