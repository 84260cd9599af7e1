"""Typed, frozen configuration, validated once before anything compiles.

Every field carries a docstring (the CLI shows it under --help). Shape-defining fields (sizes,
counts, lengths) are static; numeric hyperparameters are only ever used in array arithmetic.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import envs

Activation = Literal["tanh", "relu", "swish", "elu"]
ContinuousDistribution = Literal["tanh_normal", "clipped_normal"]


class ConfigError(ValueError):
    """An invalid configuration: `field` names the offending field, the message says the fix."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name

    def __str__(self) -> str:
        return f"{self.field}: {self.args[0]}"


@dataclass(frozen=True)
class EnvConfig:
    name: str = "cartpole"
    """Environment name: purerl's own (cartpole, point_reach) or any brax registry name."""
    backend: str | None = None
    """Brax physics backend (generalized, spring, positional, mjx); None takes brax's default."""
    episode_length: int = 500
    """Time limit in steps; reaching it truncates the episode (learners bootstrap there)."""


@dataclass(frozen=True)
class TrainConfig:
    num_envs: int = 64
    """Parallel environments stepped in one batch (the batch axis a device mesh shards)."""
    unroll_length: int = 32
    """Steps collected from every environment between updates."""
    total_env_steps: int = 200_000
    """Training budget in environment steps; rounded down to whole evaluation intervals."""
    num_evals: int = 10
    """Deterministic evaluations during training (one after each equal training chunk)."""
    num_eval_envs: int = 32
    """Environments (one episode each) per deterministic evaluation."""
    normalize_observations: bool = True
    """Normalise observations with running mean/variance updated inside the jitted program."""
    seed: int = 0
    """Random seed: the same seed gives identical numbers."""

    @property
    def steps_per_iteration(self) -> int:
        """Environment steps consumed by one collect-and-update iteration."""
        return self.num_envs * self.unroll_length

    @property
    def iterations_per_eval(self) -> int:
        return self.total_env_steps // (self.steps_per_iteration * self.num_evals)

    @property
    def num_iterations(self) -> int:
        return self.iterations_per_eval * self.num_evals


@dataclass(frozen=True)
class PPOConfig:
    learning_rate: float = 3e-4
    """Adam step size."""
    anneal_learning_rate: bool = False
    """Decay the learning rate linearly to zero over the run."""
    num_epochs: int = 4
    """Passes over each collected batch."""
    num_minibatches: int = 4
    """Minibatches per epoch; must divide num_envs * unroll_length."""
    discount: float = 0.99
    """Reward discount gamma."""
    gae_lambda: float = 0.95
    """GAE lambda: bias/variance trade-off of the advantage estimate."""
    clip_epsilon: float = 0.2
    """PPO ratio clipping range."""
    clip_value_loss: bool = False
    """Also clip the value prediction to within clip_epsilon of its old value."""
    value_loss_coef: float = 0.5
    """Weight of the value loss."""
    entropy_coef: float = 0.01
    """Weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Global-norm gradient clipping threshold."""
    normalize_advantages: bool = True
    """Standardise advantages within each minibatch."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before advantage estimation."""
    policy_hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the policy network."""
    value_hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the value network."""
    activation: Activation = "tanh"
    """Hidden-layer nonlinearity of both networks."""
    action_distribution: ContinuousDistribution = "tanh_normal"
    """Continuous actions: tanh-squashed Gaussian or Gaussian clipped to [-1, 1]."""
    init_log_std: float = 0.0
    """Initial log standard deviation of the (state-independent) Gaussian policy."""


@dataclass(frozen=True)
class Config:
    env: EnvConfig = field(default_factory=EnvConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    agent: PPOConfig = field(default_factory=PPOConfig)


def _positive(config: object, section: str, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if value <= 0:
            raise ConfigError(f"{section}.{name}", f"must be positive, got {value}")


def _in_range(value: float, name: str, low: float, high: float, closed_low: bool) -> None:
    ok = (low <= value if closed_low else low < value) and value <= high
    if not ok:
        bracket = "[" if closed_low else "("
        raise ConfigError(name, f"must be in {bracket}{low}, {high}], got {value}")


def validate(config: Config) -> Config:
    """Checks every field and cross-field constraint; raises ConfigError naming the fix."""
    env, train, agent = config.env, config.train, config.agent
    if env.name not in envs.names():
        raise ConfigError(
            "env.name", f"unknown environment {env.name!r}; choose one of {', '.join(envs.names())}"
        )
    if env.backend is not None:
        allowed = ("jax",) if env.name in envs.OWN_NAMES else envs.BRAX_BACKENDS
        if env.backend not in allowed:
            raise ConfigError(
                "env.backend",
                f"{env.backend!r} does not apply to {env.name}; "
                f"choose one of {', '.join(allowed)} or leave it unset",
            )
    _positive(env, "env", "episode_length")
    _positive(train, "train", "num_envs", "unroll_length", "total_env_steps", "num_evals")
    _positive(train, "train", "num_eval_envs")
    _positive(agent, "agent", "learning_rate", "num_epochs", "num_minibatches", "max_grad_norm")
    _positive(agent, "agent", "clip_epsilon", "reward_scale")
    for name in ("value_loss_coef", "entropy_coef"):
        if getattr(agent, name) < 0:
            raise ConfigError(f"agent.{name}", f"must be >= 0, got {getattr(agent, name)}")
    _in_range(agent.discount, "agent.discount", 0.0, 1.0, closed_low=True)
    _in_range(agent.gae_lambda, "agent.gae_lambda", 0.0, 1.0, closed_low=True)
    for name in ("policy_hidden_sizes", "value_hidden_sizes"):
        sizes = getattr(agent, name)
        if any(size <= 0 for size in sizes):
            raise ConfigError(f"agent.{name}", f"layer widths must be positive, got {sizes}")
    batch = train.steps_per_iteration
    if batch % agent.num_minibatches:
        divisors = [d for d in range(1, min(batch, 4096) + 1) if batch % d == 0]
        near = min(divisors, key=lambda d: abs(d - agent.num_minibatches))
        raise ConfigError(
            "agent.num_minibatches",
            f"must divide num_envs * unroll_length = {batch}; e.g. --num-minibatches {near}",
        )
    needed = batch * train.num_evals
    if train.total_env_steps < needed:
        raise ConfigError(
            "train.total_env_steps",
            f"{train.total_env_steps} is less than one iteration per evaluation "
            f"(num_envs * unroll_length * num_evals = {needed}); use --total-env-steps {needed} "
            f"or more, or lower --num-evals",
        )
    return config


def replace(config: Config, **overrides: object) -> Config:
    """Returns `config` with fields replaced by name, searching the sections in order."""
    sections = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    for name, value in overrides.items():
        owner = [
            s for s, obj in sections.items() if name in {f.name for f in dataclasses.fields(obj)}
        ]
        if not owner:
            raise ConfigError(name, "no such config field")
        sections[owner[0]] = dataclasses.replace(sections[owner[0]], **{name: value})
    return Config(**sections)
