"""How the test suite compiles.

Almost every test program runs for milliseconds after compiling for seconds (a brax rollout
for 10-50 s), so the suite compiles with XLA:CPU's fusion emitters off and LLVM unoptimised:
about half the compile time for several times slower code (ant_umaze's 8-env rollout: 15.9 s
-> 7.0 s to compile, 0.12 s -> 0.40 s to run). conftest.py adds `FAST_FLAGS` to XLA_FLAGS,
so subprocesses (the CLI, sweeps, several devices) compile the same way.

The learning tests run long enough that the slower code would cost more than it saves, and
their thresholds were measured with XLA's default code, so they compile their training
programs with `OPTIMISED` (jit options override XLA_FLAGS) or, in a subprocess, with
`optimised_xla_flags()` (conftest's `optimised_subprocesses` fixture).
"""

import os

FAST_FLAGS = (
    "--xla_cpu_use_fusion_emitters=false",
    "--xla_backend_optimization_level=0",
    "--xla_llvm_disable_expensive_passes=true",
)
# XLA's defaults for the options FAST_FLAGS changes.
OPTIMISED = {
    "xla_cpu_use_fusion_emitters": True,
    "xla_backend_optimization_level": 3,
    "xla_llvm_disable_expensive_passes": False,
}


def xla_flags(*flags: str) -> str:
    """This process's XLA_FLAGS with `flags` appended (a later flag wins over an earlier one)."""
    return " ".join([os.environ.get("XLA_FLAGS", ""), *flags]).strip()


def environ_with_xla_flags(*flags: str) -> dict[str, str]:
    """os.environ for a subprocess, with `flags` appended to XLA_FLAGS."""
    return {**os.environ, "XLA_FLAGS": xla_flags(*flags)}


def optimised_xla_flags() -> str:
    """This process's XLA_FLAGS without `FAST_FLAGS`: XLA's default code."""
    return " ".join(f for f in xla_flags().split() if f not in FAST_FLAGS)
