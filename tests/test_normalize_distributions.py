import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from purerl.distributions import Categorical, ClippedNormal, TanhNormal
from purerl.normalize import init_statistics, normalize, update_statistics


def test_running_statistics_match_numpy_over_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 3)) for n in (5, 17, 1, 40)]
    stats = init_statistics(3)
    for b in batches:
        stats = update_statistics(stats, jnp.asarray(b))
    everything = np.concatenate(batches)
    np.testing.assert_allclose(stats.mean, everything.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats.variance, everything.var(0), rtol=1e-4)
    normalized = normalize(stats, jnp.asarray(everything))
    np.testing.assert_allclose(normalized.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(normalized.std(0), 1.0, atol=1e-3)


def test_fresh_statistics_are_identity():
    x = jnp.array([[1.0, -2.0]])
    np.testing.assert_allclose(normalize(init_statistics(2), x), x, atol=1e-6)


def test_tanh_normal_log_prob_is_change_of_variables():
    loc, scale = jnp.array([0.3, -0.2]), jnp.array([0.5, 1.5])
    raw = jnp.array([0.7, -1.9])
    dist = TanhNormal(loc, scale)
    expected = scipy.stats.norm(loc, scale).logpdf(raw).sum() - np.log(1 - np.tanh(raw) ** 2).sum()
    np.testing.assert_allclose(dist.log_prob(raw), expected, rtol=1e-5)
    np.testing.assert_allclose(dist.to_action(raw), np.tanh(raw), rtol=1e-6)
    np.testing.assert_allclose(dist.to_action(dist.mode()), np.tanh(loc), rtol=1e-6)


def test_clipped_normal_and_categorical():
    dist = ClippedNormal(jnp.zeros(2), jnp.ones(2))
    raw = jnp.array([2.5, -0.5])
    np.testing.assert_allclose(dist.to_action(raw), [1.0, -0.5])
    np.testing.assert_allclose(dist.log_prob(raw), scipy.stats.norm().logpdf(raw).sum(), rtol=1e-5)
    np.testing.assert_allclose(dist.entropy(None), 2 * scipy.stats.norm().entropy(), rtol=1e-5)
    logits = jnp.log(jnp.array([0.2, 0.5, 0.3]))
    cat = Categorical(logits)
    np.testing.assert_allclose(cat.log_prob(jnp.array(1)), np.log(0.5), rtol=1e-5)
    np.testing.assert_allclose(cat.entropy(None), scipy.stats.entropy([0.2, 0.5, 0.3]), rtol=1e-5)
    assert int(cat.mode()) == 1
    samples = jax.vmap(cat.sample)(jax.random.split(jax.random.PRNGKey(0), 4000))
    np.testing.assert_allclose(np.bincount(samples, minlength=3) / 4000, [0.2, 0.5, 0.3], atol=0.03)


def test_normalized_observations_clip_only_when_asked():
    stats = update_statistics(init_statistics(1), jnp.array([[-1.0], [1.0]]))  # mean 0, std 1
    far = jnp.array([[25.0], [-3.0]])
    np.testing.assert_allclose(normalize(stats, far), [[10.0], [-3.0]], rtol=1e-6)
    np.testing.assert_allclose(normalize(stats, far, clip=None), [[25.0], [-3.0]], rtol=1e-6)
