"""Typed, frozen configuration, validated once before anything compiles.

A run's config has three sections: `env`, `train` (the loop's geometry and budget, shared by
every algorithm) and `agent`, whose class is one registered algorithm's config
(purerl/agents/registry.py). Every field carries a docstring (the CLI shows it under --help).
Shape-defining fields (sizes, counts, lengths) are static; numeric hyperparameters are only
ever used in array arithmetic. Imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal, Union, get_args

from purerl.agents import DEFAULT_AGENT, registry  # the package registers every agent
from purerl.checks import ConfigError, positive

FreshStarts = Literal["auto", "per_unroll", "per_step"]
FRESH_STARTS: tuple[str, ...] = get_args(FreshStarts)
Substeps = Literal["auto", "scan", "unrolled"]
SUBSTEPS: tuple[str, ...] = get_args(Substeps)


@dataclass(frozen=True)
class EnvConfig:
    name: str = "cartpole"
    """Environment name: purerl's own (pure-JAX cartpole, point_reach and point mazes; brax-based
    goal tasks: ant and humanoid goals and mazes, ant_ball, ant_push, reacher_goal, pushers,
    half_cheetah_goal; docs/ENVIRONMENTS.md) or any brax registry name. `envs.goal_names()`
    lists the goal-conditioned ones."""
    backend: str | None = None
    """Brax physics backend (generalized, spring, positional, mjx); None takes brax's default."""
    episode_length: int = 500
    """Time limit in steps; reaching it truncates the episode (learners bootstrap there)."""
    success_radius: float | None = None
    """Goal-conditioned environments: distance to the goal that counts as success; None keeps
    the environment's default."""
    single_goal: bool = False
    """Goal-conditioned environments: command the environment's one designated goal in every
    episode, in collection and evaluation (agents that relabel goals still relabel training
    goals with future states: "A Single Goal is All You Need")."""
    reset_to_first_state: bool = False
    """Start every training episode of an environment slot from the state that slot was first
    reset to, as brax's AutoResetWrapper does (for exact comparisons with Brax's trainer: each
    slot then replays one start, and one goal, for the whole run). Off: every episode starts
    from its own fresh reset. Evaluation always uses fresh resets."""
    fresh_starts: FreshStarts = "auto"
    """How training collects fresh resets (without reset_to_first_state; the episodes' starts
    are fresh resets either way, from different keys): "per_unroll" builds one per environment
    for each unroll, and resets an environment that finishes a second time in the unroll
    through a conditional on every step; "per_step" builds one per environment and step
    (unroll_length x num_envs resets and states per unroll) and needs no conditional. On a GPU
    a conditional reads its predicate back to the host and waits, every step (about 5% of
    PureJaxRL's ant configuration on an H200); on a CPU the extra resets cost 7-18% of brax's
    environment time. Memory: per_step keeps unroll_length starts per environment (ant: 2.6 kB
    each; docs/SCALING.md). "auto": "per_step" on an accelerator, "per_unroll" on a CPU."""
    substeps: Substeps = "auto"
    """How a brax environment's physics substeps (its n_frames per env step) are stepped:
    "scan", brax's own loop, or "unrolled" into the step's program, where XLA fuses across
    substeps. On a GPU, where the update is bound by kernel launches, unrolled saves them (ant,
    spring: 776 -> 667 kernels per env step, 8% of PureJaxRL's ant configuration's update); on
    a CPU its compile takes about 3x as long. "auto": "unrolled" on an accelerator, "scan" on
    a CPU. purerl's pure-JAX environments have no substeps."""

    def make_kwargs(self) -> dict:
        """Keyword arguments for `envs.make` beyond name and backend."""
        kwargs: dict = {}
        if self.success_radius is not None:
            kwargs["success_radius"] = self.success_radius
        if self.single_goal:
            kwargs["single_goal"] = True
        return kwargs


