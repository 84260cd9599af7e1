"""`make(name)`: every brax registry environment plus purerl's own cheap environments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from brax import envs as brax_envs
from brax.envs.base import Env

from envs.classic import CartPole, PointReach

BRAX_BACKENDS = ("generalized", "spring", "positional", "mjx")

_OWN: dict[str, Callable[..., Env]] = {"cartpole": CartPole, "point_reach": PointReach}
OWN_NAMES = tuple(sorted(_OWN))


@dataclass(frozen=True)
class EnvSpec:
    """What a learner needs to know about an environment's interface.

    `num_actions` is set for discrete-action environments (actions are int32 scalars in
    [0, num_actions)); it is None for continuous ones (actions of shape (action_size,) in
    [-1, 1]).
    """

    observation_size: int
    action_size: int
    num_actions: int | None = None

    @property
    def discrete(self) -> bool:
        return self.num_actions is not None


def names() -> list[str]:
    """All names `make` accepts, purerl's own first."""
    return sorted(_OWN) + sorted(brax_envs._envs)


def make(name: str, backend: str | None = None, **kwargs) -> Env:
    """Returns a single (unbatched) brax-API environment.

    `backend` picks the brax physics pipeline for brax environments (default: brax's own
    default, `generalized`); purerl's pure-JAX environments take no backend.
    Raises ValueError naming the valid choices for an unknown name or backend.
    """
    if name in _OWN:
        if backend not in (None, "jax"):
            raise ValueError(f"environment {name!r} is pure JAX and takes no backend")
        return _OWN[name](**kwargs)
    if name not in brax_envs._envs:
        raise ValueError(f"unknown environment {name!r}; choose one of {', '.join(names())}")
    if backend is not None:
        if backend not in BRAX_BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of {BRAX_BACKENDS}")
        kwargs["backend"] = backend
    return brax_envs.get_environment(name, **kwargs)


def spec(env: Env) -> EnvSpec:
    """The `EnvSpec` of a (possibly wrapped) environment."""
    num_actions = getattr(getattr(env, "unwrapped", env), "num_actions", None)
    return EnvSpec(env.observation_size, env.action_size, num_actions)
