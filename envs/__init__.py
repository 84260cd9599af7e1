"""Brax-API environments and training wrappers. Knows nothing of purerl."""

import contextlib
import io

# mujoco.mjx prints "Failed to import warp" to stdout when the optional NVIDIA Warp backend is
# absent (always, on CPU); keep that out of our output.
with contextlib.redirect_stdout(io.StringIO()):
    import brax.envs  # noqa: F401

from envs.classic import CartPole, PointReach
from envs.registry import BRAX_BACKENDS, OWN_NAMES, EnvSpec, make, names, spec
from envs.wrappers import AutoResetWrapper, EpisodeWrapper

__all__ = [
    "BRAX_BACKENDS",
    "AutoResetWrapper",
    "CartPole",
    "EnvSpec",
    "OWN_NAMES",
    "EpisodeWrapper",
    "PointReach",
    "make",
    "names",
    "spec",
]
