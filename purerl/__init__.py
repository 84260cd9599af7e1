"""purerl: fully jitted reinforcement learning over vmapped Brax environments.

The configuration classes import nothing heavy; the training loop (jax, flax, brax) loads on
first use, so building or printing a config (`python -m experiments.run --help`) starts in a
fraction of a second. Every registered agent's config class is an attribute too
(`purerl.PPOConfig`, `purerl.CRLConfig`, ...), looked up in the agent registry.
"""

import importlib

from purerl.agents import registry
from purerl.config import Config, ConfigError, EnvConfig, TrainConfig, validate

_LAZY = {
    "build_agent": "purerl.agents",
    "Trainer": "purerl.loop",
    "TrainState": "purerl.loop",
    "make_train": "purerl.loop",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        configs = {spec.config.__name__: spec.config for spec in registry.specs()}
        if name not in configs:
            raise AttributeError(f"module 'purerl' has no attribute {name!r}")
        value = configs[name]
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Config",
    "ConfigError",
    "EnvConfig",
    "TrainConfig",
    "TrainState",
    "Trainer",
    "build_agent",
    "make_train",
    "registry",
    "validate",
    *(spec.config.__name__ for spec in registry.specs()),
]
