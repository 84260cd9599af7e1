"""Agents: init / act / update. The training loop is shared; agents differ by update."""

from purerl.agents.ppo import PolicySample, PPOAgent, PPOState

__all__ = ["PPOAgent", "PPOState", "PolicySample"]
