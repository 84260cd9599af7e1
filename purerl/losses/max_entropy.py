"""Maximum-entropy actor and temperature losses, shared by the off-policy agents (CRL, SAC).

Pure functions of arrays: the agent supplies log-probabilities of reparameterised actions and
their values (a critic's Q, or CRL's energy), and trains log alpha toward a target entropy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def actor_loss(log_prob: jax.Array, q: jax.Array, alpha: jax.Array | float) -> jax.Array:
    """Maximum-entropy actor loss mean(alpha * log_prob - q) -> scalar.

    log_prob (B,): log pi(a_i | s_i) of a reparameterised action a_i ~ pi; q (B,): the value
    of (s_i, a_i) (SAC: the smaller twin Q; CRL: the energy of (phi(s_i, a_i), psi(g_i)), the
    diagonal of the logits). alpha is a scalar
    temperature; it is stop-gradient'ed because alpha is trained by alpha_loss alone.
    """
    alpha = jax.lax.stop_gradient(alpha)
    return jnp.mean(alpha * log_prob - q)


def alpha_loss(
    log_alpha: jax.Array | float, log_prob: jax.Array, target_entropy: float
) -> jax.Array:
    """Entropy-temperature loss mean(-exp(log_alpha) * stop_gradient(log_prob + target)) -> scalar.

    log_alpha scalar, log_prob (B,). d loss / d log_alpha = -alpha * (mean(log_prob) + target)
    = alpha * (entropy - target) with entropy estimated as -mean(log_prob): gradient descent
    lowers alpha when the entropy is above the target and raises it when below. log_prob is
    stop-gradient'ed so this loss never moves the policy.
    """
    return jnp.mean(-jnp.exp(log_alpha) * jax.lax.stop_gradient(log_prob + target_entropy))


def default_target_entropy(action_size: int) -> float:
    """CRL's default target entropy, -0.5 * action_size (SAC's is -action_size)."""
    return -0.5 * action_size
