"""JaxGCRL's basic goal tasks (reacher_goal, pusher_easy/hard, half_cheetah_goal).

Compilation dominates: each environment compiles ONE function (`rollout`), on the cheapest
backend it supports, that resets a batch, steps half of it with random actions and half from
states whose goal was moved next to the achieved goal, and returns what every test reads.
Achieved goals are checked against body coordinates computed here from the physics state
(link positions, joint angles), not by the environment's own code.
"""

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.goal import GOAL_EPISODE_METRICS

NAMES = ("reacher_goal", "pusher_easy", "pusher_hard", "half_cheetah_goal")
# name: (backend of the shared compiled run, observation size, action size, goal indices,
# achieved-goal indices, success radius)
EXPECTED = {
    "reacher_goal": ("spring", 10, 2, (8, 9), (4, 5), 0.05),
    "pusher_easy": ("spring", 22, 7, (20, 21), (17, 18), 0.1),
    "pusher_hard": ("spring", 22, 7, (20, 21), (17, 18), 0.1),
    "half_cheetah_goal": ("spring", 19, 6, (18,), (0,), 0.5),
}
NUM_RESETS = 64  # resets drawn (goals must all differ); the first 2 * NUM_ENVS are stepped
NUM_ENVS = 4  # stepped with random actions, and as many with goals placed at the body
NUM_STEPS = 50
# Goals placed at the achieved goal plus these multiples of the success radius (first axis).
PLACED = np.array([0.0, 0.5, 1.5, 10.0])


@functools.cache
def rollout(name: str):
    """(env, first states of NUM_RESETS resets, trajectory, seconds to compile and run).

    The trajectory (NUM_STEPS, 2 * NUM_ENVS, ...) holds obs, reward, done, metrics, q and
    link positions; envs NUM_ENVS.. start with goal = achieved goal + PLACED * radius and take
    zero actions.
    """
    env = envs.make(name, backend=EXPECTED[name][0])
    achieved_indices = jnp.asarray(env.achieved_goal_indices)
    offsets = np.zeros((NUM_ENVS, len(env.goal_indices)), np.float32)
    offsets[:, 0] = PLACED * env.success_radius
    action_scale = jnp.repeat(jnp.array([1.0, 0.0]), NUM_ENVS)[:, None]

    @jax.jit
    def run(key):
        reset_key, action_key = jax.random.split(key)
        first = jax.vmap(env.reset)(jax.random.split(reset_key, NUM_RESETS))
        state = jax.tree.map(lambda x: x[: 2 * NUM_ENVS], first)
        placed = state.obs[NUM_ENVS:, achieved_indices] + offsets
        goal = state.info["goal"].at[NUM_ENVS:].set(placed)
        state = state.replace(info=dict(state.info, goal=goal))

        def step(state, key):
            shape = (2 * NUM_ENVS, env.action_size)
            action = action_scale * jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
            state = jax.vmap(env.step)(state, action)
            physics = state.pipeline_state
            return state, dict(
                obs=state.obs,
                reward=state.reward,
                done=state.done,
                metrics=state.metrics,
                q=physics.q,
                link_pos=physics.x.pos,
            )

        _, trajectory = jax.lax.scan(step, state, jax.random.split(action_key, NUM_STEPS))
        return first, trajectory

    start = time.perf_counter()
    first, trajectory = jax.block_until_ready(run(jax.random.PRNGKey(0)))
    seconds = time.perf_counter() - start
    print(f"{name}: compile + run {seconds:.1f} s")
    return env, first, jax.tree.map(np.asarray, trajectory), seconds


def body_coordinates(env, q: np.ndarray, link_pos: np.ndarray) -> np.ndarray:
    """The achieved goal (..., goal size) from joint angles q (..., q_size) and link positions
    (..., links, 3), computed here rather than by the environment's code."""
    if isinstance(env, envs.ReacherGoal):  # fingertip: 0.11 along the second link
        angle = q[..., 0] + q[..., 1]
        return link_pos[..., 1, :2] + 0.11 * np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    if isinstance(env, envs.PusherGoal):  # the object's centre
        return link_pos[..., env.sys.link_names.index("object"), :2]
    return link_pos[..., 0, :1]  # half cheetah: the torso's x


def goal_body(env, link_pos: np.ndarray) -> np.ndarray | None:
    """(x, y) of the model's visible target body (..., 2), None if it has none."""
    if isinstance(env, envs.ReacherGoal):
        return link_pos[..., env.sys.link_names.index("target"), :2]
    if isinstance(env, envs.PusherGoal):
        return link_pos[..., env.sys.link_names.index("goal"), :2]
    return None


@pytest.mark.parametrize("name", NAMES)
def test_spec_and_steps_give_finite_float32_observations(name):
    env, first, trajectory, _ = rollout(name)
    _, size, actions, goal_indices, achieved, radius = EXPECTED[name]
    assert envs.spec(env) == envs.EnvSpec(
        size, actions, None, goal_indices, achieved, GOAL_EPISODE_METRICS, radius
    )
    assert first.obs.shape == (NUM_RESETS, size) and first.obs.dtype == jnp.float32
    obs = trajectory["obs"]
    assert obs.shape == (NUM_STEPS, 2 * NUM_ENVS, size) and obs.dtype == np.float32
    assert np.isfinite(obs).all() and np.isfinite(first.obs).all()
    np.testing.assert_array_equal(trajectory["reward"], trajectory["metrics"]["success"])
    assert trajectory["done"].dtype == np.float32 and not trajectory["done"].any()


