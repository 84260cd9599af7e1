"""ant_ball and ant_push: observation layout, goal indices, fresh goals, arena, object contacts.

Each environment compiles one function (`simulate`, spring backend, the cheapest both take):
reset 4 environments, optionally put chosen bodies in chosen places, then scan 50 steps.
Every test of that environment reuses it with the same shapes, so nothing else compiles.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.ant_objects import BALL_CLEARANCE, BALL_RADIUS, PUSH_BLOCK_HALF_SIZE, PUSH_GOAL_CELLS
from envs.goal import GOAL_EPISODE_METRICS

NUM_ENVS, NUM_STEPS = 4, 50
OBJECT = slice(15, 18)  # the object's (x, y, z) in q, after the ant's 15 entries


class Compiled:
    """One environment and its compiled `simulate`; `random` is a 50-step rollout under
    uniform random actions from 4 fresh resets."""

    def __init__(self, name: str):
        self.name = name
        self.env = env = envs.make(name, backend="spring")

        @jax.jit
        def simulate(keys, actions, q, qd, placed):
            """Resets with `keys`; slots where `placed` start instead from (q, qd), keeping
            their reset goal. Returns the first states and the stacked per-step states."""
            states = jax.vmap(env.reset)(keys)
            chosen = jax.vmap(env.pipeline_init)(q, qd)

            def pick(a, b):
                return jnp.where(placed.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)

            states = states.replace(
                pipeline_state=jax.tree.map(pick, chosen, states.pipeline_state)
            )

            def step(state, action):
                state = jax.vmap(env.step)(state, action)
                return state, state

            return states, jax.lax.scan(step, states, actions)[1]

        self.simulate = simulate
        self.keys = jax.random.split(jax.random.PRNGKey(0), NUM_ENVS)
        actions = jax.random.uniform(
            jax.random.PRNGKey(1), (NUM_STEPS, NUM_ENVS, 8), minval=-1.0, maxval=1.0
        )
        self.random = self.run(actions=actions)

    def run(self, keys=None, actions=None, q=None, qd=None, placed=None):
        """`simulate` with defaults: `self.keys`, zero actions, nothing placed."""
        env = self.env
        q = jnp.tile(env.sys.init_q, (NUM_ENVS, 1)) if q is None else q
        qd = jnp.zeros((NUM_ENVS, env.sys.qd_size())) if qd is None else qd
        return jax.tree.map(
            np.asarray,
            self.simulate(
                self.keys if keys is None else keys,
                jnp.zeros((NUM_STEPS, NUM_ENVS, 8)) if actions is None else actions,
                q,
                qd,
                np.zeros(NUM_ENVS, bool) if placed is None else placed,
            ),
        )


@pytest.fixture(scope="module", params=["ant_ball", "ant_push"])
def compiled(request) -> Compiled:
    return Compiled(request.param)


def test_spec_and_backends(compiled):
    env, name = compiled.env, compiled.name
    achieved = (15, 16) if name == "ant_ball" else (0, 1)
    expected = envs.EnvSpec(44, 8, None, (42, 43), achieved, GOAL_EPISODE_METRICS, 0.5)
    assert envs.spec(env) == expected and name in envs.goal_names()
    assert env.sys.q_size() == 22 and env.sys.qd_size() == 20  # ant 15 + 7, ant 14 + 6
    works = ("generalized", "spring", "positional", "mjx")
    if name == "ant_push":
        works = ("generalized", "spring", "mjx")
        with pytest.raises(ValueError, match="does not work with backend 'positional'.*mjx"):
            envs.make(name, backend="positional")
        with pytest.raises(ValueError, match="choose one of"):
            envs.AntPush(backend="positional")
    else:
        with pytest.raises(ValueError, match="goal_radius must exceed"):
            envs.make(name, goal_radius=1.0)
    assert envs.backends_for(name) == works
    with pytest.raises(ValueError, match="success_radius must be positive"):
        envs.make(name, success_radius=0.0)


def test_random_steps_give_finite_float32_observations(compiled):
    first, steps = compiled.random
    size = compiled.env.observation_size
    assert first.obs.shape == (NUM_ENVS, size) and steps.obs.shape == (NUM_STEPS, NUM_ENVS, size)
    assert steps.obs.dtype == np.float32 and np.isfinite(steps.obs).all()
    for key in ("distance", "success"):
        assert steps.metrics[key].dtype == np.float32
    np.testing.assert_array_equal(steps.reward, steps.metrics["success"])
    # The ant moved, and no object sank through the floor or flew off.
    assert np.abs(steps.pipeline_state.q[-1, :, 7:15] - first.pipeline_state.q[:, 7:15]).max() > 0.1
    z = steps.pipeline_state.q[..., 17]
    rest = BALL_RADIUS if compiled.name == "ant_ball" else PUSH_BLOCK_HALF_SIZE[2]
    assert np.abs(z - rest).max() < 0.15


def test_goal_indices_select_the_goal_and_the_achieved_coordinates(compiled):
    env = compiled.env
    spec = envs.spec(env)
    first, steps = compiled.random
    achieved, goal = list(spec.achieved_goal_indices), list(spec.goal_indices)
    for state in (first, steps):
        np.testing.assert_array_equal(
            state.obs[..., achieved], state.pipeline_state.q[..., achieved]
        )
        np.testing.assert_array_equal(state.obs[..., goal], state.info["goal"])
        distance = np.linalg.norm(state.obs[..., achieved] - state.obs[..., goal], axis=-1)
        np.testing.assert_allclose(state.metrics["distance"], distance, rtol=1e-5)
    assert (first.metrics["success"] == 0).all() and (first.metrics["distance"] > 1.0).all()
    # Put the achieved-goal body (ball or torso) on each slot's goal: success from step one.
    q = np.tile(np.asarray(env.sys.init_q), (NUM_ENVS, 1))
    q[:, achieved] = first.info["goal"]
    _, placed = compiled.run(q=jnp.asarray(q), placed=np.ones(NUM_ENVS, bool))
    assert (placed.metrics["success"][:5] == 1).all() and (placed.reward[:5] == 1).all()
    np.testing.assert_array_equal(placed.obs[0][:, goal], first.info["goal"])


def test_goals_change_across_resets_and_starts_and_goals_are_where_declared(compiled):
    env, name = compiled.env, compiled.name
    keys = jax.random.split(jax.random.PRNGKey(7), NUM_ENVS)
    goals = np.concatenate([compiled.random[0].info["goal"], compiled.run(keys)[0].info["goal"]])
    assert len(np.unique(goals, axis=0)) == 2 * NUM_ENVS
    # Many more draws of the same samplers reset uses.
    many = jax.random.split(jax.random.PRNGKey(3), 512)
    sampled = np.asarray(jax.jit(jax.vmap(env._sample_goal))(many))
    assert len(np.unique(sampled, axis=0)) == 512
    starts = compiled.random[0].pipeline_state.q[:, :2]
    if name == "ant_ball":
        np.testing.assert_allclose(np.linalg.norm(sampled, axis=1), 5.0, rtol=1e-5)
        np.testing.assert_allclose(starts, 0.0, atol=0.1 + 1e-6)
        q = jnp.tile(env.sys.init_q, (512, 1))
        place = jax.jit(jax.vmap(env._place_objects))
        balls = np.asarray(place(q, jnp.asarray(sampled), many))[:, 15:17]
        distance = np.linalg.norm(balls, axis=1)
        assert distance.min() >= BALL_CLEARANCE - 1e-5 and distance.max() <= 2.0 + 1e-5
        # Between the ant and the goal: closer to the goal than the start is.
        assert (np.linalg.norm(balls - sampled, axis=1) < 5.0).all()
    else:
        layout, size = env.layout, env.cell_size
        cells = np.floor(np.concatenate([sampled, starts]) / size).astype(int)
        assert not layout.walls[cells[:, 1], cells[:, 0]].any()  # (row = y, column = x)
        np.testing.assert_array_equal(np.floor(starts / size), 1)  # start cell (1, 1)
        goal_cells = {(int(r), int(c)) for c, r in np.floor(sampled / size).astype(int)}
        assert goal_cells == set(PUSH_GOAL_CELLS)
        offsets = sampled - np.floor(sampled / size) * size - size / 2
        assert offsets.min() >= 0.0 and offsets.max() < 2.0  # centre + [0, 2) per axis


def test_feet_and_torso_push_the_object_which_rests_on_the_floor(compiled):
    """Four scripted slots, zero actions: the ant driven into the object pushes it; the object
    thrown at the standing ant stops against it; an object left alone stays where it is."""
    env, name = compiled.env, compiled.name
    q = np.tile(np.asarray(env.sys.init_q), (NUM_ENVS, 1))
    qd = np.zeros((NUM_ENVS, env.sys.qd_size()), np.float32)
    if name == "ant_ball":
        # Slot 0: a foot (0.87 m out on the diagonal) 0.08 m from the ball, ant at 3 m/s.
        q[:, :2] = 0.0
        q[:, 15:17] = [[1.05, 1.05], [2.0, 0.0], [3.0, 0.0], [0.0, 3.0]]
        qd[0, :2] = 2.1
        push_axis, contact = np.array([1.0, 1.0]) / np.sqrt(2), 0.25 + BALL_RADIUS
    else:
        # Slot 0: front feet 0.05 m from the block's face (x = 16.4), ant at 3 m/s.
        q[:, :2] = [[15.65, 20.0], [15.25, 20.0], [12.0, 12.0], [12.0, 12.0]]
        qd[0, 0] = 3.0
        push_axis, contact = np.array([1.0, 0.0]), 0.25 + PUSH_BLOCK_HALF_SIZE[0]
    qd[1, 14] = -3.0  # slot 1: the object thrown at the ant along -x
    first, steps = compiled.run(q=jnp.asarray(q), qd=jnp.asarray(qd), placed=np.ones(4, bool))
    obj, torso = steps.pipeline_state.q[..., OBJECT], steps.pipeline_state.q[..., :3]
    assert np.isfinite(steps.obs).all() and not steps.done.any()
    moved = obj[-1, :, :2] - q[:, 15:17]
    assert moved[0] @ push_axis > 0.2, moved[0]  # pushed away by the ant
    # Slot 1: slowed by the ant, never through its torso.
    assert moved[1, 0] < 0 and (obj[:, 1, 0] - torso[:, 1, 0]).min() > contact - 0.1
    np.testing.assert_allclose(moved[2:], 0.0, atol=1e-3)  # left alone: stays
    rest = BALL_RADIUS if name == "ant_ball" else PUSH_BLOCK_HALF_SIZE[2]
    # On the floor, not through it (spring lets the sliding block sink up to ~0.1 m).
    assert np.abs(obj[..., 2] - rest).max() < 0.15
