"""CRL's configuration and its validation (imports nothing heavy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from purerl.checks import (
    Activation,
    ConfigError,
    Normalization,
    goal_conditioned,
    non_negative,
    positive,
    replay_buffer,
    residual_depth,
)

if TYPE_CHECKING:
    from purerl.config import Config

# The names of purerl.agents.crl.loss's registries, which are built from these.
Energy = Literal["neg_l2", "neg_squared_l2", "dot", "cosine"]
ContrastiveObjective = Literal[
    "forward_infonce", "backward_infonce", "symmetric_infonce", "binary_nce"
]

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


def validate(config: Config) -> None:
    """CRL's fields, the environment it needs, and the replay buffer's geometry."""
    agent = config.agent
    goal_conditioned(config, "CRL")
    replay_buffer(config, "CRL")
    positive(agent, "agent", "width", "representation_size")
    positive(agent, "agent", "critic_learning_rate", "actor_learning_rate", "alpha_learning_rate")
    non_negative(agent, "agent", "logsumexp_coef")
    residual_depth(agent.depth, "agent.depth")
    for network in NETWORK_NAMES:
        for part in ("width", "depth"):
            value = getattr(agent, f"{network}_{part}")
            if value is not None:
                if part == "depth":
                    residual_depth(value, f"agent.{network}_depth")
                elif value <= 0:
                    raise ConfigError(f"agent.{network}_width", f"must be positive, got {value}")
    if agent.batch_size < 2:
        raise ConfigError(
            "agent.batch_size",
            f"needs at least 2 rows (one positive, one negative), got {agent.batch_size}",
        )
