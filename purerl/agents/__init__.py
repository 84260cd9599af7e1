"""Agents: one package per algorithm (config, losses, agent, validation, shardings).

Importing this package registers every agent below in `purerl.agents.registry`; adding an
algorithm is its own package plus one name on the import line. Imports nothing heavy: each
package's agent code (jax, flax) loads when the agent is built.
"""

from purerl.agents import crl, ppo, sac  # noqa: F401  (the registry line: one name per agent)
from purerl.agents.registry import AgentSpec, get, names, of, register, specs

DEFAULT_AGENT = "ppo"
"""The agent of a `Config()` that names none."""


def build_agent(config, spec):
    """The agent `config.agent` describes, for an environment with interface `spec`
    (an envs.EnvSpec); ConfigError if its config class is not registered."""
    return of(config.agent).build(config, spec)


__all__ = ["DEFAULT_AGENT", "AgentSpec", "build_agent", "get", "names", "of", "register", "specs"]
