"""Device meshes and shardings: the only module that knows about devices.

Data parallelism over environments: the environment batch (the leading axis of
`TrainState.env`, and whatever part of an agent's state its registered `shardings` puts on
the same axis, e.g. a replay buffer's environment columns) is split over a 1-D mesh of
devices named "envs"; parameters, optimiser states, keys and counters are replicated.
`jax.jit` with these shardings partitions the one program (GSPMD): each device steps its own
environments, and means over the batch (gradients, normaliser statistics) become collectives
the compiler inserts. No pmap, no hand-written
all-reduce. On a CPU, `XLA_FLAGS=--xla_force_host_platform_device_count=N` gives N devices.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from purerl.agents import registry
from purerl.replay import TrajectoryBuffer

ENV_AXIS = "envs"


def make_mesh(num_devices: int) -> Mesh:
    """A 1-D mesh along the "envs" axis of the first `num_devices` devices, 0 for all of them.

    In a run of several processes (purerl.distributed) the devices are every process's, and
    the mesh must span them all: a device left out would leave its process nothing to do
    while the others wait for it in every collective.
    """
    devices = jax.devices()
    if num_devices > len(devices):
        raise ValueError(f"{num_devices} devices asked for, {len(devices)} available")
    if jax.process_count() > 1 and num_devices not in (0, len(devices)):
        raise ValueError(
            f"a run of {jax.process_count()} processes spans all {len(devices)} devices of "
            f"all of them; use train.num_devices=0 (every device), not {num_devices}"
        )
    return Mesh(np.array(devices[: num_devices or None]), (ENV_AXIS,))


def device_count(num_devices: int) -> int:
    """How many devices `make_mesh(num_devices)` spans."""
    return num_devices or jax.device_count()


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def state_shardings(state: Any, mesh: Mesh, agent_config: object) -> Any:
    """Shardings for a `TrainState` (or its `jax.eval_shape`), same tree structure.

    Environment states split along their leading axis; the agent's state as its registered
    `AgentSpec.shardings` says (`agent_config` names the agent), all replicated if it has none.
    """
    spec = registry.of(agent_config)
    if spec.shardings is None:
        is_buffer = lambda node: isinstance(node, TrajectoryBuffer)  # noqa: E731
        if any(map(is_buffer, jax.tree.leaves(state.agent, is_leaf=is_buffer))):
            raise ValueError(
                f"agent {spec.name!r} keeps a replay buffer but registers no shardings, so "
                "every device would hold all of it; register "
                "shardings=purerl.replay.buffer_shardings in its AgentSpec"
            )
        agent = jax.tree.map(lambda _: replicated(mesh), state.agent)
    else:
        agent = spec.shardings(state.agent, mesh)
    return state.replace(
        agent=agent,
        env=jax.tree.map(lambda _: NamedSharding(mesh, P(ENV_AXIS)), state.env),
        key=replicated(mesh),
        iteration=replicated(mesh),
    )
