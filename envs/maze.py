"""A point mass navigating a grid maze to a commanded goal, in pure JAX (no physics engine).

Cheap enough to vmap thousands of copies at millions of steps per second on a CPU, so
goal-conditioned learners can be tested end to end in seconds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State
from flax import struct

from envs.goal import GOAL_EPISODE_METRICS, LAYOUTS, MazeLayout, goal_metrics


@struct.dataclass
class PointMazeState:
    """position (2,) and commanded goal (2,), both (x, y) float32."""

    position: jax.Array
    goal: jax.Array


class PointMaze(Env):
    """A point moved by velocity commands through a maze of unit cells toward a goal.

    Observation (4,) float32: (x, y, goal_x, goal_y); achieved goal at indices (0, 1),
    commanded goal at (2, 3). Action (2,) in [-1, 1] (clipped): the point moves by
    `max_speed * action`. The x and y moves are applied one after the other, and a move that
    would enter a wall cell is dropped, so the point slides along walls and never ends inside
    one. Start and goal are drawn each reset: a uniform free cell, then uniform within it at
    least `margin` from its edges. With `single_goal` the goal is always
    `single_goal_position`, the centre of the free cell furthest by path from the start cell
    (the far end of the U in the U-maze). Reward = success; it never terminates (the time
    limit wrapper ends episodes). Metrics: "distance" and "success" (see envs.goal).

    layout: a name in `envs.goal.LAYOUTS` ("open", "umaze", "u4maze", "u5maze", "bigmaze",
    "hardestmaze") or rows of '#'/'.'/'S' (see envs.goal).
    """

    achieved_goal_indices = (0, 1)
    goal_indices = (2, 3)
    episode_metrics = GOAL_EPISODE_METRICS
    cell_size = 1.0

    def __init__(
        self,
        layout: str | tuple[str, ...] = "umaze",
        success_radius: float | None = None,
        single_goal: bool = False,
        max_speed: float = 0.15,
        margin: float = 0.1,
    ):
        rows = LAYOUTS[layout] if isinstance(layout, str) else tuple(layout)
        self.layout = MazeLayout.parse(rows)
        self.success_radius = 0.3 if success_radius is None else float(success_radius)
        self.single_goal = single_goal
        # Moves shorter than a cell cannot jump over a wall cell between two free ones.
        if not 0 < max_speed < self.cell_size:
            raise ValueError(f"max_speed must be in (0, {self.cell_size}), got {max_speed}")
        self.max_speed = max_speed
        self.margin = margin
        self.single_goal_position = self.layout.cell_center(self.layout.far_cell, self.cell_size)
        self._walls = jnp.asarray(self.layout.walls)

    def reset(self, rng: jax.Array) -> State:
        """Draws a start and a goal (the fixed one with `single_goal`) in free cells."""
        start_key, goal_key = jax.random.split(rng)
        # A single-goal episode never starts in the goal's cell (it would count as a success).
        exclude = self.layout.far_cell if self.single_goal else None
        position = self.layout.sample_point(start_key, self.cell_size, self.margin, exclude)
        if self.single_goal:
            goal = jnp.asarray(self.single_goal_position)
        else:
            goal = self.layout.sample_point(goal_key, self.cell_size, self.margin)
        physics = PointMazeState(position=position, goal=goal)
        distance, success = goal_metrics(position, goal, self.success_radius)
        zero = jnp.zeros((), jnp.float32)
        metrics = {"distance": distance, "success": success}
        return State(physics, self._observe(physics), success, zero, metrics, {})

    def step(self, state: State, action: jax.Array) -> State:
        """Moves the point by `max_speed * clip(action)`, dropping moves into walls."""
        p = state.pipeline_state
        move = self.max_speed * jnp.clip(action, -1.0, 1.0).astype(jnp.float32)
        x, y = p.position[0], p.position[1]
        new_x = x + move[0]
        x = jnp.where(self.is_wall(new_x, y), x, new_x)
        new_y = y + move[1]
        y = jnp.where(self.is_wall(x, new_y), y, new_y)
        physics = p.replace(position=jnp.stack([x, y]))
        distance, success = goal_metrics(physics.position, p.goal, self.success_radius)
        metrics = dict(state.metrics, distance=distance, success=success)
        return state.replace(
            pipeline_state=physics,
            obs=self._observe(physics),
            reward=success,
            done=jnp.zeros((), jnp.float32),
            metrics=metrics,
        )

    def is_wall(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """Whether point(s) (x, y) lie in a wall cell or outside the grid; same shape as x."""
        col = jnp.floor(x / self.cell_size).astype(jnp.int32)
        row = jnp.floor(y / self.cell_size).astype(jnp.int32)
        rows, cols = self._walls.shape
        inside = (row >= 0) & (row < rows) & (col >= 0) & (col < cols)
        return ~inside | self._walls[jnp.clip(row, 0, rows - 1), jnp.clip(col, 0, cols - 1)]

    def _observe(self, p: PointMazeState) -> jax.Array:
        return jnp.concatenate([p.position, p.goal])

    @property
    def observation_size(self) -> int:
        return 4

    @property
    def action_size(self) -> int:
        return 2

    @property
    def backend(self) -> str:
        return "jax"


__all__ = ["PointMaze", "PointMazeState"]
