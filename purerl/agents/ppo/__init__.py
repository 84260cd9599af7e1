"""Proximal policy optimisation (Schulman et al., 2017) with the options of Brax's trainer,
PureJaxRL and CleanRL: config.py (fields and validation), loss.py, agent.py."""

from purerl.agents.ppo.config import PPOConfig, validate
from purerl.agents.registry import AgentSpec, register


def build(config, spec):
    from purerl.agents.ppo.agent import PPOAgent

    return PPOAgent(config.agent, spec, config.train, config.env.episode_length)


# Every part of PPO's state (parameters, optimiser, normalisers) is replicated over devices.
SPEC = register(AgentSpec("ppo", PPOConfig, validate, build))

__all__ = ["PPOConfig", "SPEC"]
