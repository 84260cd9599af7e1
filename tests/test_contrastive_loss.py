import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl.agents.crl.loss import (
    ENERGIES,
    ENERGY_NAMES,
    OBJECTIVE_NAMES,
    OBJECTIVES,
    backward_infonce,
    binary_nce,
    contrastive_metrics,
    critic_loss,
    forward_infonce,
    logsumexp_penalty,
    symmetric_infonce,
)
from purerl.losses import actor_loss, alpha_loss, default_target_entropy

# phi_0 = (1, 0), phi_1 = (0, 2); psi_0 = (1, 1), psi_1 = (3, 0).
PHI = jnp.array([[1.0, 0.0], [0.0, 2.0]])
PSI = jnp.array([[1.0, 1.0], [3.0, 0.0]])

# logits[i, j]: row i = state-action, column j = goal; positives on the diagonal.
LOGITS = jnp.array([[2.0, 0.0], [1.0, 3.0]])


def test_registries_have_exactly_the_documented_names():
    assert set(ENERGIES) == {"neg_l2", "neg_squared_l2", "dot", "cosine"}
    assert set(OBJECTIVES) == {
        "forward_infonce",
        "backward_infonce",
        "symmetric_infonce",
        "binary_nce",
    }
    assert ENERGY_NAMES == tuple(ENERGIES)
    assert OBJECTIVE_NAMES == tuple(OBJECTIVES)


def test_dot_energy_hand_computed():
    # phi_0.psi_0 = 1, phi_0.psi_1 = 3; phi_1.psi_0 = 2, phi_1.psi_1 = 0.
    expected = [[1.0, 3.0], [2.0, 0.0]]
    np.testing.assert_allclose(ENERGIES["dot"](PHI, PSI), expected, rtol=1e-6)


def test_squared_l2_energies_hand_computed():
    # phi_0 - psi_0 = (0, -1) -> 1;   phi_0 - psi_1 = (-2, 0) -> 4;
    # phi_1 - psi_0 = (-1, 1) -> 2;   phi_1 - psi_1 = (-3, 2) -> 9 + 4 = 13.
    np.testing.assert_allclose(
        ENERGIES["neg_squared_l2"](PHI, PSI), [[-1.0, -4.0], [-2.0, -13.0]], rtol=1e-6
    )
    np.testing.assert_allclose(
        ENERGIES["neg_l2"](PHI, PSI),
        [[-1.0, -2.0], [-math.sqrt(2.0), -math.sqrt(13.0)]],
        rtol=1e-6,
    )


def test_neg_squared_l2_is_zero_for_identical_vectors():
    # exact differences: no cancellation error from |a|^2 + |b|^2 - 2 a.b at large norms
    x = jnp.array([[1000.0, 1000.0], [3.0, -4.0]])
    logits = ENERGIES["neg_squared_l2"](x, x)
    assert float(logits[0, 0]) == 0.0 and float(logits[1, 1]) == 0.0
    np.testing.assert_allclose(logits[0, 1], -(997.0**2 + 1004.0**2), rtol=1e-6)


def test_cosine_energy_uses_per_row_norms():
    # |phi_0| = 1, |phi_1| = 2, |psi_0| = sqrt(2), |psi_1| = 3, dot products as above:
    # [[1 / (1 sqrt2), 3 / (1 * 3)], [2 / (2 sqrt2), 0 / (2 * 3)]].
    expected = np.array([[1.0 / math.sqrt(2.0), 1.0], [1.0 / math.sqrt(2.0), 0.0]])
    cosine = np.asarray(ENERGIES["cosine"](PHI, PSI))
    np.testing.assert_allclose(cosine, expected, rtol=1e-6, atol=1e-7)
    # Normalising by whole-batch norms (|PHI|_F = sqrt5, |PSI|_F = sqrt11) would give
    # dot / sqrt55, e.g. 3 / 7.416 = 0.4045 instead of 1 at [0, 1].
    batch_normalised = np.array([[1.0, 3.0], [2.0, 0.0]]) / math.sqrt(55.0)
    assert not np.allclose(cosine, batch_normalised, atol=1e-3)
    # Cosine is scale-invariant per row: rescaling one row of phi changes nothing.
    rescaled = PHI.at[1].multiply(7.0)
    np.testing.assert_allclose(ENERGIES["cosine"](rescaled, PSI), expected, rtol=1e-6, atol=1e-7)


def test_neg_l2_gradient_finite_at_identical_vectors():
    x = jnp.array([[1.0, 2.0], [-3.0, 0.5]])

    def total(phi):
        return jnp.sum(ENERGIES["neg_l2"](phi, x))

    logits = ENERGIES["neg_l2"](x, x)
    np.testing.assert_allclose(jnp.diagonal(logits), [0.0, 0.0], atol=1e-5)
    grad = jax.grad(total)(x)
    assert bool(jnp.all(jnp.isfinite(grad)))
    # d/dphi_0 of -|phi_0 - x_1| alone (the diagonal term contributes 0):
    # -(x_0 - x_1) / |x_0 - x_1| = -(4, 1.5) / sqrt(16 + 2.25)
    np.testing.assert_allclose(grad[0], -np.array([4.0, 1.5]) / math.sqrt(18.25), rtol=1e-5)


