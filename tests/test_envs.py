import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from tests.compiling import OPTIMISED


def batched(name, num_envs, episode_length, **kwargs):
    return envs.AutoResetBatch(
        envs.EpisodeTracker(envs.make(name, **kwargs), episode_length), num_envs
    )


def test_time_limit_truncates_and_autoreset_resamples_goals():
    env = batched("point_reach", num_envs=8, episode_length=3)
    state = env.reset(jax.random.PRNGKey(0))
    first_goals = np.asarray(state.pipeline_state.goal)
    step = jax.jit(env.step)
    goals, dones, truncations = [first_goals], [], []
    for _ in range(9):
        previous_obs = state.obs
        state = step(state, jnp.ones((8, 2)))
        dones.append(np.asarray(state.done))
        truncations.append(np.asarray(state.info["truncation"]))
        goals.append(np.asarray(state.pipeline_state.goal))
        # final_obs is the observation the step reached, before the reset replaced it.
        moved = np.asarray(state.info["final_obs"][:, :2] - previous_obs[:, :2])
        np.testing.assert_allclose(np.abs(moved), 0.1, atol=1e-5)
    dones, truncations = np.array(dones), np.array(truncations)
    np.testing.assert_array_equal(dones[:, 0], [0, 0, 1, 0, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(truncations, dones)  # point_reach never terminates
    # Every reset draws a new goal in every slot; the anchors' autoreset would repeat goals[0].
    for episode in range(1, 4):
        assert not np.allclose(goals[3 * episode], first_goals)
        assert not np.allclose(goals[3 * episode], goals[3 * episode - 3])
    np.testing.assert_allclose(state.info["last_episode_length"], 3.0)


def test_termination_is_not_truncation_and_episode_statistics():
    env = batched("cartpole", num_envs=4, episode_length=500)
    state = env.reset(jax.random.PRNGKey(1))
    step = jax.jit(env.step)
    t = 0
    while t < 200 and not bool(state.done.any()):
        state = step(state, jnp.ones((4,), jnp.int32))  # always push right: falls quickly
        t += 1
    assert t < 100
    done = np.asarray(state.done) > 0
    assert not np.asarray(state.info["truncation"])[done].any()
    np.testing.assert_allclose(np.asarray(state.info["last_episode_return"])[done], t)
    np.testing.assert_allclose(np.asarray(state.info["last_episode_length"])[done], t)
    np.testing.assert_allclose(np.asarray(state.info["episode_return"])[done], 0.0)  # reset


def test_step_keeps_dtypes_so_loops_compile_once():
    env = batched("inverted_pendulum", num_envs=2, episode_length=10, backend="spring")
    state = env.reset(jax.random.PRNGKey(0))
    stepped = jax.jit(env.step)(state, jnp.zeros((2, 1)))
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(stepped), strict=True):
        assert jax.typeof(a) == jax.typeof(b)


@pytest.mark.parametrize("name", ["ant", "humanoid", "hopper", "inverted_pendulum"])
def test_brax_registry_names(name):
    env = envs.make(name, backend="spring")
    spec = envs.spec(env)
    assert spec.observation_size == env.observation_size > 0 and not spec.discrete


def test_own_specs_and_unknown_names():
    assert envs.spec(envs.make("cartpole")) == envs.EnvSpec(4, 1, 2)
    assert envs.spec(envs.make("point_reach")) == envs.EnvSpec(4, 2, None)
    with pytest.raises(ValueError, match="unknown environment 'nope'"):
        envs.make("nope")
    with pytest.raises(ValueError, match="unknown backend"):
        envs.make("ant", backend="warp-speed")


def test_fresh_starts_once_per_unroll_are_each_used_once():
    """step_with_fresh hands each finished environment the fresh start built for it; one that
    finishes twice in the unroll is reset from a new key. Every episode's start is its own:
    no two episodes anywhere start from the same goal."""
    env = batched("point_reach", num_envs=4, episode_length=2)
    state = env.reset(jax.random.PRNGKey(0))
    starts = [np.asarray(state.pipeline_state.goal)]
    fresh, state = jax.jit(env.fresh_states)(state)
    available = jnp.ones((4,), bool)
    step = jax.jit(env.step_with_fresh)
    for t in range(5):  # episodes end at t = 1 and t = 3: the second end needs a real reset
        state, available = step(state, jnp.ones((4, 2)), fresh, available)
        goals = np.asarray(state.pipeline_state.goal)
        if t == 1:
            np.testing.assert_array_equal(goals, np.asarray(fresh.pipeline_state.goal))
            assert not np.asarray(available).any()
        if t in (1, 3):
            assert np.asarray(state.done).all()
            starts.append(goals)
            # The observation the step reached is kept for bootstrapping, before the start.
            assert not np.allclose(state.info["final_obs"], state.obs)
        else:
            np.testing.assert_array_equal(goals, starts[-1])  # mid-episode: unchanged
    starts = np.concatenate(starts)
    assert len(np.unique(starts.round(6), axis=0)) == len(starts)


def test_fresh_starts_per_step_give_every_finish_its_own_start():
    """With one fresh start per environment and step (`fresh_states(state, T)`), a finish at
    step t takes step t's start, however many times an environment finishes in the unroll:
    every episode's start is its own, and the reset keys move on past all of them."""
    env = batched("point_reach", num_envs=4, episode_length=2)
    state = env.reset(jax.random.PRNGKey(0))
    starts = [np.asarray(state.pipeline_state.goal)]
    fresh, advanced = jax.jit(env.fresh_states, static_argnums=1)(state, 5)
    assert fresh.obs.shape == (5, 4, state.obs.shape[1])
    assert not np.array_equal(advanced.info["reset_key"], state.info["reset_key"])
    step = jax.jit(env.step_with_fresh)
    state = advanced
    for t in range(5):  # episodes end at t = 1 and t = 3
        own = jax.tree.map(lambda x, t=t: x[t], fresh)
        state, available = step(state, jnp.ones((4, 2)), own, None)
        assert available is None
        goals = np.asarray(state.pipeline_state.goal)
        if t in (1, 3):
            assert np.asarray(state.done).all()
            np.testing.assert_array_equal(goals, np.asarray(fresh.pipeline_state.goal[t]))
            np.testing.assert_array_equal(state.info["steps"], 0)
            assert not np.allclose(state.info["final_obs"], state.obs)
            starts.append(goals)
        else:
            np.testing.assert_array_equal(goals, starts[-1])  # mid-episode: unchanged
    # Every start in the pool is its own too, the unused ones included.
    pool = np.concatenate([starts[0], np.asarray(fresh.pipeline_state.goal).reshape(-1, 2)])
    assert len(np.unique(pool.round(6), axis=0)) == len(pool) == 4 + 5 * 4


def test_only_fresh_resets_step_through_a_conditional():
    """A conditional reads its predicate back to the host on every step on a GPU (5% of
    PureJaxRL's ant configuration on an H200, docs/BENCHMARKS.md): with reset_to_first_state
    no step path holds one, nor with fresh starts built for every step; fresh resets
    otherwise do, since a reset is costly."""
    single = envs.EpisodeTracker(envs.make("point_reach"), 2)
    for first_state in (True, False):
        env = envs.AutoResetBatch(single, num_envs=4, reset_to_first_state=first_state)
        state = env.reset(jax.random.PRNGKey(0))
        fresh, state = env.fresh_states(state)
        # This step's own starts (with reset_to_first_state, the first states again).
        per_step = env.fresh_states(state, 3)[0]
        own = fresh if first_state else jax.tree.map(lambda x: x[0], per_step)
        available = jnp.ones((4,), bool)
        action = jnp.ones((4, 2))
        with_fresh = jax.jit(env.step_with_fresh)
        programs = {
            "step": (jax.jit(env.step).lower(state, action), not first_state),
            "step_with_fresh": (with_fresh.lower(state, action, fresh, available), not first_state),
            "step_with_fresh per step": (with_fresh.lower(state, action, own, None), False),
        }
        for name, (program, conditional) in programs.items():
            # The lowered program, so that a conditional nested in any call is seen too.
            has_cond = "stablehlo.case" in program.as_text()
            assert has_cond is conditional, (name, first_state)


def test_if_any_stays_a_conditional_under_vmap():
    """envs.wrappers.if_any under jax.vmap (seeds trained in one program): fn runs only when
    some member's mask has an entry set, and then only changes those entries; nested vmaps
    and an operand shared by all members work. A plain lax.cond becomes a select there."""
    from envs.wrappers import if_any

    runs = []

    def add_one(mask, x):
        jax.debug.callback(lambda: runs.append(1))
        return jnp.where(mask, x + 1.0, x)

    def f(mask, x):
        return if_any(mask, add_one, x)

    masks = jnp.array([[False, False], [True, False]])
    x = jnp.zeros((2, 2))
    np.testing.assert_array_equal(jax.jit(jax.vmap(f))(masks, x), [[0, 0], [1, 0]])
    jax.effects_barrier()
    assert runs
    runs.clear()
    np.testing.assert_array_equal(jax.jit(jax.vmap(f))(masks & False, x), 0)
    jax.effects_barrier()
    assert not runs  # no member needed it: skipped, as a conditional skips
    np.testing.assert_array_equal(jax.vmap(jax.vmap(f))(masks, x), [[0, 0], [1, 0]])
    np.testing.assert_array_equal(jax.vmap(f, in_axes=(0, None))(masks, x[0]), [[0, 0], [1, 0]])
    assert "stablehlo.case" in jax.jit(jax.vmap(f)).lower(masks, x).as_text()

    def plain(mask, x):
        return jax.lax.cond(jnp.any(mask), add_one, lambda _, x: x, mask, x)

    assert "stablehlo.case" not in jax.jit(jax.vmap(plain)).lower(masks, x).as_text()


def test_vmapped_batches_reset_as_each_alone():
    """Two seeds' batches stepped under one jax.vmap, every environment finishing twice in the
    unroll (so the second finish takes the conditional reset): each seed's states are those
    of its own run, and the program keeps its conditional."""
    env = batched("point_reach", num_envs=4, episode_length=2)

    def unroll(key):
        fresh, state = env.fresh_states(env.reset(key))

        def step(carry, _):
            state, available = carry
            state, available = env.step_with_fresh(state, jnp.ones((4, 2)), fresh, available)
            return (state, available), (state.pipeline_state.goal, state.obs)

        return jax.lax.scan(step, (state, jnp.ones((4,), bool)), None, length=5)[1]

    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    together = jax.jit(jax.vmap(unroll))(keys)
    for i, key in enumerate(keys):
        alone = jax.jit(unroll)(key)
        for a, b in zip(alone, together, strict=True):
            np.testing.assert_array_equal(a, b[i])
    assert "stablehlo.case" in jax.jit(jax.vmap(unroll)).lower(keys).as_text()


def test_reset_to_first_state_replays_each_slots_first_start():
    """With reset_to_first_state (brax's AutoResetWrapper), every episode of a slot starts from
    the state the slot was first reset to, through both step paths (the once-per-unroll starts
    and a second finish within one unroll), while the slots still differ from each other."""
    env = envs.AutoResetBatch(
        envs.EpisodeTracker(envs.make("point_reach"), 2), num_envs=4, reset_to_first_state=True
    )
    state = env.reset(jax.random.PRNGKey(0))
    first_obs, first_goals = np.asarray(state.obs), np.asarray(state.pipeline_state.goal)
    assert len(np.unique(first_goals.round(6), axis=0)) == 4
    fresh, state = jax.jit(env.fresh_states)(state)
    np.testing.assert_array_equal(fresh.obs, first_obs)
    available = jnp.ones((4,), bool)
    step, plain_step = jax.jit(env.step_with_fresh), jax.jit(env.step)
    for t in range(6):  # episodes end at t = 1, 3 (a second finish in the unroll) and 5
        if t < 4:
            state, available = step(state, jnp.ones((4, 2)), fresh, available)
        else:
            state = plain_step(state, jnp.ones((4, 2)))
        if t % 2:
            assert np.asarray(state.done).all()
            np.testing.assert_array_equal(state.obs, first_obs)
            np.testing.assert_array_equal(state.pipeline_state.goal, first_goals)
            np.testing.assert_array_equal(state.info["steps"], 0)
            np.testing.assert_array_equal(state.info["episode_return"], 0.0)
            # The observation the step reached is kept for bootstrapping, before the start.
            assert not np.allclose(state.info["final_obs"], first_obs)
        else:
            assert not np.allclose(state.obs, first_obs)


def test_first_state_batch_steps_exactly_as_brax_training_wrappers():
    """With reset_to_first_state, a batch is what Brax's trainer steps (brax's
    `envs.wrappers.training.wrap`: episode limit, vmap, autoreset to the first state): from the
    same reset keys and actions, the same observations, rewards, dones and truncations to the
    bit, across the resets of many finished episodes."""
    from brax import envs as brax_envs
    from brax.envs.wrappers import training

    num_envs, steps = 32, 150
    ours = envs.AutoResetBatch(
        envs.EpisodeTracker(envs.make("inverted_pendulum", backend="spring"), 1000),
        num_envs,
        reset_to_first_state=True,
    )
    brax_env = brax_envs.get_environment("inverted_pendulum", backend="spring")
    theirs = training.wrap(brax_env, episode_length=1000)
    key = jax.random.PRNGKey(3)
    env_keys, _ = ours.reset_keys(key)
    actions = jnp.tanh(jax.random.normal(jax.random.PRNGKey(7), (steps, num_envs, 1)))

    def unroll(env, state):
        def step(state, action):
            next_state = env.step(state, action)
            record = (state.obs, next_state.reward, next_state.done)
            return next_state, (*record, next_state.info["truncation"])

        return jax.lax.scan(step, state, actions)[1]

    # Two programs agree to the bit only as XLA compiles them by default (tests/compiling.py).
    ours_run = jax.jit(lambda: unroll(ours, ours.reset(key)), compiler_options=OPTIMISED)()
    theirs_run = jax.jit(
        lambda: unroll(theirs, theirs.reset(env_keys)), compiler_options=OPTIMISED
    )()
    assert float(theirs_run[2].sum()) > 2 * num_envs  # most slots finished and restarted
    for name, a, b in zip(
        ("obs", "reward", "done", "truncation"), ours_run, theirs_run, strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)


def test_unrolled_substeps_step_as_brax_scan_without_its_loop():
    """envs.make(..., unroll_substeps=True): brax's n_frames physics substeps unrolled into the
    step's program (no while loop left), stepping as brax's own scan does; other instances of
    the environment keep brax's scan."""
    unrolled = envs.make("inverted_pendulum", "spring", unroll_substeps=True)
    scan = envs.make("inverted_pendulum", "spring")
    assert unrolled._n_frames > 1
    state = scan.reset(jax.random.PRNGKey(0))
    action = jnp.array([0.4])
    assert "while" in jax.jit(scan.step).lower(state, action).as_text()
    assert "while" not in jax.jit(unrolled.step).lower(state, action).as_text()
    a = b = state
    for _ in range(5):
        a, b = jax.jit(scan.step)(a, action), jax.jit(unrolled.step)(b, action)
    np.testing.assert_allclose(b.obs, a.obs, rtol=1e-5, atol=1e-6)
    assert not np.allclose(a.obs, state.obs)
