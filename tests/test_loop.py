"""Determinism and the two drivers of one program: train(key) versus the CLI's chunks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import Config, EnvConfig, PPOConfig, TrainConfig, Trainer

CONFIG = Config(
    EnvConfig("point_reach", episode_length=20),
    TrainConfig(
        num_envs=8, unroll_length=8, total_env_steps=8 * 8 * 3 * 2, num_evals=2, num_eval_envs=4
    ),
    PPOConfig(num_minibatches=2, num_epochs=2, policy_hidden_sizes=(16,), value_hidden_sizes=(16,)),
)


@pytest.fixture(scope="module")
def trainer():
    return Trainer(CONFIG)


@pytest.fixture(scope="module")
def train(trainer):
    return jax.jit(trainer.train)


def assert_trees_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_same_seed_same_numbers_and_seeds_differ(train):
    state_a, metrics_a = train(jax.random.PRNGKey(0))
    state_b, metrics_b = train(jax.random.PRNGKey(0))
    assert_trees_equal(metrics_a, metrics_b)
    assert_trees_equal(state_a.agent.params, state_b.agent.params)
    _, metrics_c = train(jax.random.PRNGKey(1))
    assert not np.allclose(metrics_a["eval/episode_return"], metrics_c["eval/episode_return"])
    assert metrics_a["eval/episode_return"].shape == (CONFIG.train.num_evals,)
    np.testing.assert_array_equal(metrics_a["iteration"], [3, 6])


def test_vmapped_seeds_equal_separate_runs(trainer, train):
    keys = jax.random.split(jax.random.PRNGKey(42), 3)
    _, batched = jax.jit(jax.vmap(trainer.train))(keys)
    for i, key in enumerate(keys):
        _, single = train(key)
        for name in ("eval/episode_return", "train/episode_return", "train/loss/total"):
            np.testing.assert_allclose(batched[name][i], single[name], rtol=1e-5, atol=1e-6)


def test_chunked_driver_matches_one_program(trainer, train):
    """The CLI compiles run_iterations and evaluate separately and calls them in turn."""
    _, whole = train(jax.random.PRNGKey(7))
    state = jax.jit(trainer.init)(jax.random.PRNGKey(7))
    run = jax.jit(trainer.run_iterations, static_argnums=1)
    evaluate = jax.jit(trainer.evaluate)
    for i in range(CONFIG.train.num_evals):
        state, train_metrics = run(state, CONFIG.train.iterations_per_eval)
        state, eval_metrics = evaluate(state)
        for name, value in {**train_metrics, **eval_metrics}.items():
            np.testing.assert_array_equal(value, whole[name][i], err_msg=name)


def test_progress_streams_during_the_program(trainer):
    seen = []
    jax.jit(lambda k: trainer.train(k, progress=seen.append))(jax.random.PRNGKey(0))
    jax.effects_barrier()
    assert [int(m["iteration"]) for m in seen] == [3, 6]
    # Under vmap (several seeds in one program) it is called once per seed and evaluation.
    seen.clear()
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    jax.jit(jax.vmap(lambda k: trainer.train(k, progress=seen.append)))(keys)
    jax.effects_barrier()
    assert sorted(int(m["iteration"]) for m in seen) == [3, 3, 6, 6]


def test_trajectory_shapes_and_flags(trainer):
    state = trainer.init(jax.random.PRNGKey(0))
    _, trajectory, finished = jax.jit(trainer.collect)(
        state.agent, state.env, jax.random.PRNGKey(1)
    )
    assert trajectory.obs.shape == (8, 8, 4) and trajectory.next_obs.shape == (8, 8, 4)
    assert trajectory.policy.raw_action.shape == (8, 8, 2)
    assert trajectory.reward.shape == trajectory.truncation.shape == (8, 8)
    assert float(jnp.sum(trajectory.termination)) == 0.0  # point_reach only truncates
    assert float(finished["count"]) == 0.0  # episode_length 20 > unroll 8


def test_deep_ppo_is_one_config_change():
    """network="residual" puts the scanned residual trunk under PPO's actor and critic."""
    import dataclasses

    agent = dataclasses.replace(CONFIG.agent, network="residual", depth=8, width=16)
    trainer = Trainer(dataclasses.replace(CONFIG, agent=agent))
    state = trainer.init(jax.random.PRNGKey(0))
    for network in ("policy", "value"):
        trunk = state.agent.params[network]["params"]["ResidualTrunk_0"]
        assert trunk["blocks"]["dense_0"]["kernel"].shape == (2, 16, 16)
    state, metrics = jax.jit(trainer.iteration)(state)
    assert all(bool(jnp.isfinite(v)) for v in jax.tree.leaves(metrics))


