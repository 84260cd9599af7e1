"""The depth-scaling paper's brax mazes: ant_u4maze, ant_u5maze, ant_bigmaze, ant_hardestmaze,
humanoid_umaze, humanoid_bigmaze.

Brax environments compile slowly, so each is compiled once (`rollout`, spring backend: the
paper's and the cheapest): a vmapped reset of 4 environments and a scan of 50 steps. In that
run environment 0's goal is moved onto its torso, environment 1's far away, and environment 3
is thrown at the wall left of the start cell with zero actions; the others act at random.
Start and goal sampling is checked on many keys without the simulator.
"""

import functools

import jax
import numpy as np
import pytest

import envs
from envs.goal import GOAL_EPISODE_METRICS, LAYOUTS

MAZES = {
    "ant_u4maze": ("u4maze", 4.0, 31),
    "ant_u5maze": ("u5maze", 4.0, 31),
    "ant_bigmaze": ("bigmaze", 4.0, 31),
    "ant_hardestmaze": ("hardestmaze", 4.0, 31),
    "humanoid_umaze": ("umaze", 2.0, 248),
    "humanoid_bigmaze": ("bigmaze", 2.0, 248),
}
NUM_ENVS, NUM_STEPS = 4, 50
THROW_SPEED = {"ant": 8.0, "humanoid": 5.0}  # m/s toward the wall, in x


def cells_of(env, xy: np.ndarray) -> np.ndarray:
    """(row, column) cells (..., 2) of points (..., 2)."""
    return np.floor(np.asarray(xy) / env.cell_size).astype(int)[..., ::-1]


def in_free_cells(env, xy: np.ndarray) -> np.ndarray:
    cells = cells_of(env, xy)
    rows, cols = env.layout.walls.shape
    inside = (cells >= 0).all(-1) & (cells[..., 0] < rows) & (cells[..., 1] < cols)
    clipped = np.clip(cells, 0, [rows - 1, cols - 1])
    return inside & ~env.layout.walls[clipped[..., 0], clipped[..., 1]]


@functools.cache
def rollout(name: str):
    """(env, first states, states after the edits, per-step (obs, metrics, done, link
    positions (steps, envs, links, 3)))."""
    env = envs.make(name, backend="spring")
    goal_indices = list(env.goal_indices)
    speed = THROW_SPEED[name.split("_")[0]]

    @jax.jit
    def run(key):
        reset_key, act_key = jax.random.split(key)
        first = jax.vmap(env.reset)(jax.random.split(reset_key, NUM_ENVS))
        q, qd = first.pipeline_state.q, first.pipeline_state.qd
        q = q.at[3, :2].set(env.start_position)
        qd = qd.at[3].set(0.0).at[3, 0].set(-speed)
        goals = first.info["goal"]
        goals = goals.at[0].set(q[0, :2]).at[1].set(q[1, :2] + 100.0)
        edited = first.replace(
            pipeline_state=jax.vmap(env.pipeline_init)(q, qd),
            obs=first.obs.at[:, goal_indices].set(goals),
            info=dict(first.info, goal=goals),
        )

        def step(state, key):
            action = jax.random.uniform(key, (NUM_ENVS, env.action_size), minval=-1, maxval=1)
            action = action.at[3].set(0.0)
            state = jax.vmap(env.step)(state, action)
            out = (state.obs, state.metrics, state.done, state.pipeline_state.x.pos)
            return state, out

        _, steps = jax.lax.scan(step, edited, jax.random.split(act_key, NUM_STEPS))
        return first, edited, steps

    return (env, *jax.device_get(run(jax.random.PRNGKey(0))))


