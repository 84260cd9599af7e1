"""SAC+HER's configuration and its validation (imports nothing heavy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from purerl.checks import (
    Activation,
    Normalization,
    goal_conditioned,
    in_range,
    positive,
    replay_buffer,
    residual_depth,
)

if TYPE_CHECKING:
    from purerl.config import Config


@dataclass(frozen=True)
class SACConfig:
    """Goal-conditioned soft actor-critic (Haarnoja et al., 2018) with hindsight experience
    replay (Andrychowicz et al., 2017): the baseline of JaxGCRL and of "1000 Layer Networks
    for Self-Supervised RL"."""

    depth: int = 4
    """Dense layers inside residual blocks (multiple of 4) of the actor and both critics."""
    width: int = 256
    """Residual layer width of the actor and both critics."""
    activation: Activation = "swish"
    """Nonlinearity of every residual layer."""
    normalization: Normalization = "layer_norm"
    """Normalisation after every Dense layer of the trunks."""
    remat: bool = False
    """Recompute residual blocks in the backward pass instead of storing their activations."""
    discount: float = 0.99
    """Reward discount gamma of the soft Bellman target."""
    tau: float = 0.005
    """Polyak averaging rate of the target critics: target <- (1 - tau) target + tau online,
    after every gradient step."""
    critic_learning_rate: float = 3e-4
    """Adam step size of the twin Q critics."""
    actor_learning_rate: float = 3e-4
    """Adam step size of the actor."""
    alpha_learning_rate: float = 3e-4
    """Adam step size of the entropy temperature (log alpha)."""
    target_entropy: float | None = None
    """Entropy the temperature is tuned toward; None uses -action size (SAC's default)."""
    relabel_fraction: float = 0.5
    """Fraction of each batch whose goal is replaced by a state its trajectory reached later
    (HER's "future" strategy); the rest keep the goal the environment commanded."""
    future_goal_discount: float = 0.99
    """Relabelling: a goal k >= 1 steps ahead in the same trajectory is drawn with probability
    proportional to this^k (the last stored step of a trajectory uses its own state, k = 0)."""
    batch_size: int = 256
    """Transitions per gradient step."""
    updates_per_iteration: int = 64
    """Gradient steps after each collect (update-to-data ratio = this / (num_envs x
    unroll_length))."""
    buffer_size: int = 1_000_000
    """Replay capacity in env steps, over all environments (a multiple of num_envs)."""
    warmup_env_steps: int = 10_000
    """Env steps collected before the first gradient step."""


def validate(config: Config) -> None:
    """SAC+HER's fields, the environment it needs, and the replay buffer's geometry."""
    agent = config.agent
    goal_conditioned(config, "SAC+HER")
    replay_buffer(config, "SAC+HER")
    residual_depth(agent.depth, "agent.depth")
    positive(agent, "agent", "width", "critic_learning_rate", "actor_learning_rate")
    positive(agent, "agent", "alpha_learning_rate")
    in_range(agent.discount, "agent.discount", 0.0, 1.0, closed_low=True)
    in_range(agent.tau, "agent.tau", 0.0, 1.0, closed_low=False)
    in_range(agent.relabel_fraction, "agent.relabel_fraction", 0.0, 1.0, closed_low=True)
