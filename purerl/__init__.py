"""purerl: fully jitted reinforcement learning over vmapped Brax environments."""

from purerl.agents import PPOAgent, PPOState
from purerl.config import Config, ConfigError, EnvConfig, PPOConfig, TrainConfig, validate
from purerl.loop import Trainer, TrainState, make_train

__all__ = [
    "Config",
    "ConfigError",
    "EnvConfig",
    "PPOAgent",
    "PPOConfig",
    "PPOState",
    "TrainConfig",
    "TrainState",
    "Trainer",
    "make_train",
    "validate",
]
