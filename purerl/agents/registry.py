"""The agent registry: the one place the rest of purerl learns which algorithms exist.

Each algorithm's package (purerl/agents/<name>/__init__.py) registers one `AgentSpec` when it
is imported; purerl/agents/__init__.py imports every such package (one line per agent). The
config core, the loop, the device layer, checkpoints, the CLI and sweeps look agents up here
and never name one. A config whose agent is not registered is an error, never a fallback.

Imports nothing heavy: `build` and `shardings` import the agent's jax code when called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from purerl.checks import ConfigError

if TYPE_CHECKING:
    from jax.sharding import Mesh

    from envs import EnvSpec
    from purerl.config import Config
    from purerl.types import Agent


@dataclass(frozen=True)
class AgentSpec:
    """One algorithm, as the rest of purerl sees it.

    name: what configs and saved runs call it (`agent_type` in config.json).
    config: its frozen config dataclass (the `agent` section; every field documented).
    validate: checks `config.agent` against the whole config; raises ConfigError naming the
        field (`agent.x`, `train.y`, `env.z`) and the fix. Called after the env and train
        sections passed their own checks.
    build: (config, env spec) -> the agent (init / act / update, purerl.types.Agent).
    shardings: (agent state or its eval_shape, mesh) -> a NamedSharding per leaf, for state
        that is split over the mesh's environment axis (e.g. a replay buffer's columns);
        None: the whole agent state is replicated on every device.
    """

    name: str
    config: type
    validate: Callable[[Config], None]
    build: Callable[[Config, EnvSpec], Agent]
    shardings: Callable[[Any, Mesh], Any] | None = None


_AGENTS: dict[str, AgentSpec] = {}


def register(spec: AgentSpec) -> AgentSpec:
    """Adds `spec`; a second agent with the same name or config class is a programming error."""
    for other in _AGENTS.values():
        if spec.name == other.name or spec.config is other.config:
            raise ValueError(f"agent {spec.name!r} clashes with registered agent {other.name!r}")
    _AGENTS[spec.name] = spec
    return spec


def names() -> tuple[str, ...]:
    """The registered agents' names, in registration order."""
    return tuple(_AGENTS)


def specs() -> tuple[AgentSpec, ...]:
    return tuple(_AGENTS.values())


def get(name: str) -> AgentSpec:
    """The agent called `name`; ConfigError listing the registered ones otherwise."""
    if name not in _AGENTS:
        raise ConfigError(
            "agent_type", f"{name!r} names no agent; choose a registered one: {', '.join(_AGENTS)}"
        )
    return _AGENTS[name]


def of(agent_config: object) -> AgentSpec:
    """The agent whose config class `agent_config` is exactly (subclasses do not count: a
    subclass may change what the agent does, so it registers itself)."""
    for spec in _AGENTS.values():
        if type(agent_config) is spec.config:
            return spec
    raise ConfigError(
        "agent",
        f"{type(agent_config).__name__} is not a registered agent config; register an AgentSpec "
        f"for it (purerl/agents/registry.py) or use one of "
        f"{', '.join(s.config.__name__ for s in _AGENTS.values())}",
    )
