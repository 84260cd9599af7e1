"""Arm tasks (envs/arm.py): observation layout, goals, success, control, registry.

MJX compiles slowly on a CPU, so each task is compiled once (`rollout`): a batch of 10
environments reset and stepped 50 times under one jit. Slots 0-3 get uniform random
actions; 4-5 start with the achieved goal placed on the commanded one (the cube moved onto
its goal, or for reach the goal moved onto the wrist) and 6-7 with the goal 0.3 m away, all
four holding the start pose; slots 8 and 9 swing joint 1 fully one way (closing the
gripper) and the other (opening it).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.arm import ArmBinpick, ArmPush, ArmReach
from envs.goal import GOAL_EPISODE_METRICS

NAMES = ("arm_reach", "arm_push_easy", "arm_push_hard", "arm_binpick_easy", "arm_binpick_hard")
NUM_RANDOM, NUM_ENVS, NUM_STEPS = 4, 10, 50
NEAR, FAR, SWING = (4, 5), (6, 7), (8, 9)


def placed(env, state, achieved, offset):
    """`state` with the commanded goal at `achieved + offset`; for cube tasks the cube is
    moved instead (its free joint's position), so the achieved goal is what changes."""
    goal = state.info["goal"]
    if isinstance(env, ArmReach):
        goal = achieved + offset
        obs = state.obs.at[np.asarray(env.goal_indices)].set(goal)
        return state.replace(obs=obs, info=dict(state.info, goal=goal))
    cube = env.sys.mj_model.jnt_qposadr[env.sys.mj_model.joint("cube").id]
    qpos = state.pipeline_state.qpos.at[cube : cube + 3].set(goal - offset)
    return state.replace(pipeline_state=state.pipeline_state.replace(qpos=qpos))


@functools.cache
def rollout(name: str):
    """(env, first states, per-step observations / success / distance / reward), numpy."""
    env = envs.make(name)

    def run(key):
        reset_key, action_key = jax.random.split(key)
        states = jax.vmap(env.reset)(jax.random.split(reset_key, NUM_ENVS))
        first = states
        achieved = states.obs[:, np.asarray(env.achieved_goal_indices)]
        # Cubes: 3 cm above the goal (falling 1 cm in a step), or 0.3 m behind it (clear of
        # bins and arm); reach: the goal 3 cm below the wrist, or 0.3 m ahead of it.
        near = jnp.array([0.0, 0.0, -0.03])
        far = jnp.array([0.0, -0.3, 0.0])
        for slots, offset in ((NEAR, near), (FAR, far)):
            for slot, source in zip(slots, (0, 1), strict=True):
                one = jax.tree.map(lambda x, s=source: x[s], states)
                one = placed(env, one, achieved[source], offset)
                states = jax.tree.map(lambda x, y, s=slot: x.at[s].set(y), states, one)
        hold = jnp.tile(jnp.asarray(env.hold_action), (NUM_ENVS, 1))
        swing = hold[:2].at[:, 0].set(jnp.array([1.0, -1.0]))
        if env.action_size == 5:
            swing = swing.at[:, 4].set(jnp.array([1.0, -1.0]))
        hold = hold.at[np.asarray(SWING)].set(swing)

        def step(states, key):
            random = jax.random.uniform(key, (NUM_RANDOM, env.action_size), minval=-1, maxval=1)
            states = jax.vmap(env.step)(states, hold.at[:NUM_RANDOM].set(random))
            metrics = states.metrics
            return states, (states.obs, metrics["success"], metrics["distance"], states.reward)

        keys = jax.random.split(action_key, NUM_STEPS)
        last, trace = jax.lax.scan(step, states, keys)
        return first, states.obs, last.pipeline_state.x.pos, trace

    run = jax.jit(run, compiler_options=envs.compiler_options(env))  # see envs.compiler_options
    first, start_obs, last_pos, trace = jax.tree.map(np.asarray, run(jax.random.PRNGKey(0)))
    return env, first, start_obs, last_pos, trace


@pytest.mark.parametrize("name", NAMES)
def test_spec_and_finite_observations(name):
    env, first, _, _, (obs, success, distance, reward) = rollout(name)
    spec = envs.spec(env)
    size = 16 if name == "arm_reach" else 21
    expected = envs.EnvSpec(
        size,
        4 if name == "arm_reach" else 5,
        None,
        (size - 3, size - 2, size - 1),
        (7, 8, 9) if name == "arm_reach" else (0, 1, 2),
        GOAL_EPISODE_METRICS,
        0.1,
    )
    assert spec == expected
    assert first.obs.shape == (NUM_ENVS, size) and obs.shape == (NUM_STEPS, NUM_ENVS, size)
    assert obs.dtype == np.float32 and np.isfinite(obs).all() and np.isfinite(first.obs).all()
    for metric in (success, distance, reward):
        assert metric.dtype == np.float32 and metric.shape == (NUM_STEPS, NUM_ENVS)
    np.testing.assert_array_equal(reward, success)
    assert first.done.dtype == np.float32 and not first.done.any()


@pytest.mark.parametrize("name", NAMES)
def test_goal_and_achieved_indices(name):
    env, first, _, last_pos, (obs, success, distance, _) = rollout(name)
    goal, achieved = list(env.goal_indices), list(env.achieved_goal_indices)
    # The goal is the commanded one, unchanged through the episode.
    np.testing.assert_array_equal(first.obs[:, goal], first.info["goal"])
    np.testing.assert_array_equal(
        obs[:, :NUM_RANDOM, goal],
        np.broadcast_to(first.info["goal"][:NUM_RANDOM], (NUM_STEPS, NUM_RANDOM, 3)),
    )
    # The achieved goal is the wrist (reach) or the cube: brax link index = MuJoCo body - 1.
    body = "link7" if name == "arm_reach" else "cube"
    link = env.sys.mj_model.body(body).id - 1
    np.testing.assert_allclose(obs[-1][:, achieved], last_pos[:, link], atol=1e-6)
    gap = np.linalg.norm(obs[..., achieved] - obs[..., goal], axis=-1)
    np.testing.assert_allclose(distance, gap, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(success, (distance < 0.1).astype(np.float32))
    # Placed 3 cm from the goal: success; 0.3 m away: none.
    assert (success[0, list(NEAR)] == 1.0).all(), distance[0, list(NEAR)]
    assert (success[0, list(FAR)] == 0.0).all() and (distance[0, list(FAR)] > 0.25).all()


@pytest.mark.parametrize("name", NAMES)
def test_goals_and_starts_drawn_from_their_regions(name):
    env, first, _, _, _ = rollout(name)
    goals = first.info["goal"][:NUM_RANDOM]
    assert len(np.unique(goals.round(6), axis=0)) == NUM_RANDOM  # a new goal each reset
    region = env.goal_region
    assert (np.abs(goals - region.center) <= np.asarray(region.half) + 1e-6).all()
    if name != "arm_reach":
        cubes = first.obs[:NUM_RANDOM, :3]
        assert len(np.unique(cubes.round(6), axis=0)) == NUM_RANDOM
        start = env.start_region
        assert (np.abs(cubes - start.center) <= np.asarray(start.half) + 1e-3).all()
    if "binpick" in name:  # start in the left bin, goal in the right one, clear of walls
        (left, right), wall = env.bins, 0.03  # cube half-width
        assert (np.abs(cubes[:, :2] - left.center) <= left.half - wall).all()
        assert (np.abs(goals[:, :2] - right.center) <= right.half - wall).all()


@pytest.mark.parametrize("name", NAMES)
def test_actions_move_the_arm_and_gripper(name):
    env, first, _, _, (obs, *_) = rollout(name)
    wrist = obs[..., 7:10] if name == "arm_reach" else obs[..., 10:13]
    start = (first.obs[:, 7:10] if name == "arm_reach" else first.obs[:, 10:13])[0]
    # Holding the start pose keeps the wrist still; random targets move it about.
    held = np.linalg.norm(wrist[:, list(NEAR)] - start, axis=-1)
    assert held.max() < 0.02, held.max()
    travelled = np.linalg.norm(np.diff(wrist[:, :NUM_RANDOM], axis=0), axis=-1).sum(axis=0)
    assert (travelled > 0.3).all(), travelled
    # Joint 1 turned fully one way (160 degrees) or the other (20 degrees) swings the wrist,
    # which starts in front of the base (+y), to -x or +x.
    plus, minus = SWING
    assert wrist[-1, plus, 0] < -0.3 and wrist[-1, minus, 0] > 0.3, wrist[-1, list(SWING)]
    if name != "arm_reach":  # closing shuts the fingers, opening keeps them 8 cm apart
        gap = obs[-1, :, 16]
        assert gap[plus] < 0.01 and abs(gap[minus] - 0.08) < 0.005, gap


def test_registry_backends_and_bad_arguments():
    for name in NAMES:
        assert envs.backends_for(name) == ("mjx",)
        assert envs.is_goal_conditioned(name) and name in envs.goal_names()
    assert envs.backends_for("ant_goal") == envs.BRAX_BACKENDS
    with pytest.raises(ValueError, match="'arm_push_easy' does not work with backend 'spring'"):
        envs.make("arm_push_easy", backend="spring")
    with pytest.raises(ValueError, match="ArmReach does not work with backend 'generalized'.*mjx"):
        ArmReach(backend="generalized")
    with pytest.raises(ValueError, match="difficulty='medium'.*easy, hard"):
        ArmPush(difficulty="medium")
    with pytest.raises(ValueError, match="success_radius"):
        ArmBinpick(success_radius=0.0)
    assert envs.make("arm_reach", success_radius=0.2).success_radius == 0.2
    single = envs.make("arm_binpick_easy", single_goal=True)
    assert single.single_goal and np.allclose(single.single_goal_position, [0.17, 0.6, 0.03])


def test_arm_programs_compile_without_fusion_emitters_on_a_cpu():
    """Per program (jax.jit's compiler_options), not process-wide; others keep XLA's defaults."""
    from experiments.presets import PRESETS
    from purerl import Trainer

    options = {"xla_cpu_use_fusion_emitters": False}
    assert jax.default_backend() == "cpu"
    assert envs.compiler_options("arm_push_hard") == options
    wrapped = envs.AutoResetBatch(envs.EpisodeTracker(rollout("arm_reach")[0], 10), 2)
    assert envs.compiler_options(wrapped) == options
    assert Trainer(PRESETS["crl-arm-reach"].config).compiler_options == options
    for name in ("point_umaze", "ant_umaze"):
        assert envs.compiler_options(name) is None
    assert Trainer(PRESETS["crl-point-umaze"].config).compiler_options is None
