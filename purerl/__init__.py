"""purerl: fully jitted reinforcement learning over vmapped Brax environments.

The configuration classes import nothing heavy; the agents and the training loop (jax, flax,
brax) load on first use, so building or printing a config (`python -m experiments.run
--help`) starts in a fraction of a second.
"""

import importlib

from purerl.config import (
    Config,
    ConfigError,
    CRLConfig,
    EnvConfig,
    PPOConfig,
    TrainConfig,
    validate,
)

_LAZY = {
    "CRLAgent": "purerl.agents",
    "CRLState": "purerl.agents",
    "PPOAgent": "purerl.agents",
    "PPOState": "purerl.agents",
    "build_agent": "purerl.agents",
    "Trainer": "purerl.loop",
    "TrainState": "purerl.loop",
    "make_train": "purerl.loop",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'purerl' has no attribute {name!r}")


__all__ = [
    "CRLAgent",
    "CRLConfig",
    "CRLState",
    "Config",
    "ConfigError",
    "EnvConfig",
    "PPOAgent",
    "PPOConfig",
    "PPOState",
    "TrainConfig",
    "TrainState",
    "Trainer",
    "build_agent",
    "make_train",
    "validate",
]