@pytest.mark.parametrize("name", ENERGY_NAMES)
def test_energy_gradients_finite_with_zero_and_identical_rows(name):
    x = jnp.array([[0.0, 0.0], [1.0, -1.0]])
    grad_phi, grad_psi = jax.grad(lambda a, b: jnp.sum(ENERGIES[name](a, b)), argnums=(0, 1))(x, x)
    assert bool(jnp.all(jnp.isfinite(grad_phi))) and bool(jnp.all(jnp.isfinite(grad_psi)))


def test_forward_infonce_hand_computed():
    # row 0: softmax over (2, 0), target 0; row 1: softmax over (1, 3), target 1.
    row0 = -math.log(math.exp(2) / (math.exp(2) + math.exp(0)))
    row1 = -math.log(math.exp(3) / (math.exp(1) + math.exp(3)))
    np.testing.assert_allclose(forward_infonce(LOGITS), (row0 + row1) / 2, rtol=1e-6)


def test_backward_infonce_hand_computed():
    # column 0: softmax over (2, 1), target 0; column 1: softmax over (0, 3), target 1.
    col0 = -math.log(math.exp(2) / (math.exp(2) + math.exp(1)))
    col1 = -math.log(math.exp(3) / (math.exp(0) + math.exp(3)))
    np.testing.assert_allclose(backward_infonce(LOGITS), (col0 + col1) / 2, rtol=1e-6)
    # forward and backward genuinely differ on this matrix
    assert abs(float(backward_infonce(LOGITS)) - float(forward_infonce(LOGITS))) > 1e-3


def test_symmetric_infonce_is_sum():
    np.testing.assert_allclose(
        symmetric_infonce(LOGITS),
        forward_infonce(LOGITS) + backward_infonce(LOGITS),
        rtol=1e-6,
    )
    # simplified: both forward rows are log(1 + e^-2); backward columns log(1 + e^-1), log(1 + e^-3)
    forward = math.log(1 + math.exp(-2))
    backward = (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(-3))) / 2
    np.testing.assert_allclose(
        OBJECTIVES["symmetric_infonce"](LOGITS), forward + backward, rtol=1e-6
    )


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_binary_nce_uses_labels_hand_computed():
    # positives (diagonal 2, 3): -log sigmoid(x); negatives (0, 1): -log(1 - sigmoid(x)).
    positives = -math.log(sigmoid(2)) - math.log(sigmoid(3))
    negatives = -math.log(1 - sigmoid(0)) - math.log(1 - sigmoid(1))
    expected = (positives + negatives) / 4
    np.testing.assert_allclose(binary_nce(LOGITS), expected, rtol=1e-6)
    # A label-free version (every entry treated as a positive) gives something else.
    label_free = -sum(math.log(sigmoid(x)) for x in (2.0, 0.0, 1.0, 3.0)) / 4
    assert abs(float(binary_nce(LOGITS)) - label_free) > 1e-2
    # Swapping which entries are positives changes the loss: labels follow the diagonal.
    assert abs(float(binary_nce(LOGITS[::-1])) - expected) > 1e-2


def test_objectives_are_stable_for_large_logits():
    big = jnp.array([[500.0, -500.0], [-500.0, 500.0]])
    for name, objective in OBJECTIVES.items():
        value = float(objective(big))
        assert math.isfinite(value), name
        np.testing.assert_allclose(value, 0.0, atol=1e-6)


def test_logsumexp_penalty_hand_computed():
    lse0 = math.log(math.exp(2) + math.exp(0))
    lse1 = math.log(math.exp(1) + math.exp(3))
    np.testing.assert_allclose(logsumexp_penalty(LOGITS), (lse0**2 + lse1**2) / 2, rtol=1e-6)


def test_metrics_hand_computed():
    logits = jnp.array([[3.0, 1.0, 0.0], [2.0, 1.0, 5.0], [0.0, -1.0, 4.0]])
    metrics = contrastive_metrics(logits)
    # row argmaxes 0, 2, 2: rows 0 and 2 hit their diagonal.
    np.testing.assert_allclose(metrics["critic/accuracy"], 2 / 3, rtol=1e-6)
    np.testing.assert_allclose(metrics["critic/logits_pos"], (3 + 1 + 4) / 3, rtol=1e-6)
    # off-diagonal: 1 + 0 + 2 + 5 + 0 - 1 = 7 over 6 entries.
    np.testing.assert_allclose(metrics["critic/logits_neg"], 7 / 6, rtol=1e-6)
    lse = [
        math.log(math.exp(3) + math.exp(1) + math.exp(0)),
        math.log(math.exp(2) + math.exp(1) + math.exp(5)),
        math.log(math.exp(0) + math.exp(-1) + math.exp(4)),
    ]
    np.testing.assert_allclose(metrics["critic/logsumexp"], sum(lse) / 3, rtol=1e-6)


