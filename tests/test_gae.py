import jax.numpy as jnp
import numpy as np
import pytest

from purerl.gae import compute_gae


def reference_gae(rewards, values, next_values, terminations, truncations, discount, lam):
    """Plain-Python GAE: episodes end at terminations (no bootstrap) or truncations (bootstrap
    from the final observation's value)."""
    steps, envs = rewards.shape
    advantages = np.zeros((steps, envs))
    for env in range(envs):
        running = 0.0
        for t in reversed(range(steps)):
            ended = terminations[t, env] or truncations[t, env]
            if ended:
                running = 0.0
            bootstrap = 0.0 if terminations[t, env] else next_values[t, env]
            delta = rewards[t, env] + discount * bootstrap - values[t, env]
            running = delta + discount * lam * running
            advantages[t, env] = running
    return advantages


@pytest.mark.parametrize("discount,lam", [(0.99, 0.95), (0.9, 1.0), (0.97, 0.0)])
def test_gae_matches_python_loop_with_terminations_and_truncations(discount, lam):
    rng = np.random.default_rng(0)
    steps, envs = 12, 4
    rewards = rng.normal(size=(steps, envs))
    values = rng.normal(size=(steps, envs))
    next_values = rng.normal(size=(steps, envs))
    terminations = np.zeros((steps, envs), bool)
    truncations = np.zeros((steps, envs), bool)
    terminations[[2, 7], [0, 1]] = True
    truncations[[4, 9, 11], [0, 2, 3]] = True
    terminations[5, 3] = True
    expected = reference_gae(rewards, values, next_values, terminations, truncations, discount, lam)
    dones = terminations | truncations
    advantages, returns = compute_gae(
        jnp.asarray(rewards),
        jnp.asarray(values),
        jnp.asarray(next_values),
        jnp.asarray(terminations, jnp.float32),
        jnp.asarray(dones, jnp.float32),
        discount,
        lam,
    )
    np.testing.assert_allclose(advantages, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(returns, expected + values, rtol=1e-5, atol=1e-5)


def test_gae_hand_computed_single_env():
    # Two steps, truncated at the end: A1 = r1 + g*V'(s2) - V(s1) = 1 + 0.5*4 - 1 = 2;
    # A0 = (r0 + g*V(s1) - V(s0)) + g*l*A1 = (0 + 0.5*1 - 2) + 0.5*0.5*2 = -1.
    advantages, _ = compute_gae(
        jnp.array([[0.0], [1.0]]),
        jnp.array([[2.0], [1.0]]),
        jnp.array([[1.0], [4.0]]),
        jnp.zeros((2, 1)),
        jnp.array([[0.0], [1.0]]),
        0.5,
        0.5,
    )
    np.testing.assert_allclose(advantages[:, 0], [-1.0, 2.0])
    # The same ending as a termination drops the bootstrap: A1 = 1 - 1 = 0, A0 = -1.5.
    advantages, _ = compute_gae(
        jnp.array([[0.0], [1.0]]),
        jnp.array([[2.0], [1.0]]),
        jnp.array([[1.0], [4.0]]),
        jnp.array([[0.0], [1.0]]),
        jnp.array([[0.0], [1.0]]),
        0.5,
        0.5,
    )
    np.testing.assert_allclose(advantages[:, 0], [-1.5, 0.0])