@pytest.mark.parametrize("name", sorted(MAZES))
def test_spec_layout_and_walls(name):
    layout, cell_size, size = MAZES[name]
    env = envs.make(name, backend="spring")
    spec = envs.spec(env)
    goal = (size - 2, size - 1)
    action_size = 8 if name.startswith("ant") else 17
    assert spec == envs.EnvSpec(size, action_size, None, goal, (0, 1), GOAL_EPISODE_METRICS, 0.5)
    assert env.cell_size == cell_size and env.layout.walls.shape == (
        len(LAYOUTS[layout]),
        len(LAYOUTS[layout][0]),
    )
    model = env.sys.mj_model
    boxes = np.flatnonzero(model.geom_type == 6)  # 6 = box
    assert len(boxes) == len(env.walls) > 0 and env.xml.count('type="box"') == len(env.walls)
    # Each wall box covers wall cells only, and together they cover every wall cell.
    covered = np.zeros_like(env.layout.walls)
    for x, y, half_x, half_y in env.walls:
        cols = slice(round((x - half_x) / cell_size), round((x + half_x) / cell_size))
        rows = slice(round((y - half_y) / cell_size), round((y + half_y) / cell_size))
        assert env.layout.walls[rows, cols].all()
        covered[rows, cols] = True
    np.testing.assert_array_equal(covered, env.layout.walls)
    if name.startswith("humanoid"):
        np.testing.assert_allclose(model.geom_size[boxes, 2], 0.5)  # 1 m tall
        body = model.geom_bodyid > 0
        # Every body geom collides with the walls; only the feet touch the floor (brax's).
        assert (model.geom_contype[body] & model.geom_conaffinity[boxes[0]]).all()
        assert (model.geom_contype[body] & model.geom_conaffinity[0]).sum() == 2
    else:
        np.testing.assert_allclose(model.geom_size[boxes, 2], 1.0)  # 2 m tall
    assert envs.backends_for(name) == envs.BRAX_BACKENDS