def unrolled_substeps(env: EnvConfig, backend: str) -> bool:
    """Whether brax environments step their physics substeps unrolled (`EnvConfig.substeps`)
    on `backend` (jax.default_backend())."""
    return env.substeps == "unrolled" or (env.substeps == "auto" and backend != "cpu")


def fresh_starts_per_step(env: EnvConfig, backend: str) -> bool:
    """Whether training builds one fresh start per environment and step (`EnvConfig.
    fresh_starts`) on `backend` (jax.default_backend()); never with reset_to_first_state."""
    if env.reset_to_first_state:
        return False
    return env.fresh_starts == "per_step" or (env.fresh_starts == "auto" and backend != "cpu")


@dataclass(frozen=True)
class TrainConfig:
    num_envs: int = 64
    """Parallel environments stepped in one batch (the batch axis a device mesh shards)."""
    unroll_length: int = 32
    """Steps collected from every environment in one unroll."""
    unrolls_per_iteration: int = 1
    """Consecutive unrolls collected before each update. Each unroll is its own trajectory of
    unroll_length steps (advantages bootstrap at its end), so this is Brax's geometry: Brax's
    `batch_size * num_minibatches / num_envs`, e.g. 16 unrolls of 5 for inverted_pendulum."""
    total_env_steps: int = 200_000
    """Training budget in environment steps; rounded down to whole evaluation intervals."""
    num_evals: int = 10
    """Deterministic evaluations during training (one after each equal training chunk)."""
    num_eval_envs: int = 32
    """Environments (one episode each) per deterministic evaluation."""
    seed: int = 0
    """Random seed: the same seed gives identical numbers."""
    num_devices: int = 1
    """Devices to split the environment batch over (data parallel, one program); 0: every
    device (of every process, in a multi-process run, which must use them all). num_envs
    must be a multiple of the number of devices."""
    check_finite: bool = True
    """Watch every update's losses and gradient norms, and the parameters after every chunk;
    the CLI stops at the first non-finite one (turn off to save those reductions)."""
    deterministic_eval: bool = True
    """Evaluate the policy's mode (True) or sample actions from it (False; Brax's trainer
    samples unless told deterministic_eval=True)."""

    @property
    def steps_per_iteration(self) -> int:
        """Environment steps consumed by one collect-and-update iteration."""
        return self.num_envs * self.unroll_length * self.unrolls_per_iteration

    @property
    def trajectories_per_iteration(self) -> int:
        """Trajectories (columns of the (unroll_length, columns) batch) one update sees."""
        return self.num_envs * self.unrolls_per_iteration

    @property
    def iterations_per_eval(self) -> int:
        return self.total_env_steps // (self.steps_per_iteration * self.num_evals)

    @property
    def num_iterations(self) -> int:
        return self.iterations_per_eval * self.num_evals

    @property
    def trained_env_steps(self) -> int:
        """The budget actually trained: total_env_steps rounded down to whole iterations per
        evaluation interval."""
        return self.num_iterations * self.steps_per_iteration


# The union of every registered agent's config class: the type of Config.agent (tyro and the
# type checker read it; validation and serialisation ask the registry, not this union).
AgentConfig = Union[tuple(spec.config for spec in registry.specs())]  # noqa: UP007


