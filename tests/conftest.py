import os

import pytest

from tests.compiling import FAST_FLAGS, optimised_xla_flags, xla_flags

# Tests run on the CPU; keep XLA from grabbing every core's worth of threads per compile.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Compile for compile time, not run time (tests/compiling.py), before JAX starts its backend.
os.environ["XLA_FLAGS"] = xla_flags(*FAST_FLAGS)


@pytest.fixture
def optimised_subprocesses(monkeypatch):
    """Subprocesses this test starts compile with XLA's defaults (tests/compiling.py)."""
    flags = optimised_xla_flags()
    if flags:
        monkeypatch.setenv("XLA_FLAGS", flags)
    else:
        monkeypatch.delenv("XLA_FLAGS", raising=False)
