import jax.numpy as jnp
import numpy as np
import pytest

from purerl.gae import (
    NextObservations,
    compute_gae,
    num_truncation_slots,
    one_step_lambda_advantages,
    values_and_next_values,
)


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


def gae_of(rewards, values, next_values, terminations, truncations, discount, lam):
    """compute_gae on NumPy arrays, with boolean terminations and truncations (T, N)."""
    return compute_gae(
        jnp.asarray(rewards),
        jnp.asarray(values),
        jnp.asarray(next_values),
        jnp.asarray(terminations, jnp.float32),
        jnp.asarray(terminations | truncations, jnp.float32),
        discount,
        lam,
    )


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
    advantages, returns = gae_of(
        rewards, values, next_values, terminations, truncations, discount, lam
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


def reference_one_step_lambda(rewards, values, next_values, terminations, truncations, g, lam):
    """Plain-Python Brax-style advantage: r_t + g * G_{t+1} - V(s_t), G the lambda-return
    G_t = r_t + g * ((1 - lam) * V(s_{t+1}) + lam * G_{t+1}) within an episode, bootstrapped
    with V(final obs) at truncations and nothing at terminations."""
    steps, envs = rewards.shape
    advantages = np.zeros((steps, envs))
    for env in range(envs):
        following = None  # G_{t+1} of the same episode, None at an episode's (or unroll's) end
        for t in reversed(range(steps)):
            if terminations[t, env]:
                bootstrap_next, following = 0.0, None
            elif truncations[t, env] or t == steps - 1:
                bootstrap_next, following = next_values[t, env], None
            else:
                bootstrap_next = following
            if following is None:
                g_next = bootstrap_next
                lam_return = rewards[t, env] + g * bootstrap_next
            else:
                g_next = following
                lam_return = rewards[t, env] + g * (
                    (1 - lam) * next_values[t, env] + lam * following
                )
            advantages[t, env] = rewards[t, env] + g * g_next - values[t, env]
            following = lam_return
    return advantages


@pytest.mark.parametrize("discount,lam", [(0.97, 0.95), (0.9, 0.5)])
def test_one_step_lambda_advantages_match_python_loop(discount, lam):
    rng = np.random.default_rng(1)
    steps, envs = 9, 3
    rewards, values, next_values = rng.normal(size=(3, steps, envs))
    # Within an episode the next observation's value is the next step's value.
    next_values[:-1] = values[1:]
    terminations = np.zeros((steps, envs), bool)
    truncations = np.zeros((steps, envs), bool)
    terminations[3, 0] = truncations[5, 1] = terminations[8, 2] = True
    next_values[5, 1] = 7.0  # the final observation's value, not the reset one's
    gae, _ = gae_of(rewards, values, next_values, terminations, truncations, discount, lam)
    dones = jnp.asarray(terminations | truncations, jnp.float32)
    got = one_step_lambda_advantages(gae, dones, discount, lam)
    expected = reference_one_step_lambda(
        rewards, values, next_values, terminations, truncations, discount, lam
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_masked_truncation_hand_computed():
    # The same two steps as above, truncated at the end, but masked (Brax's default): the
    # last step's TD error is dropped, A1 = 0, and A0 = r0 + g*V(s1) - V(s0) = -1.5.
    advantages, returns = compute_gae(
        jnp.array([[0.0], [1.0]]),
        jnp.array([[2.0], [1.0]]),
        jnp.array([[1.0], [4.0]]),
        jnp.zeros((2, 1)),
        jnp.array([[0.0], [1.0]]),
        0.5,
        0.5,
        masked_truncations=jnp.array([[0.0], [1.0]]),
    )
    np.testing.assert_allclose(advantages[:, 0], [-1.5, 0.0])
    np.testing.assert_allclose(returns[:, 0], [0.5, 1.0])


@pytest.mark.parametrize("steps,episode_length", [(10, 1000), (10, 4), (7, 2), (1, 5)])
def test_next_values_from_slots_equal_a_full_pass(steps, episode_length):
    """values_and_next_values gives V(final obs) wherever GAE uses it (every step that did not
    terminate), from fewer value evaluations."""
    rng = np.random.default_rng(2)
    envs = 5
    # Each env's episode clock starts somewhere; the time limit truncates, and env 3 also
    # terminates once.
    clock = rng.integers(0, episode_length, size=envs)
    truncation = np.zeros((steps, envs), bool)
    termination = np.zeros((steps, envs), bool)
    for env in range(envs):
        count = clock[env]
        for t in range(steps):
            count += 1
            if env == 3 and t == steps // 2:
                termination[t, env] = True
                count = 0
            elif count >= episode_length:
                truncation[t, env] = True
                count = 0
    final_obs = rng.normal(size=(steps, envs, 2)).astype(np.float32)
    obs = np.empty_like(final_obs)
    obs[0] = rng.normal(size=(envs, 2))
    for t in range(1, steps):
        ended = (truncation[t - 1] | termination[t - 1])[:, None]
        obs[t] = np.where(ended, rng.normal(size=(envs, 2)), final_obs[t - 1])
    slots = num_truncation_slots(steps, episode_length)
    assert truncation[:-1].sum(0).max(initial=0) <= slots
    next_obs = NextObservations.from_trajectory(
        jnp.asarray(final_obs), jnp.asarray(truncation, jnp.float32), slots
    )
    value_fn = lambda x: jnp.sin(x).sum(-1) + x[..., 0]  # noqa: E731
    values, next_values = values_and_next_values(value_fn, jnp.asarray(obs), next_obs)
    np.testing.assert_allclose(values, value_fn(obs), rtol=1e-6)
    used = ~termination
    np.testing.assert_allclose(
        np.asarray(next_values)[used], np.asarray(value_fn(final_obs))[used], rtol=1e-6
    )
