"""How the test suite compiles.

Almost every test program runs for milliseconds after compiling for seconds (a brax rollout
for 10-50 s), so the suite compiles with XLA:CPU's fusion emitters off and LLVM unoptimised:
about half the compile time for several times slower code (ant_umaze's 8-env rollout: 15.9 s
-> 7.0 s to compile, 0.12 s -> 0.40 s to run). conftest.py adds `FAST_FLAGS` to XLA_FLAGS,
so subprocesses (the CLI, sweeps, several devices) compile the same way.

The learning tests run long enough that the slower code would cost more than it saves, and
their thresholds were measured with XLA's default code, so they compile their training
programs with `OPTIMISED` (jit options override XLA_FLAGS) or, in a subprocess, under
`optimised_environ()`.
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


def with_flags(environ, *flags: str) -> str:
    """`environ`'s XLA_FLAGS with `flags` appended (a later flag wins over an earlier one)."""
    return " ".join([environ.get("XLA_FLAGS", ""), *flags]).strip()


def optimised_environ() -> dict[str, str]:
    """os.environ for a subprocess that compiles with XLA's defaults."""
    kept = [f for f in os.environ.get("XLA_FLAGS", "").split() if f not in FAST_FLAGS]
    environ = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return {**environ, "XLA_FLAGS": " ".join(kept)} if kept else environ