def test_several_unrolls_per_iteration_are_consecutive_trajectory_columns():
    """unrolls_per_iteration=3 (Brax's geometry) collects three consecutive unrolls of every
    environment: column n * 3 + u of the batch is environment n's u-th unroll, equal to what
    three calls of `unroll` give, and the update trains on all of them."""
    import dataclasses

    from purerl.types import columns_to_unrolls

    train = dataclasses.replace(CONFIG.train, unroll_length=4, unrolls_per_iteration=3)
    # Episodes of 5 steps end inside unrolls 1 and 2 (steps 4 and 9), never at a boundary.
    env = dataclasses.replace(CONFIG.env, episode_length=5)
    config = dataclasses.replace(CONFIG, env=env, train=train)
    trainer = Trainer(config)
    state = trainer.init(jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(1)
    env_state, trajectory, finished = jax.jit(trainer.collect)(state.agent, state.env, key)
    assert trajectory.obs.shape == (4, 8 * 3, 4) and trajectory.reward.shape == (4, 24)
    assert train.steps_per_iteration == 8 * 4 * 3
    expected_env, count = state.env, 0.0
    for u, unroll_key in enumerate(jax.random.split(key, 3)):
        expected_env, expected, done = trainer.unroll(state.agent, expected_env, unroll_key)
        count += float(done["count"])
        for got, want in zip(jax.tree.leaves(trajectory), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(got[:, u::3], want, rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(columns_to_unrolls(got, 3)[u], want, rtol=1e-6, atol=1e-6)
    # Environment n's unroll u + 1 starts where its unroll u ended.
    np.testing.assert_allclose(trajectory.obs[0, 1::3], trajectory.next_obs[-1, 0::3], atol=1e-6)
    np.testing.assert_allclose(env_state.obs, expected_env.obs, rtol=1e-6, atol=1e-6)
    assert float(finished["count"]) == count == 2 * 8
    _, metrics = jax.jit(trainer.train)(jax.random.PRNGKey(0))
    # 384 steps over 2 evaluations of 96-step iterations.
    np.testing.assert_array_equal(metrics["iteration"], [2, 4])
    assert all(bool(jnp.isfinite(v).all()) for v in jax.tree.leaves(metrics))


@pytest.mark.parametrize(
    "first_state, fresh_starts",
    [(True, "auto"), (False, "per_unroll"), (False, "per_step")],
)
def test_reset_to_first_state_reaches_the_collected_batch(first_state, fresh_starts):
    """env.reset_to_first_state (Brax's reset) makes every episode the training loop collects
    start where its environment's first episode started; by default each starts afresh,
    from starts built once per unroll or once per step."""
    import dataclasses

    train = dataclasses.replace(CONFIG.train, unroll_length=4, unrolls_per_iteration=3)
    env = dataclasses.replace(
        CONFIG.env, episode_length=5, reset_to_first_state=first_state, fresh_starts=fresh_starts
    )
    trainer = Trainer(dataclasses.replace(CONFIG, env=env, train=train))
    assert trainer.fresh_per_step is (fresh_starts == "per_step")
    state = trainer.init(jax.random.PRNGKey(0))
    _, trajectory, _ = jax.jit(trainer.collect)(state.agent, state.env, jax.random.PRNGKey(1))
    first = np.asarray(state.env.obs)
    assert not np.allclose(trajectory.obs[2, 1::3], first)  # mid-episode
    # Episodes of 5 steps: the second and third start at steps 5 and 10, i.e. unroll 1's
    # step 1 and unroll 2's step 2 (columns n * 3 + u).
    for later in (trajectory.obs[1, 1::3], trajectory.obs[2, 2::3]):
        if first_state:
            np.testing.assert_array_equal(later, first)
        else:
            assert not np.allclose(later, first)


def test_fresh_starts_per_step_and_per_unroll_collect_alike_until_an_episode_ends():
    """The two ways of building fresh starts draw them from different keys and change nothing
    else: the same seed collects the same steps until the first episode ends, then new
    starts."""
    import dataclasses

    train = dataclasses.replace(CONFIG.train, unroll_length=4, unrolls_per_iteration=3)
    batches = {}
    for mode in ("per_unroll", "per_step"):
        env = dataclasses.replace(CONFIG.env, episode_length=5, fresh_starts=mode)
        trainer = Trainer(dataclasses.replace(CONFIG, env=env, train=train))
        state = trainer.init(jax.random.PRNGKey(0))
        _, batches[mode], _ = jax.jit(trainer.collect)(
            state.agent, state.env, jax.random.PRNGKey(1)
        )
    unroll, step = batches["per_unroll"].obs, batches["per_step"].obs
    # Two programs: XLA may fuse them differently, so equal to rounding.
    close = dict(rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(unroll[:, 0::3], step[:, 0::3], **close)  # steps 0-3
    np.testing.assert_allclose(unroll[0, 1::3], step[0, 1::3], **close)  # step 4, the 5th
    assert not np.allclose(unroll[1, 1::3], step[1, 1::3])  # step 5 starts episode 2


class Countdown:
    """A toy brax-API environment for evaluation: each episode lasts `limit` steps (2 to 5,
    drawn at reset); metric "t" is the step number 1, 2, ..., reward 0.5 per step."""

    observation_size = 1
    action_size = 1
    backend = "jax"

    def __init__(self, episode_metrics=None):
        if episode_metrics is not None:
            self.episode_metrics = episode_metrics

    def reset(self, rng):
        from brax.envs.base import State

        limit = jax.random.randint(rng, (), 2, 6).astype(jnp.float32)
        zero = jnp.zeros(())
        return State(jnp.stack([zero, limit]), jnp.zeros((1,)), zero, zero, {"t": zero}, {})

    def step(self, state, action):
        t, limit = state.pipeline_state[0] + 1.0, state.pipeline_state[1]
        return state.replace(
            pipeline_state=jnp.stack([t, limit]),
            reward=jnp.asarray(0.5),
            done=(t >= limit).astype(jnp.float32),
            metrics={"t": t},
        )


@pytest.mark.parametrize(
    "declared", [None, (("peak", "t", "max"), ("total", "t", "sum"), ("final", "t", "last"))]
)
def test_evaluation_reports_the_declared_episode_metrics(declared):
    """Undeclared: every metric summed over the episode (brax's evaluator); declared: exactly
    those reductions. Checked against the episode lengths the environment drew."""
    config = Config(
        EnvConfig("point_reach", episode_length=50),
        TrainConfig(num_envs=2, unroll_length=2, total_env_steps=8, num_evals=2, num_eval_envs=6),
        PPOConfig(num_minibatches=1, policy_hidden_sizes=(4,), value_hidden_sizes=(4,)),
    )
    env = Countdown(declared)
    trainer = Trainer(config, env=env)
    state = trainer.init(jax.random.PRNGKey(3))
    _, metrics = jax.jit(trainer.evaluate)(state)
    # The evaluation's own resets: the same key split, in a plain Python loop.
    _, reset_key = jax.random.split(state.key)
    limits = [int(env.reset(k).pipeline_state[1]) for k in jax.random.split(reset_key, 6)]
    assert len(set(limits)) > 1  # episodes of different lengths, so masking matters
    expected = {
        "eval/episode_return": np.mean([0.5 * n for n in limits]),
        "eval/episode_length": np.mean(limits),
    }
    sums = np.mean([n * (n + 1) / 2 for n in limits])
    if declared is None:
        expected["eval/episode_t"] = sums
    else:
        expected |= {
            "eval/peak": np.mean(limits),
            "eval/total": sums,
            "eval/final": np.mean(limits),
        }
    assert set(metrics) == set(expected)
    for name, value in expected.items():
        assert float(metrics[name]) == pytest.approx(value), name


def test_scan_metrics_equals_a_scan_with_a_dict_output():
    """Against jax.lax.scan writing the dict itself: the same carry, each metric stacked over
    the steps (an inner scan's too, nested), and with mean=True the mean over all steps."""
    from purerl.types import scan_metrics

    def step(carry, x):
        return carry + x, {"b": carry * x, "a": jnp.sin(x), "count": jnp.float32(1.0)}

    xs = jnp.arange(1.0, 6.0)
    want_carry, want = jax.lax.scan(step, 0.0, xs)
    carry, got = scan_metrics(step, 0.0, xs)
    assert float(carry) == float(want_carry) == 15.0
    assert sorted(got) == ["a", "b", "count"]
    assert_trees_equal(got, want)

    def outer(carry, x):
        return scan_metrics(step, carry, xs * x)

    nested_carry, nested = scan_metrics(outer, 0.0, jnp.arange(3.0))
    plain_carry, plain = jax.lax.scan(
        lambda c, x: jax.lax.scan(step, c, xs * x), 0.0, jnp.arange(3.0)
    )
    assert nested["b"].shape == (3, 5)
    assert_trees_equal((nested_carry, nested), (plain_carry, plain))
    _, means = scan_metrics(outer, 0.0, jnp.arange(3.0), mean=True)
    for name in plain:
        np.testing.assert_allclose(means[name], plain[name].mean(), rtol=1e-6)
    assert float(means["count"]) == 1.0


def test_evaluation_keys_are_independent_of_the_episodes_reset_keys():
    # With partitionable threefry, split(k, n)[i] is one key for every n and fold_in(k, i) is
    # split(k, n)[i]; the evaluation's action key was once fold_in(reset_key, 1), which is
    # episode 1's reset key, and its first step key the key that episode's start was drawn from.
    from purerl.loop import evaluation_keys

    def rows(keys):
        return {tuple(np.asarray(k).tolist()) for k in keys}

    next_key, reset_key, act_key = evaluation_keys(jax.random.PRNGKey(7))
    episodes = jax.random.split(reset_key, 16)
    taken = rows(episodes) | set().union(*(rows(jax.random.split(k, 3)) for k in episodes))
    for key in (next_key, act_key, *jax.random.split(act_key)):
        assert tuple(np.asarray(key).tolist()) not in taken
    assert len(rows((next_key, reset_key, act_key))) == 3
