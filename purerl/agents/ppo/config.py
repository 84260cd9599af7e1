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
    from purerl.config import Config

ContinuousDistribution = Literal["tanh_normal", "clipped_normal"]
Network = Literal["mlp", "residual"]
KernelInit = Literal["orthogonal", "lecun_uniform"]
PolicyScale = Literal["state_independent", "softplus"]
AdvantageEstimation = Literal["per_batch", "per_minibatch"]
Advantage = Literal["gae", "one_step_lambda_return"]


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
    normalize_observations: bool = True
    """Normalise observations with running mean/variance updated inside the jitted program."""
    observation_clip: float | None = 10.0
    """Normalised observations are clipped to +-this (CleanRL's 10); None leaves them
    unclipped (Brax, PureJaxRL)."""
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


def validate(config: Config) -> None:
    """PPO's fields, and how the batch splits into minibatches."""
    train, agent = config.train, config.agent
    positive(agent, "agent", "learning_rate", "num_epochs", "num_minibatches", "adam_epsilon")
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
    columns = train.trajectories_per_iteration
    if agent.advantage_estimation == "per_minibatch" and columns % agent.num_minibatches:
        raise ConfigError(
            "agent.num_minibatches",
            f"advantage_estimation=per_minibatch splits the trajectories into minibatches of "
            f"whole ones, so it must divide num_envs * unrolls_per_iteration = {columns}; e.g. "
            f"agent.num_minibatches={nearest_divisor(columns, agent.num_minibatches)}",
        )
    batch = train.steps_per_iteration
    if batch % agent.num_minibatches:
        raise ConfigError(
            "agent.num_minibatches",
            f"must divide num_envs * unroll_length * unrolls_per_iteration = {batch}; e.g. "
            f"agent.num_minibatches={nearest_divisor(batch, agent.num_minibatches)}",
        )
