"""Typed, frozen configuration, validated once before anything compiles.

Every field carries a docstring (the CLI shows it under --help). Shape-defining fields (sizes,
counts, lengths) are static; numeric hyperparameters are only ever used in array arithmetic.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

Activation = Literal["tanh", "relu", "swish", "elu"]
ContinuousDistribution = Literal["tanh_normal", "clipped_normal"]
Network = Literal["mlp", "residual"]
KernelInit = Literal["orthogonal", "lecun_uniform"]
PolicyScale = Literal["state_independent", "softplus"]
AdvantageEstimation = Literal["per_batch", "per_minibatch"]
Advantage = Literal["gae", "one_step_lambda_return"]
Normalization = Literal["layer_norm", "none"]
# The names of purerl.losses.contrastive's registries (tests check the two agree).
Energy = Literal["neg_l2", "neg_squared_l2", "dot", "cosine"]
ContrastiveObjective = Literal[
    "forward_infonce", "backward_infonce", "symmetric_infonce", "binary_nce"
]


class ConfigError(ValueError):
    """An invalid configuration: `field` names the offending field, the message says the fix.

    Messages name fields as `section.field` (`train.num_envs=4096`, `env.single_goal=False`),
    never as command-line flags; the CLI rewrites them into its flags when it prints them."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name

    def __str__(self) -> str:
        return f"{self.field}: {self.args[0]}"


@dataclass(frozen=True)
class EnvConfig:
    name: str = "cartpole"
    """Environment name: purerl's own (cartpole, point_reach; goal-conditioned point_maze_open,
    point_umaze, point_bigmaze, ant_goal, ant_umaze, humanoid_goal) or any brax registry
    name."""
    backend: str | None = None
    """Brax physics backend (generalized, spring, positional, mjx); None takes brax's default."""
    episode_length: int = 500
    """Time limit in steps; reaching it truncates the episode (learners bootstrap there)."""
    success_radius: float | None = None
    """Goal-conditioned environments: distance to the goal that counts as success; None keeps
    the environment's default."""
    single_goal: bool = False
    """Goal-conditioned environments: command the environment's one designated goal in every
    episode, in collection and evaluation (CRL still relabels training goals with future
    states: "A Single Goal is All You Need")."""

    def make_kwargs(self) -> dict:
        """Keyword arguments for `envs.make` beyond name and backend."""
        kwargs: dict = {}
        if self.success_radius is not None:
            kwargs["success_radius"] = self.success_radius
        if self.single_goal:
            kwargs["single_goal"] = True
        return kwargs


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
    normalize_observations: bool = True
    """Normalise observations with running mean/variance updated inside the jitted program."""
    observation_clip: float | None = 10.0
    """Normalised observations are clipped to +-this (CleanRL's 10); None leaves them
    unclipped (Brax, PureJaxRL)."""
    seed: int = 0
    """Random seed: the same seed gives identical numbers."""
    num_devices: int = 1
    """Devices to split the environment batch over (data parallel, one program); num_envs
    must be a multiple of it."""
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


