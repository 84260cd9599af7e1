"""Brax-API environments and training wrappers. Knows nothing of purerl."""

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
