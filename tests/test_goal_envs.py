"""Goal-conditioned environments: observation layout, walls, metrics, resets, registry.

Brax-based environments compile slowly, so each is jitted once (`compiled_ant`, spring
backend) and every test of it reuses those compiled functions.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax.envs.humanoid import Humanoid

import envs
from envs.goal import GOAL_EPISODE_METRICS, LAYOUTS, MazeLayout, path_distances

POINT_MAZES = {
    "point_maze_open": "open",
    "point_umaze": "umaze",
    "point_u4maze": "u4maze",
    "point_u5maze": "u5maze",
    "point_bigmaze": "bigmaze",
    "point_hardestmaze": "hardestmaze",
}


def in_wall(layout: str, xy: np.ndarray) -> np.ndarray:
    """Whether points (..., 2) lie in a wall cell of a unit-cell layout, computed in numpy."""
    walls = np.array([[c == "#" for c in row] for row in LAYOUTS[layout]])
    col, row = np.floor(xy[..., 0]).astype(int), np.floor(xy[..., 1]).astype(int)
    inside = (row >= 0) & (row < walls.shape[0]) & (col >= 0) & (col < walls.shape[1])
    return ~inside | walls[np.clip(row, 0, walls.shape[0] - 1), np.clip(col, 0, walls.shape[1] - 1)]


def random_rollout(env, key, num_envs: int, num_steps: int, scale: float = 1.0):
    """Positions (num_steps + 1, num_envs, 2), goals and success under uniform random actions."""

    @jax.jit
    def run(key):
        reset_key, act_key = jax.random.split(key)
        state = jax.vmap(env.reset)(jax.random.split(reset_key, num_envs))

        def step(state, key):
            action = jax.random.uniform(key, (num_envs, 2), minval=-scale, maxval=scale)
            state = jax.vmap(env.step)(state, action)
            return state, (state.pipeline_state.position, state.metrics["success"])

        _, (positions, success) = jax.lax.scan(step, state, jax.random.split(act_key, num_steps))
        positions = jnp.concatenate([state.pipeline_state.position[None], positions])
        return positions, state.pipeline_state.goal, success

    return jax.tree.map(np.asarray, run(key))


@pytest.mark.parametrize("name", sorted(POINT_MAZES))
def test_point_maze_layout_and_free_starts_and_goals(name):
    env = envs.make(name)
    spec = envs.spec(env)
    assert spec == envs.EnvSpec(4, 2, None, (2, 3), (0, 1), GOAL_EPISODE_METRICS, 0.3)
    assert spec.goal_conditioned
    states = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 512))
    obs = np.asarray(states.obs)
    assert obs.dtype == np.float32
    np.testing.assert_array_equal(
        obs[:, spec.achieved_goal_indices], states.pipeline_state.position
    )
    np.testing.assert_array_equal(obs[:, spec.goal_indices], states.pipeline_state.goal)
    for points in (obs[:, :2], obs[:, 2:]):
        assert not in_wall(POINT_MAZES[name], points).any()
        # Uniform over free cells: every free cell gets starts and goals.
        cells = {tuple(c) for c in np.floor(points).astype(int)}
        assert len(cells) == len(MazeLayout.parse(LAYOUTS[POINT_MAZES[name]]).free_cells)
    assert len(np.unique(obs[:, 2:], axis=0)) == 512  # a new goal each reset


@pytest.mark.parametrize("name", sorted(POINT_MAZES))
def test_random_actions_never_enter_walls(name):
    # Actions up to 3x the valid range also check that they are clipped to max_speed.
    positions, _, _ = random_rollout(envs.make(name), jax.random.PRNGKey(1), 256, 400, scale=3.0)
    assert not in_wall(POINT_MAZES[name], positions).any()
    steps = np.abs(np.diff(positions, axis=0))
    assert steps.max() <= 0.15 + 1e-6
    assert (steps > 0.1).mean() > 0.3  # clipped, not stuck


def test_pushing_into_a_wall_slides_along_it():
    env = envs.make("point_umaze")
    state = env.reset(jax.random.PRNGKey(0))
    # Cell (1, 1) is free and row 0 (y < 1) is wall: pushing down-right keeps only the x move.
    state = state.replace(
        pipeline_state=state.pipeline_state.replace(position=jnp.array([1.5, 1.05]))
    )
    moved = env.step(state, jnp.array([1.0, -1.0]))
    np.testing.assert_allclose(moved.pipeline_state.position, [1.65, 1.05], atol=1e-6)
    # In the corner of cell (1, 3) (x >= 4 and y < 1 are walls), pushing into both stays put
    # while the free direction still moves.
    corner = state.replace(
        pipeline_state=state.pipeline_state.replace(position=jnp.array([3.9, 1.1]))
    )
    np.testing.assert_allclose(
        env.step(corner, jnp.array([1.0, -1.0])).pipeline_state.position, [3.9, 1.1], atol=1e-6
    )
    np.testing.assert_allclose(
        env.step(corner, jnp.array([1.0, 1.0])).pipeline_state.position, [3.9, 1.25], atol=1e-6
    )


def test_point_maze_step_keeps_types():
    env = envs.make("point_bigmaze", single_goal=True)
    state = env.reset(jax.random.PRNGKey(0))
    stepped = jax.jit(env.step)(state, jnp.ones(2))
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(stepped), strict=True):
        assert jax.typeof(a) == jax.typeof(b) and a.dtype != jnp.float64


@pytest.mark.parametrize("radius, expected", [(None, 0.0), (1.0, 1.0)])
def test_distance_success_metrics_and_success_radius(radius, expected):
    env = envs.make("point_maze_open", success_radius=radius)
    assert env.success_radius == (0.3 if radius is None else radius)
    state = env.reset(jax.random.PRNGKey(0))
    for key in ("distance", "success"):
        assert jax.typeof(state.metrics[key]) == jax.typeof(jnp.zeros((), jnp.float32))
    goal = state.pipeline_state.goal
    np.testing.assert_allclose(
        state.metrics["distance"], np.linalg.norm(state.obs[:2] - goal), rtol=1e-6
    )
    physics = state.pipeline_state.replace(
        position=jnp.array([2.0, 2.0]), goal=jnp.array([2.3, 2.4])
    )
    stepped = env.step(state.replace(pipeline_state=physics), jnp.zeros(2))
    np.testing.assert_allclose(stepped.metrics["distance"], 0.5, rtol=1e-6)  # 3-4-5 triangle
    assert float(stepped.metrics["success"]) == expected == float(stepped.reward)
    near = state.pipeline_state.replace(position=jnp.array([2.0, 2.0]), goal=jnp.array([2.1, 2.2]))
    stepped = env.step(state.replace(pipeline_state=near), jnp.zeros(2))
    assert float(stepped.metrics["success"]) == 1.0 and float(stepped.done) == 0.0


def test_single_goal_fixes_the_goal_at_the_far_end():
    env = envs.make("point_umaze", single_goal=True)
    np.testing.assert_allclose(env.single_goal_position, [1.5, 3.5])  # cell (3, 1): end of U
    states = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 64))
    np.testing.assert_array_equal(states.obs[:, 2:], np.tile([1.5, 3.5], (64, 1)))
    assert len(np.unique(np.asarray(states.obs[:, :2]), axis=0)) == 64  # starts stay random
    # ...but never in the goal's own cell, which would be an unearned success.
    start_cells = np.floor(np.asarray(states.obs[:, :2]))  # cell size 1: (column, row)
    assert not (start_cells == [1, 3]).all(axis=1).any()
    assert float(states.metrics["success"].max()) == 0.0
    for name, layout in POINT_MAZES.items():
        parsed = MazeLayout.parse(LAYOUTS[layout])
        distances = path_distances(parsed.walls, parsed.start_cell)
        assert distances[parsed.far_cell] == distances.max()
        assert not in_wall(layout, envs.make(name).single_goal_position)


def test_layout_start_cell_and_refusals():
    parsed = MazeLayout.parse(LAYOUTS["u4maze"])
    assert parsed.start_cell == (2, 1)  # the 'S'
    assert MazeLayout.parse(("####", "#..#", "####")).start_cell == (1, 1)  # first free cell
    env = envs.make("point_u4maze", single_goal=True)
    states = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 256))
    assert not in_wall("u4maze", np.asarray(states.obs[:, :2])).any()
    refused = {
        ("###", "#S#", "###"): "no free cell for a goal",
        ("#####", "#S#.#", "#####"): "reachable",
        ("####", "#S..", "####"): "border",
        ("#####", "#S.S#", "#####"): "more than one start",
        ("#####", "#S.o#", "#####"): "use '#'",
        ("#####", "#S..#", "####"): "same length",
    }
    for rows, message in refused.items():
        with pytest.raises(ValueError, match=message):
            MazeLayout.parse(rows)
    with pytest.raises(ValueError, match="no free cell for a goal"):
        envs.make("point_umaze", layout=("###", "#S#", "###"))


def test_autoreset_resamples_goals_in_every_slot():
    env = envs.AutoResetBatch(envs.EpisodeTracker(envs.make("point_umaze"), 5), num_envs=8)
    state = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    goals = [np.asarray(state.pipeline_state.goal)]
    for t in range(1, 16):
        state = step(state, jnp.ones((8, 2)))
        if t % 5 == 0:
            assert np.asarray(state.done).all()
            goals.append(np.asarray(state.pipeline_state.goal))
            np.testing.assert_array_equal(state.obs[:, 2:], goals[-1])
    for later in goals[1:]:
        assert (np.abs(later - goals[0]).max(axis=1) > 0).all()  # every slot changed


def test_random_policy_success_rates():
    """Fraction of 100-step episodes in which uniform random actions touch the goal (r=0.3).

    Reported, not tuned: they show how much exploration each layout needs.
    """
    rates = {}
    for name in sorted(POINT_MAZES):
        _, _, success = random_rollout(envs.make(name), jax.random.PRNGKey(2), 2000, 100)
        rates[name] = float(success.max(axis=0).mean())
    print("random-policy success rates:", rates)
    assert all(0.0 < rate < 0.5 for rate in rates.values())
    assert rates["point_bigmaze"] < rates["point_umaze"]


def test_registry_goal_names_and_backends():
    assert set(envs.goal_names()) <= set(envs.OWN_NAMES) <= set(envs.names())
    goal_conditioned = {name for name in envs.names() if envs.is_goal_conditioned(name)}
    assert goal_conditioned == set(envs.goal_names())
    for name in goal_conditioned:
        if envs.backends_for(name) == ("jax",):  # the cheap ones
            assert envs.spec(envs.make(name)).goal_conditioned, name
    for name in ("cartpole", "point_reach", "ant", "inverted_pendulum"):
        assert not envs.is_goal_conditioned(name)
    assert {"cartpole", "point_reach"} <= set(envs.OWN_NAMES)
    assert envs.backends_for("point_umaze") == ("jax",)
    assert envs.backends_for("ant_umaze") == envs.BRAX_BACKENDS == envs.backends_for("ant")
    assert not envs.spec(envs.make("point_reach")).goal_conditioned
    with pytest.raises(ValueError, match="pure JAX"):
        envs.make("point_bigmaze", backend="spring")
    with pytest.raises(ValueError, match="unknown backend"):
        envs.make("ant_goal", backend="warp-speed")
    with pytest.raises(ValueError, match="unknown environment"):
        envs.backends_for("nope")


@functools.cache
def compiled_ant(name: str):
    """(env, jitted reset, jitted step, first state) for one ant task on the spring backend,
    built once and shared by every test of that task."""
    env = envs.make(name, backend="spring")
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    return env, reset, step, reset(jax.random.PRNGKey(0))


@pytest.mark.parametrize("name", ["ant_goal", "ant_umaze"])
def test_ant_spec_goal_and_steps(name):
    env, reset, step, state = compiled_ant(name)
    spec = envs.spec(env)
    assert spec.observation_size == 31 and spec.action_size == 8
    assert spec.goal_indices == (29, 30) and spec.achieved_goal_indices == (0, 1)
    assert state.obs.shape == (31,) and state.obs.dtype == jnp.float32
    np.testing.assert_array_equal(state.obs[:2], state.pipeline_state.q[:2])
    goal = np.asarray(state.obs[-2:])
    np.testing.assert_array_equal(goal, state.info["goal"])
    if name == "ant_goal":
        np.testing.assert_allclose(np.linalg.norm(goal), 10.0, rtol=1e-5)
    else:
        # Start and goal in different free cells (the start is uniform since issue 11).
        cell, start_cell = np.floor(np.stack([goal, state.obs[:2]]) / env.cell_size).astype(int)
        assert not env.layout.walls[cell[1], cell[0]]
        assert not env.layout.walls[start_cell[1], start_cell[0]]
        assert (cell != start_cell).any()
    other = reset(jax.random.PRNGKey(1))
    assert not np.allclose(other.obs[-2:], goal)
    actions = jax.random.uniform(jax.random.PRNGKey(2), (5, 8), minval=-1.0, maxval=1.0)
    for action in actions:
        state = step(state, action)
        assert np.isfinite(state.obs).all()
        np.testing.assert_array_equal(state.obs[-2:], goal)
        distance = np.linalg.norm(np.asarray(state.obs[:2]) - goal)
        np.testing.assert_allclose(state.metrics["distance"], distance, rtol=1e-5)
        assert float(state.metrics["success"]) == float(distance < 0.5) == float(state.reward)
        assert state.done.dtype == jnp.float32


def test_ant_umaze_walls_stop_the_ant():
    env, _, step, state = compiled_ant("ant_umaze")
    assert env.sys.mj_model.geom_type.tolist().count(6) == len(env.walls) > 0  # 6 = box
    assert env.xml.count('type="box"') == len(env.walls)
    # Thrown at 8 m/s from the start cell's centre (x = 6) toward the wall at x = 4: it must
    # bounce.
    q = state.pipeline_state.q.at[:2].set(env.start_position)
    qd = jnp.zeros_like(state.pipeline_state.qd).at[0].set(-8.0)
    state = state.replace(pipeline_state=jax.jit(env.pipeline_init)(q, qd))
    for _ in range(30):
        state = step(state, jnp.zeros(8))
        assert float(state.pipeline_state.q[0]) > 4.0


def test_single_goal_ant_umaze_is_far_end():
    env = envs.make("ant_umaze", single_goal=True, backend="spring")
    np.testing.assert_allclose(env.single_goal_position, [6.0, 14.0])
    assert (
        env.success_radius == 0.5 and envs.make("ant_goal", success_radius=1.0).success_radius == 1
    )


def test_humanoid_goal_builds_and_resets():
    env = envs.make("humanoid_goal", backend="spring")
    spec = envs.spec(env)
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    assert state.obs.shape == (spec.observation_size,) and spec.goal_indices[-1] == 247
    assert np.isfinite(state.obs).all()
    np.testing.assert_array_equal(state.obs[:2], state.pipeline_state.q[:2])
    np.testing.assert_allclose(np.linalg.norm(state.obs[-2:]), 5.0, rtol=1e-5)
    assert set(state.metrics) >= {"distance", "success"}

    # A step's observation is brax's humanoid observation (actuator forces of the action
    # taken included) followed by the unchanged goal; the start's has zero actuator force.
    @jax.jit
    def ours_and_brax(state, action):
        brax_state = state.replace(obs=state.obs[:-2], metrics={})
        return env.step(state, action), Humanoid.step(env, brax_state, action)

    action = jnp.linspace(-1.0, 1.0, env.action_size)
    stepped, brax_stepped = ours_and_brax(state, action)
    np.testing.assert_allclose(stepped.obs[:-2], brax_stepped.obs, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(stepped.obs[-2:], state.obs[-2:])
    assert np.abs(stepped.obs[-25:-2]).max() > 0 and not state.obs[-25:-2].any()
