"""PPO's configuration and its validation (imports nothing heavy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from purerl.checks import (
    Activation,
    ConfigError,
    in_range,
    nearest_divisor,
    non_negative,
    positive,
    residual_depth,
)

if TYPE_CHECKING:
    from purerl.config import Config, TrainConfig

ContinuousDistribution = Literal["tanh_normal", "clipped_normal"]
Network = Literal["mlp", "residual"]
KernelInit = Literal["orthogonal", "lecun_uniform"]
PolicyScale = Literal["state_independent", "softplus"]
AdvantageEstimation = Literal["per_batch", "per_minibatch"]
Advantage = Literal["gae", "one_step_lambda_return"]
ObservationStatistics = Literal["updated", "as_acted"]

# Minibatches per epoch when a config sets neither num_minibatches nor minibatch_size.
DEFAULT_NUM_MINIBATCHES = 4


@dataclass(frozen=True)
class PPOConfig:
    learning_rate: float = 3e-4
    """Adam step size."""
    anneal_learning_rate: bool = False
    """Decay the learning rate linearly to zero over the run."""
    num_epochs: int = 4
    """Passes over each collected batch."""
    num_minibatches: int | None = None
    """Minibatches per epoch, whatever the batch size; must divide the batch, num_envs *
    unroll_length * unrolls_per_iteration steps. Set this or minibatch_size, not both;
    neither set means 4 minibatches."""
    minibatch_size: int | None = None
    """Transitions (environment steps) per gradient step, whatever the batch size: the number
    of minibatches per epoch is then the batch divided by this, so it grows with num_envs
    (the co-scaling recipe of Beukman et al. 2026). Must divide the batch, and with
    advantage_estimation="per_minibatch" be a multiple of unroll_length (whole
    trajectories). Set this or num_minibatches, not both."""
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
    normalize_observations: bool = True
    """Normalise observations with running mean/variance updated inside the jitted program."""
    observation_clip: float | None = 10.0
    """Normalised observations are clipped to +-this (CleanRL's 10); None leaves them
    unclipped (Brax, PureJaxRL)."""
    observation_statistics: ObservationStatistics = "updated"
    """normalize_observations only: which statistics normalise a collected batch for
    learning. "updated" (Brax): the running statistics absorb the batch first, and the
    whole batch is normalised with them.
    "as_acted" (PureJaxRL, CleanRL and SB3, which normalise in an environment wrapper): the
    batch is normalised with the statistics the policy acted with, so learning starts from
    the inputs that gave the stored log-probabilities (the first ratios are exactly 1), and
    the statistics absorb the batch after the update. Those wrappers update them at every
    environment step; this does once per iteration. "updated" learned faster: the policy
    then learns from the statistics it will act with next (docs/PPO_PARITY.md)."""
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

    def minibatches(self, train: TrainConfig) -> int:
        """Minibatches per epoch for `train`'s batch: num_minibatches as set, or the batch
        (num_envs * unroll_length * unrolls_per_iteration transitions) over minibatch_size,
        or DEFAULT_NUM_MINIBATCHES when neither is set. The one place the count is decided;
        validate checks it divides the batch."""
        if self.minibatch_size is not None:
            return train.steps_per_iteration // self.minibatch_size
        if self.num_minibatches is not None:
            return self.num_minibatches
        return DEFAULT_NUM_MINIBATCHES


def validate(config: Config) -> None:
    """PPO's fields, and how the batch splits into minibatches."""
    train, agent = config.train, config.agent
    positive(agent, "agent", "learning_rate", "num_epochs", "adam_epsilon")
    positive(agent, "agent", "clip_epsilon", "reward_scale", "width", "min_std")
    if agent.max_grad_norm is not None and agent.max_grad_norm <= 0:
        raise ConfigError(
            "agent.max_grad_norm",
            f"must be positive, got {agent.max_grad_norm}; use None to turn clipping off",
        )
    non_negative(agent, "agent", "value_loss_coef", "entropy_coef")
    if agent.observation_clip is not None and agent.observation_clip <= 0:
        raise ConfigError(
            "agent.observation_clip",
            f"must be positive, got {agent.observation_clip}; use None for no clipping",
        )
    in_range(agent.discount, "agent.discount", 0.0, 1.0, closed_low=True)
    in_range(agent.gae_lambda, "agent.gae_lambda", 0.0, 1.0, closed_low=True)
    for name in ("policy_hidden_sizes", "value_hidden_sizes"):
        sizes = getattr(agent, name)
        if any(size <= 0 for size in sizes):
            raise ConfigError(f"agent.{name}", f"layer widths must be positive, got {sizes}")
    if agent.network == "residual":
        residual_depth(agent.depth, "agent.depth")
    minibatch_geometry(train, agent)


def minibatch_geometry(train: TrainConfig, agent: PPOConfig) -> None:
    """At most one of num_minibatches and minibatch_size is set, and the batch splits into
    whole minibatches: of transitions (per_batch), or of whole trajectories (per_minibatch)."""
    if agent.num_minibatches is not None and agent.minibatch_size is not None:
        raise ConfigError(
            "agent.minibatch_size",
            f"agent.num_minibatches={agent.num_minibatches} and agent.minibatch_size="
            f"{agent.minibatch_size} are both set; set only one (a fixed count of minibatches, "
            "or a fixed size whose count grows with the batch), e.g. "
            "agent.num_minibatches=None to keep the size",
        )
    batch, columns = train.steps_per_iteration, train.trajectories_per_iteration
    if agent.minibatch_size is not None:
        positive(agent, "agent", "minibatch_size")
        size, length = agent.minibatch_size, train.unroll_length
        whole = size % length == 0 and columns % (size // length) == 0
        if agent.advantage_estimation == "per_minibatch" and not whole:
            # A minibatch of whole trajectories is k unrolls of unroll_length steps, k | columns.
            wanted = max(1, round(size / length))
            raise ConfigError(
                "agent.minibatch_size",
                f"advantage_estimation=per_minibatch splits the batch into minibatches of whole "
                f"trajectories of unroll_length={length} steps out of num_envs * "
                f"unrolls_per_iteration = {columns}, so it must be {length} times a divisor of "
                f"{columns}; e.g. agent.minibatch_size="
                f"{length * nearest_divisor(columns, wanted)}",
            )
        if batch % size:
            raise ConfigError(
                "agent.minibatch_size",
                f"must divide num_envs * unroll_length * unrolls_per_iteration = {batch}; e.g. "
                f"agent.minibatch_size={nearest_divisor(batch, size)}",
            )
        return
    if agent.num_minibatches is not None:
        positive(agent, "agent", "num_minibatches")
    count = agent.minibatches(train)  # num_minibatches, or the default, checked alike
    if agent.advantage_estimation == "per_minibatch" and columns % count:
        raise ConfigError(
            "agent.num_minibatches",
            f"advantage_estimation=per_minibatch splits the trajectories into minibatches of "
            f"whole ones, so it must divide num_envs * unrolls_per_iteration = {columns}; e.g. "
            f"agent.num_minibatches={nearest_divisor(columns, count)}",
        )
    if batch % count:
        raise ConfigError(
            "agent.num_minibatches",
            f"must divide num_envs * unroll_length * unrolls_per_iteration = {batch}; e.g. "
            f"agent.num_minibatches={nearest_divisor(batch, count)}",
        )
