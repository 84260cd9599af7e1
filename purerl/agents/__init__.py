"""Agents: init / act / update. The training loop is shared; agents differ by update."""

from envs import EnvSpec
from purerl.agents.crl import CRLAgent, CRLBatch, CRLState
from purerl.agents.ppo import PolicySample, PPOAgent, PPOState
from purerl.config import Config, ConfigError, CRLConfig, PPOConfig
from purerl.types import Agent


def build_agent(config: Config, spec: EnvSpec) -> Agent:
    """The agent `config.agent` describes, for an environment with interface `spec`."""
    train = config.train
    if type(config.agent) is CRLConfig:
        return CRLAgent(config.agent, spec, train.num_envs, config.env.episode_length)
    if type(config.agent) is PPOConfig:
        return PPOAgent(config.agent, spec, train, config.env.episode_length)
    raise ConfigError("agent", f"no agent is built from {type(config.agent).__name__}")


__all__ = [
    "CRLAgent",
    "CRLBatch",
    "CRLState",
    "PPOAgent",
    "PPOState",
    "PolicySample",
    "build_agent",
]
