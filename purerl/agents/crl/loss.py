"""Contrastive goal-conditioned RL (CRL) critic losses: energies and contrastive objectives.

Pure functions of arrays (no networks, no configs). The critic is a pair of encoders:
phi(s, a) -> (B, d) "sa_repr" and psi(g) -> (B, d) "goal_repr". An energy turns them into a
(B, B) logits matrix whose diagonal holds the positive pairs (the goal that row i actually
reached) and whose off-diagonal entries are negatives drawn from the rest of the batch.
References: Eysenbach et al. 2022 (Contrastive Learning as Goal-Conditioned RL) and
Wang et al. 2025 (1000 Layer Networks for Self-Supervised RL).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import get_args

import jax
import jax.numpy as jnp

from purerl.agents.crl.config import ContrastiveObjective, Energy

# Added under square roots so that gradients stay finite where a norm or distance is zero.
# Small enough that values differ from the exact ones by at most sqrt(_EPS) = 1e-6.
_EPS = 1e-12


# --------------------------------------------------------------------------------------------
# Energies: (phi (B, d), psi (B, d)) -> logits (B, B), logits[i, j] = energy(phi_i, psi_j).
# --------------------------------------------------------------------------------------------


def _pairwise_squared_distance(sa_repr: jax.Array, goal_repr: jax.Array) -> jax.Array:
    """||phi_i - psi_j||^2 for sa_repr (B, d) and goal_repr (B, d) -> (B, B).

    Computed from explicit differences (B, B, d) rather than the expansion
    |phi|^2 + |psi|^2 - 2 phi.psi: the expansion cancels catastrophically for nearby vectors
    (it can even go negative), and the positives on the diagonal are exactly the pairs the
    critic pulls together. The (B, B, d) intermediate is small at CRL batch sizes (256 x 256 x 64
    float32 is 16 MiB).
    """
    difference = sa_repr[:, None, :] - goal_repr[None, :, :]
    return jnp.sum(difference**2, axis=-1)


def neg_l2_energy(sa_repr: jax.Array, goal_repr: jax.Array) -> jax.Array:
    """-||phi_i - psi_j||_2 (unsquared) for sa_repr (B, d), goal_repr (B, d) -> logits (B, B).

    The norm is sqrt(sum of squares + 1e-12): the plain sqrt has an infinite derivative at 0,
    which makes the gradient NaN whenever phi_i == psi_j (0 * inf). With the epsilon the
    gradient there is exactly 0 and the value is off by at most 1e-6.
    """
    return -jnp.sqrt(_pairwise_squared_distance(sa_repr, goal_repr) + _EPS)


def neg_squared_l2_energy(sa_repr: jax.Array, goal_repr: jax.Array) -> jax.Array:
    """-||phi_i - psi_j||^2 for sa_repr (B, d), goal_repr (B, d) -> logits (B, B)."""
    return -_pairwise_squared_distance(sa_repr, goal_repr)


def dot_energy(sa_repr: jax.Array, goal_repr: jax.Array) -> jax.Array:
    """phi_i . psi_j for sa_repr (B, d), goal_repr (B, d) -> logits (B, B)."""
    return sa_repr @ goal_repr.T


def cosine_energy(sa_repr: jax.Array, goal_repr: jax.Array) -> jax.Array:
    """phi_i . psi_j / (||phi_i|| ||psi_j||) for sa_repr (B, d), goal_repr (B, d) -> (B, B).

    Each row is normalised by its own norm (axis=-1, keepdims); normalising by the norm of the
    whole (B, d) matrix would only rescale the dot products and not give cosines. Norms are
    sqrt(sum of squares + 1e-12) so an all-zero representation gives 0, not NaN.
    """
    sa_unit = sa_repr / jnp.sqrt(jnp.sum(sa_repr**2, axis=-1, keepdims=True) + _EPS)
    goal_unit = goal_repr / jnp.sqrt(jnp.sum(goal_repr**2, axis=-1, keepdims=True) + _EPS)
    return sa_unit @ goal_unit.T


# The registry is built from the config's Literal (one source of the names): energy NAME is the
# function NAME_energy above, so a name without its function fails at import.
ENERGY_NAMES: tuple[str, ...] = get_args(Energy)
ENERGIES: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    name: globals()[f"{name}_energy"] for name in ENERGY_NAMES
}


# --------------------------------------------------------------------------------------------
# Contrastive objectives: logits (B, B) with positives on the diagonal -> scalar loss.
# --------------------------------------------------------------------------------------------


def forward_infonce(logits: jax.Array) -> jax.Array:
    """InfoNCE over goals: mean_i -log softmax(logits[i, :])[i], logits (B, B) -> scalar.

    Each state-action row classifies which goal in the batch is its own.
    """
    return -jnp.mean(jnp.diagonal(jax.nn.log_softmax(logits, axis=1)))


def backward_infonce(logits: jax.Array) -> jax.Array:
    """InfoNCE over state-actions: mean_j -log softmax(logits[:, j])[j], logits (B, B) -> scalar.

    Each goal column classifies which state-action in the batch reached it.
    """
    return -jnp.mean(jnp.diagonal(jax.nn.log_softmax(logits, axis=0)))


def symmetric_infonce(logits: jax.Array) -> jax.Array:
    """forward_infonce + backward_infonce (a sum, not a mean), logits (B, B) -> scalar."""
    return forward_infonce(logits) + backward_infonce(logits)


def binary_nce(logits: jax.Array) -> jax.Array:
    """Sigmoid binary cross-entropy, label 1 on the diagonal and 0 off it, logits (B, B) -> scalar.

    Mean over all B * B entries, so the B (B - 1) negatives outweigh the B positives, as in the
    CRL reference. Uses log_sigmoid for both terms (-log sigmoid(x) and -log(1 - sigmoid(x)) =
    -log sigmoid(-x)) so large logits do not overflow.
    """
    labels = jnp.eye(logits.shape[0], logits.shape[1], dtype=logits.dtype)
    per_entry = -(
        labels * jax.nn.log_sigmoid(logits) + (1.0 - labels) * jax.nn.log_sigmoid(-logits)
    )
    return jnp.mean(per_entry)


# Built from the config's Literal too: objective NAME is the function NAME above.
OBJECTIVE_NAMES: tuple[str, ...] = get_args(ContrastiveObjective)
OBJECTIVES: dict[str, Callable[[jax.Array], jax.Array]] = {
    name: globals()[name] for name in OBJECTIVE_NAMES
}


def logsumexp_penalty(logits: jax.Array) -> jax.Array:
    """mean_i logsumexp(logits[i, :])^2 for logits (B, B) -> scalar.

    InfoNCE is invariant to adding a per-row constant to the logits; this pins each row's
    normaliser near 0 so the logits stay calibrated. The caller multiplies it by its
    coefficient (0.1 in the papers).
    """
    return jnp.mean(jax.nn.logsumexp(logits, axis=1) ** 2)


def contrastive_metrics(logits: jax.Array) -> dict[str, jax.Array]:
    """Diagnostics of a logits matrix (B, B) with positives on the diagonal; all scalars.

    critic/accuracy: fraction of rows whose argmax is the diagonal (ties go to the lowest
    index, as jnp.argmax does); critic/logits_pos: mean diagonal; critic/logits_neg: mean
    off-diagonal; critic/logsumexp: mean row logsumexp.
    """
    batch_size = logits.shape[0]
    diagonal = jnp.diagonal(logits)
    off_diagonal_mask = 1.0 - jnp.eye(batch_size, logits.shape[1], dtype=logits.dtype)
    # max(..., 1) keeps a batch of one (no negatives) from dividing by zero.
    num_off_diagonal = max(logits.size - batch_size, 1)
    return {
        "critic/accuracy": jnp.mean(jnp.argmax(logits, axis=1) == jnp.arange(batch_size)),
        "critic/logits_pos": jnp.mean(diagonal),
        "critic/logits_neg": jnp.sum(logits * off_diagonal_mask) / num_off_diagonal,
        "critic/logsumexp": jnp.mean(jax.nn.logsumexp(logits, axis=1)),
    }


def critic_loss(
    sa_repr: jax.Array,
    goal_repr: jax.Array,
    energy: str,
    objective: str,
    logsumexp_coef: float,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The CRL critic loss from sa_repr (B, d) and goal_repr (B, d), row i paired with goal i.

    loss = OBJECTIVES[objective](logits) + logsumexp_coef * logsumexp_penalty(logits) with
    logits = ENERGIES[energy](sa_repr, goal_repr) (B, B). Returns (scalar loss, metrics):
    contrastive_metrics(logits) plus "critic/loss". Unknown names raise ValueError.
    """
    if energy not in ENERGIES:
        raise ValueError(f"unknown energy {energy!r}; expected one of {ENERGY_NAMES}")
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; expected one of {OBJECTIVE_NAMES}")
    logits = ENERGIES[energy](sa_repr, goal_repr)
    loss = OBJECTIVES[objective](logits) + logsumexp_coef * logsumexp_penalty(logits)
    metrics = contrastive_metrics(logits)
    metrics["critic/loss"] = loss
    return loss, metrics