@dataclass(frozen=True)
class Config:
    env: EnvConfig = field(default_factory=EnvConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    agent: AgentConfig = field(default_factory=lambda: registry.get(DEFAULT_AGENT).config())
    """The algorithm and its settings: one registered agent's config."""


def validate(config: Config) -> Config:
    """Checks every field and cross-field constraint; raises ConfigError naming the fix."""
    import envs  # brax and mujoco load only when a config is checked, not to build one

    env, train = config.env, config.train
    if env.name not in envs.names():
        raise ConfigError(
            "env.name", f"unknown environment {env.name!r}; choose one of {', '.join(envs.names())}"
        )
    if env.backend is not None:
        allowed = envs.backends_for(env.name)
        if env.backend not in allowed:
            raise ConfigError(
                "env.backend",
                f"{env.backend!r} does not apply to {env.name}; "
                f"choose one of {', '.join(allowed)} or leave it unset",
            )
    positive(env, "env", "episode_length")
    if env.fresh_starts not in FRESH_STARTS:
        raise ConfigError(
            "env.fresh_starts",
            f"unknown mode {env.fresh_starts!r}; choose one of {', '.join(FRESH_STARTS)}",
        )
    if env.substeps not in SUBSTEPS:
        raise ConfigError(
            "env.substeps", f"unknown mode {env.substeps!r}; choose one of {', '.join(SUBSTEPS)}"
        )
    goal_envs = ", ".join(envs.goal_names())
    if not envs.is_goal_conditioned(env.name):
        if env.success_radius is not None:
            raise ConfigError(
                "env.success_radius",
                f"{env.name} is not goal-conditioned; leave it unset or use one of {goal_envs}",
            )
        if env.single_goal:
            raise ConfigError(
                "env.single_goal",
                f"{env.name} is not goal-conditioned; use env.single_goal=False or one of "
                f"{goal_envs}",
            )
    elif env.success_radius is not None and env.success_radius <= 0:
        raise ConfigError("env.success_radius", f"must be positive, got {env.success_radius}")
    positive(train, "train", "num_envs", "unroll_length", "total_env_steps", "num_evals")
    positive(train, "train", "num_eval_envs", "unrolls_per_iteration")
    if train.num_devices < 0:
        raise ConfigError(
            "train.num_devices", f"must be 0 (every device) or more, got {train.num_devices}"
        )
    devices = train.num_devices
    if devices != 1:
        import jax  # only asked when several devices are wanted

        available = jax.device_count()  # every process's, in a multi-process run
        devices = devices or available
        if devices > available:
            fits = max(d for d in range(1, available + 1) if train.num_envs % d == 0)
            raise ConfigError(
                "train.num_devices",
                f"{train.num_devices} devices asked for, {available} available "
                f"({jax.default_backend()}); use train.num_devices={fits} (on a CPU, "
                f"XLA_FLAGS=--xla_force_host_platform_device_count=N simulates N devices)",
            )
    if train.num_envs % devices:
        fixed = -(-train.num_envs // devices) * devices
        raise ConfigError(
            "train.num_envs",
            f"{train.num_envs} environments do not split evenly over {devices} devices "
            f"(num_devices = {train.num_devices}); e.g. train.num_envs={fixed}",
        )
    needed = train.steps_per_iteration * train.num_evals
    if train.total_env_steps < needed:
        raise ConfigError(
            "train.total_env_steps",
            f"{train.total_env_steps} is less than one iteration per evaluation "
            f"(num_envs * unroll_length * unrolls_per_iteration * num_evals = {needed}); use "
            f"train.total_env_steps={needed} or more, or lower train.num_evals",
        )
    registry.of(config.agent).validate(config)
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


def to_dict(config: Config) -> dict:
    """A JSON-ready dict of `config`, with "agent_type" naming the agent's config class."""
    return {**dataclasses.asdict(config), "agent_type": registry.of(config.agent).name}


def from_dict(data: dict) -> Config:
    """Inverse of `to_dict` (JSON lists become tuples again); extra keys are ignored.

    A field that a saved config holds in another section, where an earlier version kept it, is
    read from there when its own section lacks it (observation normalisation was a `train`
    field before it moved to its agent's config), so a run saved then resumes with the settings
    it had.
    """
    sections = {
        "env": EnvConfig,
        "train": TrainConfig,
        "agent": registry.get(data.get("agent_type")).config,
    }

    def build(section: str, cls: type):
        values = {}
        for f in dataclasses.fields(cls):
            saved = [data[s] for s in (section, *sections) if f.name in data.get(s, {})]
            if saved:
                value = saved[0][f.name]
                values[f.name] = tuple(value) if isinstance(value, list) else value
        return cls(**values)

    return Config(*(build(section, cls) for section, cls in sections.items()))