def test_critic_loss_combines_objective_penalty_and_metrics():
    # dot energy on PHI, PSI gives logits [[1, 3], [2, 0]].
    loss, metrics = critic_loss(PHI, PSI, "dot", "forward_infonce", 0.1)
    row0 = -math.log(math.exp(1) / (math.exp(1) + math.exp(3)))
    row1 = -math.log(math.exp(0) / (math.exp(2) + math.exp(0)))
    lse0 = math.log(math.exp(1) + math.exp(3))
    lse1 = math.log(math.exp(2) + math.exp(0))
    expected = (row0 + row1) / 2 + 0.1 * (lse0**2 + lse1**2) / 2
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    np.testing.assert_allclose(metrics["critic/loss"], expected, rtol=1e-6)
    np.testing.assert_allclose(metrics["critic/accuracy"], 0.0)  # argmaxes 1, 0
    np.testing.assert_allclose(metrics["critic/logits_pos"], 0.5, rtol=1e-6)
    np.testing.assert_allclose(metrics["critic/logits_neg"], 2.5, rtol=1e-6)
    assert set(metrics) == {
        "critic/loss",
        "critic/accuracy",
        "critic/logits_pos",
        "critic/logits_neg",
        "critic/logsumexp",
    }


def test_critic_loss_rejects_unknown_names():
    with pytest.raises(ValueError, match="energy"):
        critic_loss(PHI, PSI, "l1", "forward_infonce", 0.1)
    with pytest.raises(ValueError, match="objective"):
        critic_loss(PHI, PSI, "dot", "infonce", 0.1)


@pytest.mark.parametrize("energy", ENERGY_NAMES)
@pytest.mark.parametrize("objective", OBJECTIVE_NAMES)
def test_critic_loss_jits_and_has_finite_gradients(energy, objective):
    sa_repr, goal_repr = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 3))

    @jax.jit
    def loss(a, b):
        return critic_loss(a, b, energy, objective, 0.1)

    grads, metrics = jax.grad(loss, argnums=(0, 1), has_aux=True)(sa_repr, goal_repr)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)
    assert math.isfinite(float(metrics["critic/loss"]))


def test_actor_loss_hand_computed():
    log_prob = jnp.array([-1.0, 0.5])
    q = jnp.array([2.0, -1.0])
    # (0.2 * -1 - 2 + 0.2 * 0.5 + 1) / 2 = (-2.2 + 1.1) / 2 = -0.55
    np.testing.assert_allclose(actor_loss(log_prob, q, 0.2), -0.55, rtol=1e-6)
    # gradient flows to log_prob (alpha / B) and q (-1 / B), not to alpha
    g_log_prob, g_q, g_alpha = jax.grad(actor_loss, argnums=(0, 1, 2))(log_prob, q, 0.2)
    np.testing.assert_allclose(g_log_prob, [0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(g_q, [-0.5, -0.5], rtol=1e-6)
    assert float(g_alpha) == 0.0


def test_alpha_loss_hand_computed():
    # alpha = 0.5; log_prob + target = (-2, -4): -0.5 * mean(-2, -4) = 1.5
    value = alpha_loss(math.log(0.5), jnp.array([-1.0, -3.0]), -1.0)
    np.testing.assert_allclose(value, 1.5, rtol=1e-6)
    # log_prob is stop-gradient'ed: this loss never moves the policy.
    g = jax.grad(alpha_loss, argnums=1)(jnp.log(0.5), jnp.array([-1.0, -3.0]), -1.0)
    np.testing.assert_allclose(g, [0.0, 0.0])


def test_alpha_loss_gradient_sign():
    log_alpha = jnp.log(0.5)
    target = -1.0
    # entropy -mean(log_prob) = 2 above target -1: d/dlog_alpha = -0.5 * (-2 - 1) = 1.5 > 0,
    # so descent lowers alpha.
    above = jax.grad(alpha_loss)(log_alpha, jnp.array([-1.0, -3.0]), target)
    np.testing.assert_allclose(above, 1.5, rtol=1e-6)
    # entropy -2 below target -1: d/dlog_alpha = -0.5 * (2 - 1) = -0.5 < 0, descent raises alpha.
    below = jax.grad(alpha_loss)(log_alpha, jnp.array([2.0, 2.0]), target)
    np.testing.assert_allclose(below, -0.5, rtol=1e-6)


def test_default_target_entropy():
    assert default_target_entropy(8) == -4.0
    assert default_target_entropy(1) == -0.5
