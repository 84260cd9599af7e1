"""Contrastive goal-conditioned RL (Eysenbach et al., 2022) with deep residual networks
("1000 Layer Networks for Self-Supervised RL", Wang et al., 2025): config.py (fields and
validation), loss.py (energies, contrastive objectives), agent.py."""

from purerl.agents.crl.config import CRLConfig, validate
from purerl.agents.registry import AgentSpec, register


def build(config, spec):
    from purerl.agents.crl.agent import CRLAgent

    return CRLAgent(config.agent, spec, config.train.num_envs, config.env.episode_length)


def shardings(state, mesh):
    from purerl.replay import buffer_shardings

    return buffer_shardings(state, mesh)


SPEC = register(AgentSpec("crl", CRLConfig, validate, build, shardings))

__all__ = ["CRLConfig", "SPEC"]
