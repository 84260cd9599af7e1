"""What every config section shares: the error type, value checks, and rules stated once.

Imports nothing heavy (no jax): configs are built and checked before anything compiles, and
the CLI's --help must answer fast. Agent configs (purerl/agents/<name>/config.py) use these
helpers for their own fields.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from purerl.config import Config

Activation = Literal["tanh", "relu", "swish", "elu"]
Normalization = Literal["layer_norm", "none"]

# Residual trunks are stacks of 4-Dense-layer blocks, so depth counts layers in fours.
LAYERS_PER_RESIDUAL_BLOCK = 4


class ConfigError(ValueError):
    """An invalid configuration: `field` names the offending field, the message says the fix.

    Messages name fields as `section.field` (`train.num_envs=4096`, `env.single_goal=False`),
    never as command-line flags; the CLI rewrites them into its flags when it prints them."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name

    def __str__(self) -> str:
        return f"{self.field}: {self.args[0]}"


def residual_depth_problem(depth: int) -> str | None:
    """Why `depth` is not a valid residual-trunk depth, with the nearest valid ones; None if
    it is. The one statement of the depth rule: config validation and the networks both ask."""
    block = LAYERS_PER_RESIDUAL_BLOCK
    if depth > 0 and depth % block == 0:
        return None
    options = sorted({max(block, depth - depth % block), max(block, depth - depth % block + block)})
    return (
        f"must be a positive multiple of {block} (Dense layers in {block}-layer residual "
        f"blocks), got {depth}; e.g. {' or '.join(str(o) for o in options)}"
    )


def residual_depth(depth: int, name: str) -> None:
    """Raises ConfigError for field `name` unless `depth` is a valid residual depth."""
    problem = residual_depth_problem(depth)
    if problem is not None:
        raise ConfigError(name, problem)


def positive(config: object, section: str, *names: str) -> None:
    """Raises ConfigError for the first of `names` (fields of `config`) that is not > 0."""
    for name in names:
        value = getattr(config, name)
        if value <= 0:
            raise ConfigError(f"{section}.{name}", f"must be positive, got {value}")


def non_negative(config: object, section: str, *names: str) -> None:
    """Raises ConfigError for the first of `names` (fields of `config`) that is < 0."""
    for name in names:
        value = getattr(config, name)
        if value < 0:
            raise ConfigError(f"{section}.{name}", f"must be >= 0, got {value}")


def in_range(value: float, name: str, low: float, high: float, closed_low: bool) -> None:
    """Raises ConfigError for field `name` unless low <(=) value <= high."""
    ok = (low <= value if closed_low else low < value) and value <= high
    if not ok:
        bracket = "[" if closed_low else "("
        raise ConfigError(name, f"must be in {bracket}{low}, {high}], got {value}")


def nearest_divisor(n: int, wanted: int) -> int:
    """The divisor of `n` closest to `wanted` (to suggest a valid minibatch count or size)."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    divisors = sorted({*small, *(n // d for d in small)})  # ties go to the smaller
    return min(divisors, key=lambda d: abs(d - wanted))


def goal_conditioned(config: Config, agent: str) -> None:
    """Raises ConfigError on env.name unless the environment is goal-conditioned (for agents
    that read a goal from the observation and relabel it)."""
    import envs  # brax loads only when a config is checked

    if not envs.is_goal_conditioned(config.env.name):
        raise ConfigError(
            "env.name",
            f"{agent} needs a goal-conditioned environment, {config.env.name!r} is not; choose "
            f"one of {', '.join(envs.goal_names())}",
        )


def replay_buffer(config: Config, agent_name: str) -> None:
    """Checks the fields every agent with purerl.replay's trajectory buffer has (buffer_size,
    batch_size, updates_per_iteration, warmup_env_steps, future_goal_discount) against the
    run's geometry: the buffer stores whole environment columns of at least one episode."""
    env, train, agent = config.env, config.train, config.agent
    positive(agent, "agent", "batch_size", "updates_per_iteration", "buffer_size")
    if agent.warmup_env_steps < 0:
        raise ConfigError("agent.warmup_env_steps", f"must be >= 0, got {agent.warmup_env_steps}")
    if train.unrolls_per_iteration != 1:
        raise ConfigError(
            "train.unrolls_per_iteration",
            f"{agent_name}'s replay buffer stores each environment's steps as one continuing "
            "column, so it collects one unroll per iteration; use train.unroll_length="
            f"{train.unroll_length * train.unrolls_per_iteration} and "
            "train.unrolls_per_iteration=1",
        )
    if not 0.0 < agent.future_goal_discount < 1.0:
        raise ConfigError(
            "agent.future_goal_discount",
            f"must be in (0, 1), got {agent.future_goal_discount}; the papers use 0.99",
        )

    def columns(steps: int) -> int:  # whole environment columns holding `steps`
        return -(-steps // train.num_envs) * train.num_envs

    longest = max(train.unroll_length, env.episode_length)
    valid = max(columns(agent.buffer_size), longest * train.num_envs, columns(agent.batch_size))
    if agent.buffer_size % train.num_envs:
        raise ConfigError(
            "agent.buffer_size",
            f"must be a multiple of num_envs = {train.num_envs} (the buffer stores whole "
            f"environment columns); e.g. agent.buffer_size={valid}",
        )
    if agent.buffer_size // train.num_envs < longest:
        raise ConfigError(
            "agent.buffer_size",
            f"holds {agent.buffer_size // train.num_envs} steps per environment, fewer than "
            f"one episode (episode_length {env.episode_length}) or one collect (unroll_length "
            f"{train.unroll_length}); use agent.buffer_size={valid} or more",
        )
    if agent.buffer_size < agent.batch_size:
        raise ConfigError(
            "agent.buffer_size",
            f"{agent.buffer_size} is smaller than batch_size {agent.batch_size}; use "
            f"agent.buffer_size={valid} or a smaller agent.batch_size",
        )
    if agent.warmup_env_steps > agent.buffer_size:
        raise ConfigError(
            "agent.warmup_env_steps",
            f"{agent.warmup_env_steps} exceeds buffer_size {agent.buffer_size}, so training "
            f"would never start; use agent.warmup_env_steps={agent.buffer_size} or less",
        )
    total = train.num_iterations * train.steps_per_iteration
    if agent.warmup_env_steps >= total:
        raise ConfigError(
            "agent.warmup_env_steps",
            f"{agent.warmup_env_steps} is not below the run's {total} env steps, so no "
            f"gradient step would ever be taken; lower agent.warmup_env_steps or raise "
            f"train.total_env_steps",
        )
