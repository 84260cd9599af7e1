"""Goal-conditioned SAC with hindsight experience replay (SAC+HER): config.py (fields and
validation), loss.py (soft Bellman target, twin-critic loss, Polyak averaging), agent.py."""

from purerl.agents.registry import AgentSpec, register
from purerl.agents.sac.config import SACConfig, validate


def build(config, spec):
    from purerl.agents.sac.agent import SACAgent

    return SACAgent(config.agent, spec, config.train.num_envs, config.env.episode_length)


def shardings(state, mesh):
    from purerl.replay import buffer_shardings

    return buffer_shardings(state, mesh)  # the buffer's columns follow their environments


SPEC = register(AgentSpec("sac", SACConfig, validate, build, shardings))

__all__ = ["SACConfig", "SPEC"]
