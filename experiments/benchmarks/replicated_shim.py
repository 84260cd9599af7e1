"""``jax.device_put_replicated`` for Brax's PPO trainer on jax >= 0.10, which removed it.

brax 0.14.2's trainer calls it to copy its training state to every local device. The anchor
(`brax_anchor.py`, a script that imports this as a sibling) installs it where no older jax
can be installed (the GPU machine: a separate venv with jaxlib 0.8 and its CUDA plugins does
not fit there), and the tests install it to run Brax's trainer in purerl's environment.
"""

from __future__ import annotations

import jax


def device_put_replicated(tree, devices):
    """What jax < 0.10's ``jax.device_put_replicated`` did: each leaf with a leading axis of
    len(devices), one copy per device, as pmap expects."""
    mesh = jax.sharding.Mesh(list(devices), ("devices",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("devices"))

    def put(leaf):
        stacked = jax.numpy.stack([jax.numpy.asarray(leaf)] * len(devices))
        return jax.device_put(stacked, sharding)

    return jax.tree.map(put, tree)


def install() -> bool:
    """Installs the shim if this jax lacks the function; whether it did."""
    if hasattr(jax, "device_put_replicated"):
        return False
    jax.device_put_replicated = device_put_replicated
    return True
