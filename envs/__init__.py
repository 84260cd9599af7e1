"""Brax-API environments and training wrappers. Knows nothing of purerl."""

from envs.classic import CartPole, PointReach
from envs.registry import BRAX_BACKENDS, EnvSpec, make, names, spec
from envs.wrappers import AutoResetWrapper, EpisodeWrapper

__all__ = [
    "BRAX_BACKENDS",
    "AutoResetWrapper",
    "CartPole",
    "EnvSpec",
    "EpisodeWrapper",
    "PointReach",
    "make",
    "names",
    "spec",
]
