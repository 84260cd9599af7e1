"""Compiling for a GPU that is not there: XLA's GPU compiler, run on this machine's CPU, given a
description of the device instead of the device.

    PRNG key -> gpu_key("h200") -> jax.jit(train).lower(key).compile().as_text()

gives the program an H200 would run, kernel for kernel, on a machine with no GPU. It needs
jax's CUDA plugin installed (`jax[cuda13]`, in the venv `gpu_launches_venv.py` makes), with
`JAX_PLATFORMS=cpu` and `JAX_SKIP_CUDA_CONSTRAINTS_CHECK=1` set before jax is imported (the
plugin otherwise asks the absent driver for its version): `ENVIRONMENT` holds them.

What a description cannot give is autotuning, which times candidate kernels on the device;
XLA then takes its default choices. Checked against the programs an H200 compiled itself
(docs/BENCHMARKS.md, "Kernel launches without a GPU"): with jax 0.11.2, as on that machine,
each loop body's kernel count agrees to within one.

Standard library at import time: the PureJaxRL anchor runs as a script and imports this as a
sibling module.
"""

from __future__ import annotations

import os

ENVIRONMENT = {"JAX_PLATFORMS": "cpu", "JAX_SKIP_CUDA_CONSTRAINTS_CHECK": "1"}

# XLA's GpuTargetConfig (text format) for the lent machine's GPU: an H200 (132 SMs, compute
# capability 9.0, 141 GB of HBM3e at 4.8 TB/s) under CUDA 13 and cuDNN 9.10.
H200 = """
gpu_device_info {
  threads_per_block_limit: 1024
  threads_per_warp: 32
  shared_memory_per_block: 49152
  shared_memory_per_core: 233472
  threads_per_core_limit: 2048
  core_count: 132
  fpus_per_core: 128
  block_dim_limit_x: 2147483647
  block_dim_limit_y: 65535
  block_dim_limit_z: 65535
  memory_bandwidth: 4800000000000
  l2_cache_size: 52428800
  clock_rate_ghz: 1.98
  device_memory_size: 150000000000
  shared_memory_per_block_optin: 232448
  cuda_compute_capability { major: 9 }
  registers_per_core_limit: 65536
  registers_per_block_limit: 65536
}
platform_name: "CUDA"
dnn_version_info { major: 9 minor: 10 }
runtime_version { major: 13 minor: 0 }
device_description_str: "NVIDIA H200"
"""
TARGETS = {"h200": H200}


def gpu_key(target: str = "h200"):
    """An abstract PRNG key (uint32[2]) on the one device of `target`: a function jitted and
    lowered with it compiles for that GPU. Call with ENVIRONMENT already set."""
    missing = {k: v for k, v in ENVIRONMENT.items() if os.environ.get(k) != v}
    if missing:
        raise RuntimeError(f"set {missing} before importing jax to compile for a GPU here")
    import jax
    from jax.experimental import topologies

    topology = topologies.get_topology_desc(
        platform="cuda", target_config=TARGETS[target], topology="1x1x1"
    )
    mesh = topologies.make_mesh(topology, (1,), ("device",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return jax.ShapeDtypeStruct((2,), jax.numpy.uint32, sharding=sharding)
