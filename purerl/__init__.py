"""purerl: fully jitted reinforcement learning over vmapped Brax environments."""

from purerl.agents import CRLAgent, CRLState, PPOAgent, PPOState, build_agent
from purerl.config import (
    Config,
    ConfigError,
    CRLConfig,
    EnvConfig,
    PPOConfig,
    TrainConfig,
    validate,
)
from purerl.loop import Trainer, TrainState, make_train

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