@pytest.mark.parametrize("name", NAMES)
def test_achieved_goal_is_the_body_and_metrics_follow(name):
    env, first, trajectory, _ = rollout(name)
    obs = trajectory["obs"]
    body = body_coordinates(env, trajectory["q"], trajectory["link_pos"])
    np.testing.assert_allclose(obs[..., env.achieved_goal_indices], body, atol=1e-5)
    physics = jax.tree.map(np.asarray, first.pipeline_state)
    np.testing.assert_allclose(
        body_coordinates(env, physics.q, physics.x.pos),
        first.obs[:, env.achieved_goal_indices],
        atol=1e-5,
    )
    goal = obs[..., env.goal_indices]
    # The commanded goal stays for the whole episode; the random-action half keeps reset's.
    np.testing.assert_array_equal(goal, np.broadcast_to(goal[0], goal.shape))
    np.testing.assert_array_equal(goal[0, :NUM_ENVS], first.info["goal"][:NUM_ENVS])
    distance = np.linalg.norm(body - goal, axis=-1)
    np.testing.assert_allclose(trajectory["metrics"]["distance"], distance, atol=1e-5)
    success = trajectory["metrics"]["success"]
    clear = np.abs(distance - env.success_radius) > 1e-4  # not on the boundary
    np.testing.assert_array_equal(success[clear], (distance < env.success_radius)[clear])


@pytest.mark.parametrize("name", NAMES)
def test_success_fires_at_the_goal_only(name):
    _, _, trajectory, _ = rollout(name)
    # Goals at 0 and 0.5 radii from the body succeed, at 1.5 and 10 radii do not.
    np.testing.assert_array_equal(trajectory["metrics"]["success"][0, NUM_ENVS:], [1, 1, 0, 0])


@pytest.mark.parametrize("name", NAMES)
def test_goals_are_fresh_each_reset_in_range_and_shown_by_the_target(name):
    env, first, trajectory, _ = rollout(name)
    goal = np.asarray(first.info["goal"])
    np.testing.assert_array_equal(first.obs[:, env.goal_indices], goal)
    assert len(np.unique(goal, axis=0)) == NUM_RESETS
    if not isinstance(env, envs.ReacherGoal):  # starts kept away from goals (reacher's aren't)
        assert float(first.metrics["success"].max()) == 0.0
    if isinstance(env, envs.ReacherGoal):
        assert (np.linalg.norm(goal, axis=1) <= 0.2).all()
    elif isinstance(env, envs.PusherGoal):
        low, high = env.goal_ranges[env.difficulty]
        assert ((goal >= low) & (goal <= high)).all()
        object_xy = body_coordinates(env, None, np.asarray(first.pipeline_state.x.pos))
        assert (np.linalg.norm(object_xy - goal, axis=1) >= 0.17 - 1e-5).all()
    else:
        assert ((np.abs(goal) >= 1.0) & (np.abs(goal) <= 5.0)).all()
        assert (goal > 0).any() and (goal < 0).any()
    target = goal_body(env, np.asarray(first.pipeline_state.x.pos))
    if target is not None:  # the visible target is where the goal is, and stays there
        np.testing.assert_allclose(target, goal, atol=1e-6)
        later = goal_body(env, trajectory["link_pos"][-1, :NUM_ENVS])
        np.testing.assert_allclose(later, goal[:NUM_ENVS], atol=1e-3)


def test_registry_backends_and_bad_arguments():
    for name in NAMES:
        assert envs.is_goal_conditioned(name) and name in envs.goal_names()
        assert envs.backends_for(name) == envs.BRAX_BACKENDS
    env = envs.make("half_cheetah_goal", single_goal=True, success_radius=1.0)
    np.testing.assert_array_equal(env.single_goal_position, [5.0])  # JaxGCRL's fixed target
    assert env.success_radius == 1.0 and env.single_goal
    np.testing.assert_allclose(envs.make("pusher_hard").single_goal_position, [0.4, -0.2])
    with pytest.raises(ValueError, match="difficulty must be one of easy, hard"):
        envs.PusherGoal(difficulty="medium")
    with pytest.raises(ValueError, match="min_goal_distance"):
        envs.HalfCheetahGoal(goal_distance=1.0, min_goal_distance=2.0)
    with pytest.raises(ValueError, match="success_radius must be positive"):
        envs.ReacherGoal(success_radius=0.0)
    with pytest.raises(ValueError, match="unknown backend"):
        envs.make("reacher_goal", backend="warp-speed")


def test_a_class_declaring_fewer_backends_refuses_the_others(monkeypatch):
    monkeypatch.setattr(envs.ReacherGoal, "backends", ("generalized", "mjx"))
    assert envs.backends_for("reacher_goal") == ("generalized", "mjx")
    with pytest.raises(ValueError, match="'reacher_goal' does not work with backend 'spring'; "):
        envs.make("reacher_goal", backend="spring")
    with pytest.raises(ValueError, match="choose one of generalized, mjx"):
        envs.ReacherGoal(backend="positional")