@pytest.mark.parametrize("name", sorted(MAZES))
def test_reset_and_steps_give_finite_observations(name):
    env, first, edited, (obs, metrics, done, _) = rollout(name)
    size = MAZES[name][2]
    assert first.obs.shape == (NUM_ENVS, size) and first.obs.dtype == np.float32
    assert obs.shape == (NUM_STEPS, NUM_ENVS, size) and obs.dtype == np.float32
    assert np.isfinite(first.obs).all() and np.isfinite(obs).all()
    assert done.dtype == np.float32 and set(np.unique(done)) <= {0.0, 1.0}
    # The observation holds the torso (x, y) and the goal where the spec says.
    spec = envs.spec(env)
    np.testing.assert_array_equal(
        first.obs[:, spec.achieved_goal_indices], first.pipeline_state.q[:, :2]
    )
    np.testing.assert_array_equal(first.obs[:, spec.goal_indices], first.info["goal"])
    np.testing.assert_array_equal(
        obs[:, :, spec.goal_indices], np.broadcast_to(edited.info["goal"], obs[..., :2].shape)
    )
    distance = np.linalg.norm(obs[..., :2] - obs[:, :, spec.goal_indices], axis=-1)
    np.testing.assert_allclose(metrics["distance"], distance, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(metrics["success"], (distance < 0.5).astype(np.float32))


@pytest.mark.parametrize("name", sorted(MAZES))
def test_success_fires_at_the_goal_only(name):
    _, _, edited, (_, metrics, _, _) = rollout(name)
    assert float(edited.info["goal"][0, 0]) == float(edited.pipeline_state.q[0, 0])
    assert metrics["success"][0, 0] == 1.0 and metrics["distance"][0, 0] < 0.5  # at the goal
    assert (metrics["success"][:, 1] == 0.0).all()  # 100 m away


@pytest.mark.parametrize("name", sorted(MAZES))
def test_reset_starts_and_goals_in_distinct_free_cells(name):
    env, first, _, _ = rollout(name)
    starts, goals = first.pipeline_state.q[:, :2], first.info["goal"]
    assert in_free_cells(env, starts).all() and in_free_cells(env, goals).all()
    assert (cells_of(env, starts) != cells_of(env, goals)).any(-1).all()
    assert (first.metrics["success"] == 0).all()
    assert len(np.unique(goals, axis=0)) == NUM_ENVS


@pytest.mark.parametrize("name", sorted(MAZES))
def test_walls_stop_the_body(name):
    env, _, _, (_, _, _, links) = rollout(name)
    wall_face = env.cell_size  # the start cell is in column 1; column 0 is wall
    assert env.start_position[0] == 1.5 * env.cell_size
    thrown = links[:, 3]  # (steps, links, 3)
    assert thrown[:, 0, 0].min() < env.start_position[0] - 0.3 * env.cell_size  # it moved...
    # ...and nothing below the wall's top went through it (the humanoid's torso, above a 1 m
    # wall, may lean over it; without collisions the pelvis ends 1.4 m inside the wall).
    below_top = thrown[..., 2] < env.wall_height - 0.1
    assert below_top.sum() > thrown.shape[0]
    assert thrown[..., 0][below_top].min() > wall_face - 0.1


@pytest.mark.parametrize("name", ["ant_bigmaze", "humanoid_umaze"])
@pytest.mark.parametrize("fixed_start", [False, True])
def test_start_and_goal_sampling(name, fixed_start):
    """Without the simulator: many keys, the maze's own samplers."""
    env = envs.make(name, backend="spring", fixed_start=fixed_start)
    keys = jax.random.split(jax.random.PRNGKey(1), 4000)

    @jax.jit
    @jax.vmap
    def draw(key):
        goal_key, start_key = jax.random.split(key)
        goal = env._sample_goal(goal_key)
        return goal, env._sample_start_xy(start_key, goal)

    goals, starts = jax.device_get(draw(keys))
    assert in_free_cells(env, goals).all() and in_free_cells(env, starts).all()
    goal_cells, start_cells = cells_of(env, goals), cells_of(env, starts)
    assert (goal_cells != start_cells).any(-1).all()  # never the same cell
    distance = np.linalg.norm(goals - starts, axis=-1)
    assert distance.min() >= 2 * env.margin - 1e-5 and distance.min() > env.success_radius
    # Within its cell, a point keeps `margin` from the edges.
    offsets = np.concatenate([goals, starts]) % env.cell_size
    assert offsets.min() >= env.margin - 1e-5
    assert offsets.max() <= env.cell_size - env.margin + 1e-5
    free = {tuple(c) for c in env.layout.free_cells.tolist()}
    assert len(np.unique(goals, axis=0)) == len(goals)
    start_cell = tuple(env.layout.start_cell)
    if fixed_start:
        np.testing.assert_array_equal(starts, np.broadcast_to(env.start_position, starts.shape))
        assert {tuple(c) for c in goal_cells.tolist()} == free - {start_cell}
    else:
        assert {tuple(c) for c in goal_cells.tolist()} == free
        assert {tuple(c) for c in start_cells.tolist()} == free


def test_single_goal_and_bad_arguments():
    env = envs.make("ant_u4maze", backend="spring", single_goal=True)
    far = env.layout.far_cell
    np.testing.assert_allclose(env.single_goal_position, [(far[1] + 0.5) * 4, (far[0] + 0.5) * 4])
    assert far == (4, 1)  # U4: the dead end left of the bottom corridor, 10 cells by path
    humanoid = envs.make("humanoid_bigmaze", backend="spring", single_goal=True)
    np.testing.assert_allclose(humanoid.single_goal_position, [11.0, 13.0])  # cell (6, 5)
    with pytest.raises(ValueError, match="margin"):
        envs.make("ant_u5maze", margin=2.0)
    with pytest.raises(ValueError, match="unknown layout"):
        envs.make("ant_umaze", layout="spiral")
    with pytest.raises(ValueError, match="cell_size"):
        envs.make("humanoid_umaze", cell_size=0.0)
    with pytest.raises(ValueError, match="wall_height"):
        envs.make("humanoid_umaze", wall_height=0.0)
    with pytest.raises(ValueError, match="no free cell for a goal"):
        envs.make("ant_u4maze", layout=("###", "#S#", "###"))
