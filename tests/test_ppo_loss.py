import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import PPOConfig
from purerl.agents.ppo.loss import PPOBatch, make_ppo_loss, ppo_objective


def batch(**overrides):
    fields = dict(
        obs=jnp.zeros((2, 1)),
        raw_action=jnp.zeros((2,)),
        old_log_prob=jnp.array([0.0, 0.0]),
        old_value=jnp.array([1.0, 2.0]),
        advantage=jnp.array([1.0, -1.0]),
        value_target=jnp.array([2.0, 0.0]),
    )
    fields.update(overrides)
    return PPOBatch(**fields)


def test_ppo_objective_hand_computed():
    config = PPOConfig(
        normalize_advantages=False,
        clip_epsilon=0.2,
        value_loss_coef=0.5,
        entropy_coef=0.1,
        clip_value_loss=False,
    )
    # ratios e^0.5 = 1.6487 (A=+1, clipped to 1.2) and e^-0.5 = 0.6065 (A=-1, clipped to 0.8).
    log_prob = jnp.array([0.5, -0.5])
    value = jnp.array([1.5, 1.0])
    loss, metrics = ppo_objective(log_prob, jnp.array([1.0, 3.0]), value, batch(), config)
    # surrogate: min(1.6487*1, 1.2*1) = 1.2; min(0.6065*-1, 0.8*-1) = -0.8; mean 0.2 -> loss -0.2
    policy = -0.2
    # value: 0.5 * mean((1.5-2)^2, (1-0)^2) = 0.5 * 0.625 = 0.3125
    value_loss = 0.3125
    entropy = 2.0
    np.testing.assert_allclose(metrics["loss/policy"], policy, rtol=1e-6)
    np.testing.assert_allclose(metrics["loss/value"], value_loss, rtol=1e-6)
    np.testing.assert_allclose(metrics["policy/entropy"], entropy, rtol=1e-6)
    np.testing.assert_allclose(loss, policy + 0.5 * value_loss - 0.1 * entropy, rtol=1e-6)
    np.testing.assert_allclose(metrics["policy/clip_fraction"], 1.0)
    kl = ((math.exp(0.5) - 1 - 0.5) + (math.exp(-0.5) - 1 + 0.5)) / 2
    np.testing.assert_allclose(metrics["policy/approx_kl"], kl, rtol=1e-6)


def test_value_clipping_hand_computed():
    config = PPOConfig(normalize_advantages=False, clip_epsilon=0.2, clip_value_loss=True)
    value = jnp.array([1.5, 1.0])
    _, metrics = ppo_objective(jnp.zeros(2), jnp.zeros(2), value, batch(), config)
    # clipped predictions: 1 + clip(0.5) = 1.2 -> (1.2-2)^2 = 0.64 > 0.25;
    # 2 + clip(-1) = 1.8 -> 1.8^2 = 3.24 > 1.  0.5 * mean(0.64, 3.24) = 0.97
    np.testing.assert_allclose(metrics["loss/value"], 0.97, rtol=1e-6)


def test_advantage_normalisation():
    config = PPOConfig(normalize_advantages=True, entropy_coef=0.0, value_loss_coef=0.0)
    b = batch(advantage=jnp.array([3.0, 5.0]))  # normalised to (-1, 1)
    loss, _ = ppo_objective(jnp.zeros(2), jnp.zeros(2), jnp.zeros(2), b, config)
    np.testing.assert_allclose(loss, 0.0, atol=1e-6)  # ratio 1: -(mean(-1, 1)) = 0


def test_clipped_objective_gradients_hand_computed():
    """The gradients PPO's clipping prescribes: d(policy loss)/d(log_prob_i) is
    -A_i * ratio_i / B where the unclipped term is the smaller one (inside the clip range, or
    outside it on the side that makes things worse) and 0 where clipping is active; the value
    loss's is (v_i - target_i) / B where the unclipped error is the larger one, else 0."""
    config = PPOConfig(
        normalize_advantages=False,
        clip_epsilon=0.2,
        value_loss_coef=1.0,
        entropy_coef=0.0,
        clip_value_loss=True,
    )
    # ratio e^0.1 inside the range (A=+1); e^0.5 above it with A=+1 (clipped, no gradient);
    # e^0.5 above it with A=-1 (pessimistic side: unclipped, gradient flows); ratio 1 exactly
    # (the first minibatch of an update), where both terms are equal.
    log_prob = jnp.array([0.1, 0.5, 0.5, 0.0])
    advantage = jnp.array([1.0, 1.0, -1.0, 2.0])
    # value - old_value: 0.1 (inside the range: unclipped); 0.5 away from the target (the
    # unclipped error is the larger: gradient flows); 0.5 towards the target and past the
    # range (the clipped error is the larger: no gradient); 0 exactly (both equal).
    old_value = jnp.array([1.0, 1.0, 1.0, 1.0])
    value = jnp.array([1.1, 1.5, 1.5, 1.0])
    value_target = jnp.array([2.0, 0.0, 1.6, 3.0])
    b = batch(
        obs=jnp.zeros((4, 1)),
        raw_action=jnp.zeros((4,)),
        old_log_prob=jnp.zeros(4),
        old_value=old_value,
        advantage=advantage,
        value_target=value_target,
    )

    def loss(log_prob, value):
        return ppo_objective(log_prob, jnp.zeros(4), value, b, config)[0]

    d_log_prob, d_value = jax.grad(loss, argnums=(0, 1))(log_prob, value)
    ratio = np.exp([0.1, 0.5, 0.5, 0.0])
    expected_log_prob = -np.array([1.0, 0.0, -1.0, 2.0]) * ratio / 4
    # 0.5 * mean(error^2) -> d/dv_i = (v_i - target_i) / 4 where the unclipped error counts.
    expected_value = np.array([1.1 - 2.0, 1.5 - 0.0, 0.0, 1.0 - 3.0]) / 4
    np.testing.assert_allclose(d_log_prob, expected_log_prob, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(d_value, expected_value, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("discrete", [False, True])
def test_ppo_loss_gradients_are_finite(discrete):
    from purerl.networks import Body, CategoricalPolicy, GaussianPolicy, ValueNetwork

    config = PPOConfig()
    body = Body(hidden_sizes=(8,))
    policy = CategoricalPolicy(body, 3) if discrete else GaussianPolicy(body, 2)
    value = ValueNetwork(body)
    obs = jax.random.normal(jax.random.PRNGKey(0), (5, 4))
    params = {
        "policy": policy.init(jax.random.PRNGKey(1), obs),
        "value": value.init(jax.random.PRNGKey(2), obs),
    }
    raw = jnp.array([0, 1, 2, 0, 1]) if discrete else jnp.zeros((5, 2))
    b = PPOBatch(obs, raw, jnp.zeros(5), jnp.zeros(5), jnp.arange(5.0), jnp.ones(5))
    loss = make_ppo_loss(policy.apply, value.apply, config)
    grads, metrics = jax.grad(loss, has_aux=True)(params, b, jax.random.PRNGKey(3))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert float(metrics["loss/value"]) > 0