@dataclass(frozen=True)
class PPOConfig:
    learning_rate: float = 3e-4
    """Adam step size."""
    anneal_learning_rate: bool = False
    """Decay the learning rate linearly to zero over the run."""
    num_epochs: int = 4
    """Passes over each collected batch."""
    num_minibatches: int = 4
    """Minibatches per epoch; must divide the batch, num_envs * unroll_length *
    unrolls_per_iteration steps."""
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
    max_grad_norm: float | None = 0.5
    """Global-norm gradient clipping threshold; None turns clipping off (Brax's default)."""
    adam_epsilon: float = 1e-5
    """Adam's epsilon (PureJaxRL and CleanRL use 1e-5, Brax optax's default 1e-8)."""
    normalize_advantages: bool = True
    """Standardise advantages within each minibatch."""
    advantage_estimation: AdvantageEstimation = "per_batch"
    """"per_batch" (PureJaxRL, CleanRL): advantages and value targets are computed once per
    collected batch, before the epochs, and minibatches are shuffled single transitions.
    "per_minibatch" (Brax): minibatches are whole trajectories (all unroll_length steps of
    num_envs * unrolls_per_iteration / num_minibatches unrolls), and advantages and
    targets are recomputed for every minibatch with the value network being trained."""
    advantage: Advantage = "gae"
    """Policy-gradient advantage: "gae" is the lambda-return minus V(s_t);
    "one_step_lambda_return" is r_t + discount * (lambda-return at t + 1) - V(s_t), Brax's
    trainer's (V-trace's) form. Value targets are the lambda-return either way."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before advantage estimation (Brax's reward_scaling)."""
    normalize_rewards: bool = False
    """Divide rewards by the running standard deviation of each environment's discounted
    return (PureJaxRL's NormalizeVecReward, gym's NormalizeReward), before reward_scale."""
    bootstrap_on_timeout: bool = True
    """On a time-limit truncation, bootstrap from the value of the final observation (True),
    or mask the step out of the advantage and value targets as Brax's trainer does by default
    (False; only for exact comparisons with Brax)."""
    policy_hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the policy network."""
    value_hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the value network."""
    activation: Activation = "tanh"
    """Hidden-layer nonlinearity of both networks."""
    network: Network = "mlp"
    """Body of the policy and value networks: "mlp" (policy_/value_hidden_sizes) or "residual"
    (the deep residual trunk of depth and width below; deep PPO is this one switch)."""
    depth: int = 4
    """network="residual" only: Dense layers inside residual blocks (multiple of 4)."""
    width: int = 256
    """network="residual" only: width of every residual layer."""
    action_distribution: ContinuousDistribution = "tanh_normal"
    """Continuous actions: tanh-squashed Gaussian or Gaussian clipped to [-1, 1]."""
    policy_scale: PolicyScale = "state_independent"
    """Continuous actions: a learned state-independent log standard deviation per action
    dimension (PureJaxRL, CleanRL), or "softplus": the policy network also outputs a raw
    scale per action and state, scale = softplus(raw) + min_std (Brax)."""
    init_log_std: float = 0.0
    """policy_scale="state_independent" only: initial log standard deviation."""
    min_std: float = 0.001
    """policy_scale="softplus" only: the smallest standard deviation (Brax: 0.001)."""
    kernel_init: KernelInit = "orthogonal"
    """Weight initialisation of MLP bodies: "orthogonal" (gain sqrt(2), policy head 0.01;
    PureJaxRL, CleanRL) or "lecun_uniform" on every layer (Brax)."""


NETWORK_NAMES = ("sa_encoder", "goal_encoder", "actor")


@dataclass(frozen=True)
class CRLConfig:
    """Contrastive goal-conditioned RL (Eysenbach et al., 2022) with deep residual networks
    ("1000 Layer Networks for Self-Supervised RL", Wang et al., 2025)."""

    depth: int = 4
    """Dense layers inside residual blocks (multiple of 4) of all three networks, unless a
    per-network depth is set."""
    width: int = 256
    """Residual layer width of all three networks, unless a per-network width is set."""
    sa_encoder_depth: int | None = None
    """Depth of the state-action encoder phi(s, a); None uses depth."""
    sa_encoder_width: int | None = None
    """Width of the state-action encoder; None uses width."""
    goal_encoder_depth: int | None = None
    """Depth of the goal encoder psi(g); None uses depth."""
    goal_encoder_width: int | None = None
    """Width of the goal encoder; None uses width."""
    actor_depth: int | None = None
    """Depth of the actor pi(a | s, g); None uses depth."""
    actor_width: int | None = None
    """Width of the actor; None uses width."""
    representation_size: int = 64
    """Output size of both encoders (the space energies are measured in)."""
    activation: Activation = "swish"
    """Nonlinearity of every residual layer."""
    normalization: Normalization = "layer_norm"
    """Normalisation after every Dense layer of the trunks."""
    remat: bool = False
    """Recompute residual blocks in the backward pass instead of storing their activations
    (less memory at depth, about one extra forward pass of compute)."""
    energy: Energy = "neg_l2"
    """Critic energy between phi(s, a) and psi(g): neg_l2, neg_squared_l2, dot or cosine."""
    objective: ContrastiveObjective = "forward_infonce"
    """Contrastive objective over the batch's logits: forward_infonce, backward_infonce,
    symmetric_infonce or binary_nce."""
    logsumexp_coef: float = 0.1
    """Weight of the logsumexp penalty mean(logsumexp(logits, rows)^2)."""
    critic_learning_rate: float = 3e-4
    """Adam step size of both encoders."""
    actor_learning_rate: float = 3e-4
    """Adam step size of the actor."""
    alpha_learning_rate: float = 3e-4
    """Adam step size of the entropy temperature (log alpha)."""
    target_entropy: float | None = None
    """Entropy the temperature is tuned toward; None uses -0.5 x action size."""
    batch_size: int = 256
    """(state, action, future goal) triples per gradient step; the other rows are negatives."""
    updates_per_iteration: int = 64
    """Gradient steps after each collect. Update-to-data ratio = this / (num_envs x
    unroll_length); the paper's "UTD 1:40" is one step per 40 env steps."""
    buffer_size: int = 1_000_000
    """Replay capacity in env steps, over all environments (a multiple of num_envs)."""
    warmup_env_steps: int = 10_000
    """Env steps collected before the first gradient step."""
    future_goal_discount: float = 0.99
    """Relabelling: a goal k >= 1 steps ahead in the same trajectory is drawn with probability
    proportional to this^k (the last stored step of a trajectory uses its own state, k = 0)."""

    def network_size(self, network: str) -> tuple[int, int]:
        """(width, depth) of one of NETWORK_NAMES, per-network fields taking precedence."""
        width = getattr(self, f"{network}_width")
        depth = getattr(self, f"{network}_depth")
        return (self.width if width is None else width, self.depth if depth is None else depth)


AgentConfig = PPOConfig | CRLConfig


@dataclass(frozen=True)
class Config:
    env: EnvConfig = field(default_factory=EnvConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    agent: AgentConfig = field(default_factory=PPOConfig)


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


def _residual_depth(depth: int, name: str) -> None:
    if depth <= 0 or depth % 4:
        options = sorted({max(4, depth - depth % 4), max(4, depth - depth % 4 + 4)})
        raise ConfigError(
            name,
            f"must be a positive multiple of 4 (Dense layers in 4-layer residual blocks), got "
            f"{depth}; e.g. {' or '.join(str(o) for o in options)}",
        )


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
    _positive(env, "env", "episode_length")
    goal_envs = ", ".join(envs.GOAL_NAMES)
    if env.name not in envs.GOAL_NAMES:
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
    _positive(train, "train", "num_envs", "unroll_length", "total_env_steps", "num_evals")
    _positive(train, "train", "num_eval_envs", "num_devices", "unrolls_per_iteration")
    if train.observation_clip is not None and train.observation_clip <= 0:
        raise ConfigError(
            "train.observation_clip",
            f"must be positive, got {train.observation_clip}; use None for no clipping",
        )
    if train.num_envs % train.num_devices:
        fixed = -(-train.num_envs // train.num_devices) * train.num_devices
        raise ConfigError(
            "train.num_envs",
            f"{train.num_envs} environments do not split evenly over num_devices = "
            f"{train.num_devices}; e.g. train.num_envs={fixed} (for CRL agent.buffer_size "
            f"must then be a multiple of it too)",
        )
    if train.num_devices > 1:
        import jax  # only asked when several devices are wanted

        available = jax.device_count()
        if train.num_devices > available:
            fits = max(d for d in range(1, available + 1) if train.num_envs % d == 0)
            raise ConfigError(
                "train.num_devices",
                f"{train.num_devices} devices asked for, {available} available "
                f"({jax.default_backend()}); use train.num_devices={fits} (on a CPU, "
                f"XLA_FLAGS=--xla_force_host_platform_device_count=N simulates N devices)",
            )
    needed = train.steps_per_iteration * train.num_evals
    if train.total_env_steps < needed:
        raise ConfigError(
            "train.total_env_steps",
            f"{train.total_env_steps} is less than one iteration per evaluation "
            f"(num_envs * unroll_length * unrolls_per_iteration * num_evals = {needed}); use "
            f"train.total_env_steps={needed} or more, or lower train.num_evals",
        )
    validate_agent = {PPOConfig: _validate_ppo, CRLConfig: _validate_crl}.get(type(config.agent))
    if validate_agent is None:
        raise ConfigError("agent", f"unknown agent config {type(config.agent).__name__}")
    validate_agent(config)
    return config


def _validate_ppo(config: Config) -> None:
    train, agent = config.train, config.agent
    _positive(agent, "agent", "learning_rate", "num_epochs", "num_minibatches", "adam_epsilon")
    _positive(agent, "agent", "clip_epsilon", "reward_scale", "width", "min_std")
    if agent.max_grad_norm is not None and agent.max_grad_norm <= 0:
        raise ConfigError(
            "agent.max_grad_norm",
            f"must be positive, got {agent.max_grad_norm}; use None to turn clipping off",
        )
    for name in ("value_loss_coef", "entropy_coef"):
        if getattr(agent, name) < 0:
            raise ConfigError(f"agent.{name}", f"must be >= 0, got {getattr(agent, name)}")
    _in_range(agent.discount, "agent.discount", 0.0, 1.0, closed_low=True)
    _in_range(agent.gae_lambda, "agent.gae_lambda", 0.0, 1.0, closed_low=True)
    for name in ("policy_hidden_sizes", "value_hidden_sizes"):
        sizes = getattr(agent, name)
        if any(size <= 0 for size in sizes):
            raise ConfigError(f"agent.{name}", f"layer widths must be positive, got {sizes}")
    if agent.network == "residual":
        _residual_depth(agent.depth, "agent.depth")
    columns = train.trajectories_per_iteration
    if agent.advantage_estimation == "per_minibatch" and columns % agent.num_minibatches:
        raise ConfigError(
            "agent.num_minibatches",
            f"advantage_estimation=per_minibatch splits the trajectories into minibatches of "
            f"whole ones, so it must divide num_envs * unrolls_per_iteration = {columns}; e.g. "
            f"agent.num_minibatches={_nearest_divisor(columns, agent.num_minibatches)}",
        )
    batch = train.steps_per_iteration
    if batch % agent.num_minibatches:
        raise ConfigError(
            "agent.num_minibatches",
            f"must divide num_envs * unroll_length * unrolls_per_iteration = {batch}; e.g. "
            f"agent.num_minibatches={_nearest_divisor(batch, agent.num_minibatches)}",
        )


def _nearest_divisor(n: int, wanted: int) -> int:
    divisors = [d for d in range(1, min(n, 4096) + 1) if n % d == 0]
    return min(divisors, key=lambda d: abs(d - wanted))


def _validate_crl(config: Config) -> None:
    import envs

    env, train, agent = config.env, config.train, config.agent
    if env.name not in envs.GOAL_NAMES:
        raise ConfigError(
            "env.name",
            f"CRL needs a goal-conditioned environment, {env.name!r} is not; choose one of "
            f"{', '.join(envs.GOAL_NAMES)}",
        )
    if train.normalize_observations:
        raise ConfigError(
            "train.normalize_observations",
            "CRL compares states and goals in the same coordinates, so it does not normalise "
            "observations; use train.normalize_observations=False",
        )
    _positive(agent, "agent", "width", "representation_size", "batch_size")
    _positive(agent, "agent", "critic_learning_rate", "actor_learning_rate")
    _positive(agent, "agent", "alpha_learning_rate", "updates_per_iteration", "buffer_size")
    if agent.logsumexp_coef < 0:
        raise ConfigError("agent.logsumexp_coef", f"must be >= 0, got {agent.logsumexp_coef}")
    if agent.warmup_env_steps < 0:
        raise ConfigError("agent.warmup_env_steps", f"must be >= 0, got {agent.warmup_env_steps}")
    if train.unrolls_per_iteration != 1:
        raise ConfigError(
            "train.unrolls_per_iteration",
            "CRL's replay buffer stores each environment's steps as one continuing column, "
            "so it collects one unroll per iteration; use train.unroll_length="
            f"{train.unroll_length * train.unrolls_per_iteration} and "
            "train.unrolls_per_iteration=1",
        )
    _residual_depth(agent.depth, "agent.depth")
    for network in NETWORK_NAMES:
        for part in ("width", "depth"):
            value = getattr(agent, f"{network}_{part}")
            if value is not None:
                if part == "depth":
                    _residual_depth(value, f"agent.{network}_depth")
                elif value <= 0:
                    raise ConfigError(f"agent.{network}_width", f"must be positive, got {value}")
    if not 0.0 < agent.future_goal_discount < 1.0:
        raise ConfigError(
            "agent.future_goal_discount",
            f"must be in (0, 1), got {agent.future_goal_discount}; the paper uses 0.99",
        )
    if agent.batch_size < 2:
        raise ConfigError(
            "agent.batch_size",
            f"needs at least 2 rows (one positive, one negative), got {agent.batch_size}",
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


AGENT_CONFIGS: dict[str, type] = {"ppo": PPOConfig, "crl": CRLConfig}


def to_dict(config: Config) -> dict:
    """A JSON-ready dict of `config`, with "agent_type" naming the agent's config class."""
    agent_type = next((k for k, cls in AGENT_CONFIGS.items() if type(config.agent) is cls), None)
    if agent_type is None:
        raise ConfigError("agent", f"unknown agent config {type(config.agent).__name__}")
    return {**dataclasses.asdict(config), "agent_type": agent_type}


def from_dict(data: dict) -> Config:
    """Inverse of `to_dict` (JSON lists become tuples again); extra keys are ignored."""

    def build(cls: type, values: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names}
        )

    agent_type = data.get("agent_type")
    if agent_type not in AGENT_CONFIGS:
        raise ConfigError(
            "agent_type",
            f"{agent_type!r} names no agent; the saved config must say one of "
            f"{', '.join(AGENT_CONFIGS)}",
        )
    agent_cls = AGENT_CONFIGS[agent_type]
    return Config(
        build(EnvConfig, data["env"]),
        build(TrainConfig, data["train"]),
        build(agent_cls, data["agent"]),
    )
