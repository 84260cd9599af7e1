"""Shared pieces of the goal-conditioned environments: maze layouts, the success metric, and
`GoalConditioned`, which turns one of brax's own environments into a goal-reaching task.

Every goal-conditioned environment follows one contract, which learners rely on:
  * the observation is `concatenate([state features, goal])`, the commanded goal being its
    last `len(goal)` entries; the environment declares `goal_indices` (where the goal is) and
    `achieved_goal_indices` (where the state's own goal-space coordinates are);
  * `reset(rng)` draws a new start and a new goal from `rng` every time;
  * `state.metrics` holds float32 scalars "distance" (Euclidean, in goal space, between the
    achieved and the commanded goal) and "success" (1.0 when distance < success_radius);
  * reward = success;
  * the class declares `episode_metrics = GOAL_EPISODE_METRICS` (what evaluation reports).

Maze layouts are grids of characters, '#' a wall cell, '.' a free cell and 'S' the free start
cell (the paper's reset cell; without an 'S', the first free cell in reading order), with
walls all around the border. Cell (row i, column j) of a layout with cell size s covers
x in [j*s, (j+1)*s) and y in [i*s, (i+1)*s).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree import ElementTree

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import State

LAYOUTS: dict[str, tuple[str, ...]] = {
    # 5x5 free interior: no obstacles; start and goal up to ~6.8 apart.
    "open": (
        "#######",
        "#S....#",
        "#.....#",
        "#.....#",
        "#.....#",
        "#.....#",
        "#######",
    ),
    # The depth-scaling paper's and JaxGCRL's layouts (their cell grids, with our axes: a
    # layout's row is y and its column x, theirs the other way round; topology is the same).
    # The classic U: from the start go right, down the right arm, back left.
    "umaze": (
        "#####",
        "#S..#",
        "###.#",
        "#...#",
        "#####",
    ),
    # U4: the start sits in a dead end below the top corridor; the other end is 10 cells away
    # by path.
    "u4maze": (
        "#####",
        "#...#",
        "#S#.#",
        "###.#",
        "#.#.#",
        "#...#",
        "#####",
    ),
    # U5: the U4 stretched to a 6-cell-wide corridor; the far end is 16 cells away.
    "u5maze": (
        "########",
        "#......#",
        "#S####.#",
        "######.#",
        "#.####.#",
        "#......#",
        "########",
    ),
    # Big maze: 6x6 interior with dead ends; the far cell is 11 cells away.
    "bigmaze": (
        "########",
        "#S.##..#",
        "#..#...#",
        "##...###",
        "#..#...#",
        "#.#..#.#",
        "#...#..#",
        "########",
    ),
    # Hardest maze: 7x10 interior with loops; the far cell is 15 cells away.
    "hardestmaze": (
        "############",
        "#S...#.....#",
        "#.##.#.#.#.#",
        "#......#...#",
        "#.####.###.#",
        "#..#.#.....#",
        "##.#.#.#.###",
        "#..#...#...#",
        "############",
    ),
}


@dataclass(frozen=True)
class MazeLayout:
    """A parsed layout: wall grid, free cells, start cell, and the far cell (the single goal).

    `walls` (rows, cols) bool, True for wall cells; `free_cells` (num_free, 2) int32 of
    (row, column) pairs in reading order; `start_cell` (row, column) is the 'S' cell (or the
    first free one); `far_cell` is the free cell with the longest shortest path (4-connected)
    from `start_cell`, ties broken by reading order.
    """

    walls: np.ndarray
    free_cells: np.ndarray
    start_cell: tuple[int, int]
    far_cell: tuple[int, int]

    @classmethod
    def parse(cls, rows: tuple[str, ...]) -> MazeLayout:
        """Parses '#'/'.'/'S' rows. Raises ValueError, saying what to change, if rows differ in
        length, hold another character, leave the border open, have more than one 'S', have
        fewer than two free cells (no goal cell besides the start) or an unreachable cell."""
        if len({len(row) for row in rows}) != 1:
            raise ValueError("layout rows must all have the same length")
        unknown = set("".join(rows)) - set("#.S")
        if unknown:
            raise ValueError(
                f"layout holds {sorted(unknown)}; use '#' (wall), '.' (free) and 'S' (start)"
            )
        walls = np.array([[c == "#" for c in row] for row in rows], dtype=bool)
        if not (walls[0].all() and walls[-1].all() and walls[:, 0].all() and walls[:, -1].all()):
            raise ValueError("layout border must be all walls")
        starts = [(i, row.index("S")) for i, row in enumerate(rows) if "S" in row]
        if len(starts) > 1 or "".join(rows).count("S") > 1:
            raise ValueError("layout has more than one start cell 'S'; keep one")
        free = np.argwhere(~walls).astype(np.int32)
        if len(free) < 2:
            raise ValueError(
                f"layout has {len(free)} free cell(s): no free cell for a goal besides the "
                "start; open at least two cells with '.'"
            )
        start = starts[0] if starts else (int(free[0, 0]), int(free[0, 1]))
        distances = path_distances(walls, start)
        if (distances[~walls] < 0).any():
            raise ValueError("every free cell must be reachable from the start cell")
        far = max(map(tuple, free.tolist()), key=lambda c: distances[c])
        return cls(walls, free, start, (int(far[0]), int(far[1])))

    def cell_center(self, cell: tuple[int, int], cell_size: float) -> np.ndarray:
        """(x, y) of the centre of cell (row, column), shape (2,) float32."""
        row, col = cell
        return np.array([(col + 0.5) * cell_size, (row + 0.5) * cell_size], np.float32)

    def sample_cell(self, rng: jax.Array, exclude: jax.Array | int | None = None) -> jax.Array:
        """Index into `free_cells`, uniform over the free cells other than index `exclude`
        (which may be traced), int32 scalar."""
        if exclude is None:
            return jax.random.randint(rng, (), 0, len(self.free_cells))
        index = jax.random.randint(rng, (), 0, len(self.free_cells) - 1)
        return index + (index >= exclude)  # skip the excluded cell

    def point_in_cell(
        self, rng: jax.Array, index: jax.Array, cell_size: float, margin: float
    ) -> jax.Array:
        """A point uniform in free cell `index` at least `margin` from its edges, (x, y) (2,)
        float32."""
        row, col = jnp.asarray(self.free_cells)[index]
        corner = jnp.stack([col, row]).astype(jnp.float32) * cell_size
        offset = jax.random.uniform(
            rng, (2,), minval=margin, maxval=cell_size - margin, dtype=jnp.float32
        )
        return corner + offset

    def free_index(self, cell: tuple[int, int]) -> int:
        """Index into `free_cells` of free cell (row, column)."""
        matches = np.flatnonzero((self.free_cells == np.asarray(cell)).all(axis=1))
        if len(matches) == 0:
            raise ValueError(f"cell {cell} is not a free cell of the layout")
        return int(matches[0])

    def cell_index(self, point: jax.Array, cell_size: float) -> jax.Array:
        """Index into `free_cells` of the cell holding `point` (x, y) (-1 for a wall cell),
        int32 scalar; `point` may be traced but must lie inside the grid."""
        lookup = np.full(self.walls.shape, -1, np.int32)
        lookup[tuple(self.free_cells.T)] = np.arange(len(self.free_cells))
        col, row = jnp.floor(point / cell_size).astype(jnp.int32)
        return jnp.asarray(lookup)[row, col]

    def sample_point(
        self,
        rng: jax.Array,
        cell_size: float,
        margin: float,
        exclude: tuple[int, int] | None = None,
    ) -> jax.Array:
        """A point uniform over free cells (other than cell `exclude`, (row, column)), then
        uniform in the cell `margin` from its edges.

        Returns (x, y), shape (2,) float32.
        """
        cell_key, offset_key = jax.random.split(rng)
        excluded = None if exclude is None else self.free_index(exclude)
        index = self.sample_cell(cell_key, excluded)
        return self.point_in_cell(offset_key, index, cell_size, margin)


def path_distances(walls: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """Breadth-first path lengths (in cells, 4-connected) from `start`; -1 where unreachable.

    walls: (rows, cols) bool. Returns (rows, cols) int.
    """
    distances = np.full(walls.shape, -1, dtype=int)
    distances[start] = 0
    queue = deque([start])
    while queue:
        row, col = queue.popleft()
        for d_row, d_col in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            nxt = (row + d_row, col + d_col)
            inside = 0 <= nxt[0] < walls.shape[0] and 0 <= nxt[1] < walls.shape[1]
            if inside and not walls[nxt] and distances[nxt] < 0:
                distances[nxt] = distances[row, col] + 1
                queue.append(nxt)
    return distances


def wall_boxes(walls: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Covers the wall cells with few axis-aligned rectangles (for physics walls).

    Greedy: take the first uncovered wall cell in reading order, extend it right along the
    row, then down while the whole span is uncovered wall. Returns (row, col, height, width)
    rectangles in cells; fewer boxes means fewer collision pairs for the simulator.
    """
    covered = np.zeros_like(walls)
    boxes = []
    rows, cols = walls.shape
    for row in range(rows):
        for col in range(cols):
            if not walls[row, col] or covered[row, col]:
                continue
            width = 1
            while col + width < cols and walls[row, col + width] and not covered[row, col + width]:
                width += 1
            height = 1
            while row + height < rows and (
                walls[row + height, col : col + width].all()
                and not covered[row + height, col : col + width].any()
            ):
                height += 1
            covered[row : row + height, col : col + width] = True
            boxes.append((row, col, height, width))
    return boxes


def add_walls(
    xml: str, walls: Sequence[tuple[float, float, float, float]], height: float, **attributes
) -> str:
    """MJCF text `xml` with one static box geom per wall added to its worldbody.

    walls: (centre x, centre y, half size x, half size y) per box, in metres; every box stands
    on the floor, `height` tall, named wall_0, wall_1, ...; `attributes` (e.g. contype,
    conaffinity, rgba) are set on every box.
    """
    root = ElementTree.fromstring(xml)
    worldbody = root.find("worldbody")
    for i, (x, y, half_x, half_y) in enumerate(walls):
        ElementTree.SubElement(
            worldbody,
            "geom",
            name=f"wall_{i}",
            type="box",
            pos=f"{x} {y} {height / 2}",
            size=f"{half_x} {half_y} {height / 2}",
            **{key: str(value) for key, value in attributes.items()},
        )
    return ElementTree.tostring(root, encoding="unicode")


class MazeMixin:
    """The maze part of a brax goal-reaching task on a layout (AntMaze, HumanoidMaze).

    `_init_maze` (called in `__init__` before the simulator is built) sets:
      layout            the parsed `MazeLayout`;
      cell_size         metres per cell; cell (row i, column j) covers x in [j*s, (j+1)*s),
                        y in [i*s, (i+1)*s);
      margin            how far starts and goals stay from their cell's edges (metres);
      fixed_start       whether every episode starts at the start cell (the paper's protocol);
      walls             the wall cells merged into few boxes, (centre x, centre y, half size x,
                        half size y) in metres, for `add_walls`, `wall_height` tall;
      start_position    centre of the layout's start cell ('S');
      single_goal_position  centre of the free cell furthest by path from the start cell.
    The environment's reset then draws the goal with `_sample_goal` (when not single_goal)
    and the body's (x, y) with `_sample_start_xy(rng, goal)`:
      goal   a uniform free cell (with `fixed_start`, not the start cell), then uniform in
             it at least `margin` from its edges;
      start  with `fixed_start`, `start_position`; otherwise drawn like the goal among the free
             cells other than the goal's, so start and goal are at least 2 * margin apart and
             an episode never starts inside the goal's success radius when that radius is at
             most 2 * margin (the defaults: 2 m apart for the ant, 1 m for the humanoid, both
             against a radius of 0.5).
    """

    layout: MazeLayout
    cell_size: float

    def _init_maze(
        self,
        layout: str | tuple[str, ...],
        cell_size: float,
        margin: float,
        fixed_start: bool,
        wall_height: float,
    ) -> None:
        if isinstance(layout, str) and layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
        if cell_size <= 0:
            raise ValueError(f"cell_size must be positive, got {cell_size}")
        if not 0 <= margin < cell_size / 2:
            raise ValueError(
                f"margin must be in [0, cell_size / 2 = {cell_size / 2}) so starts and goals "
                f"fit inside a cell, got {margin}"
            )
        if wall_height <= 0:
            raise ValueError(f"wall_height must be positive, got {wall_height}")
        self.layout = MazeLayout.parse(LAYOUTS[layout] if isinstance(layout, str) else layout)
        self.cell_size = float(cell_size)
        self.margin = float(margin)
        self.fixed_start = fixed_start
        self.wall_height = float(wall_height)
        self.walls = [
            ((col + width / 2) * cell_size, (row + height / 2) * cell_size)
            + (width * cell_size / 2, height * cell_size / 2)
            for row, col, height, width in wall_boxes(self.layout.walls)
        ]
        self.start_position = self.layout.cell_center(self.layout.start_cell, cell_size)
        self.single_goal_position = self.layout.cell_center(self.layout.far_cell, cell_size)

    def _sample_goal(self, rng: jax.Array) -> jax.Array:
        """Goal (x, y) in a free cell (not the start cell with `fixed_start`), (2,) float32."""
        cell_key, offset_key = jax.random.split(rng)
        exclude = self.layout.free_index(self.layout.start_cell) if self.fixed_start else None
        index = self.layout.sample_cell(cell_key, exclude)
        return self.layout.point_in_cell(offset_key, index, self.cell_size, self.margin)

    def _sample_start_xy(self, rng: jax.Array, goal: jax.Array) -> jax.Array:
        """Body (x, y) at reset, before the body's own reset noise, (2,) float32."""
        if self.fixed_start:
            return jnp.asarray(self.start_position)
        cell_key, offset_key = jax.random.split(rng)
        index = self.layout.sample_cell(cell_key, self.layout.cell_index(goal, self.cell_size))
        return self.layout.point_in_cell(offset_key, index, self.cell_size, self.margin)


# What evaluation reports per episode for every goal-conditioned environment (declared as the
# class attribute `episode_metrics`): (name, state.metrics key, reduction over the episode).
GOAL_EPISODE_METRICS = (
    ("success_rate", "success", "max"),  # reached the goal at least once
    ("time_at_goal", "success", "sum"),  # steps within the success radius
    ("final_distance", "distance", "last"),
)


def goal_metrics(
    achieved: jax.Array, goal: jax.Array, success_radius: float
) -> tuple[jax.Array, jax.Array]:
    """Distance between achieved (n,) and commanded (n,) goal, and success, float32 scalars."""
    distance = jnp.linalg.norm(achieved - goal).astype(jnp.float32)
    success = (distance < success_radius).astype(jnp.float32)
    return distance, success


def goal_start_state(
    pipeline_state, obs: jax.Array, achieved: jax.Array, goal: jax.Array, success_radius: float
) -> State:
    """The State a goal task's episode starts in: reward = success at `achieved`, not done,
    metrics "distance" and "success", the commanded goal in `info["goal"]`."""
    distance, success = goal_metrics(achieved, goal, success_radius)
    zero = jnp.zeros((), jnp.float32)
    metrics = {"distance": distance, "success": success}
    return State(pipeline_state, obs, success, zero, metrics, {"goal": goal})


def goal_step_state(
    state: State,
    pipeline_state,
    obs: jax.Array,
    achieved: jax.Array,
    success_radius: float,
    done: jax.Array | None = None,
) -> State:
    """`state` after a step to `pipeline_state`: reward = success at `achieved` against
    `state.info["goal"]`, metrics updated, `done` replaced when given."""
    distance, success = goal_metrics(achieved, state.info["goal"], success_radius)
    state = state.replace(
        pipeline_state=pipeline_state,
        obs=obs,
        reward=success,
        metrics=dict(state.metrics, distance=distance, success=success),
    )
    return state if done is None else state.replace(done=done)


def sample_on_circle(rng: jax.Array, radius: float) -> jax.Array:
    """A point uniform on the circle of `radius` around the origin, shape (2,) float32."""
    angle = jax.random.uniform(rng, (), minval=0.0, maxval=2 * jnp.pi, dtype=jnp.float32)
    return radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)])


def checked_success_radius(env, backend: str, success_radius: float | None) -> float:
    """The success radius a goal task is built with (None: its `default_success_radius`),
    after refusing a `backend` outside the task's `backends` and a radius that is not positive.
    Every goal task of purerl's calls it first thing in `__init__`."""
    if backend not in env.backends:
        raise ValueError(
            f"{type(env).__name__} does not work with backend {backend!r}; "
            f"choose one of {', '.join(env.backends)}"
        )
    if success_radius is not None and not success_radius > 0:
        raise ValueError(
            f"success_radius must be positive, got {success_radius}; leave it None for the "
            f"default {env.default_success_radius}"
        )
    return float(env.default_success_radius if success_radius is None else success_radius)


class GoalConditioned:
    """Makes a brax environment goal-conditioned while keeping its dynamics.

    List it before the brax class: `class ReacherGoal(GoalConditioned, Reacher)`. The
    subclass declares `achieved_goal_indices` and `goal_indices` (the observation is
    `[_state_features(pipeline_state), goal]`, so the goal's indices follow the features),
    `default_success_radius`, `backends` (the brax pipelines it works on), sets
    `single_goal_position` and implements `_state_features` and `_sample_goal`; it overrides
    `_start` when the start depends on the goal (a target body placed at it).

    reset: the commanded goal (`single_goal_position` with `single_goal`, else a fresh
    `_sample_goal`) and a start from `_start`. step: the brax environment's own step (its
    action scaling, physics and termination), its reward, observation and metrics replaced by
    the contract's. The achieved goal is read from the state features at
    `achieved_goal_indices`, so it is always what the observation shows.
    """

    achieved_goal_indices: tuple[int, ...]
    goal_indices: tuple[int, ...]
    default_success_radius: float
    backends: tuple[str, ...]
    single_goal_position: np.ndarray
    episode_metrics = GOAL_EPISODE_METRICS

    def __init__(
        self,
        success_radius: float | None = None,
        single_goal: bool = False,
        backend: str = "generalized",
        **kwargs,
    ):
        radius = checked_success_radius(self, backend, success_radius)
        super().__init__(backend=backend, **kwargs)
        self.success_radius = radius
        self.single_goal = single_goal

    def _state_features(self, pipeline_state) -> jax.Array:
        """The observation before the goal, shape (goal_indices[0],)."""
        raise NotImplementedError

    def _stepped_features(self, stepped: State) -> jax.Array:
        """The observation before the goal after a step, from the brax environment's stepped
        state: `_state_features` of its physics unless overridden (the humanoid's includes
        the action's actuator forces, which only brax's own observation has)."""
        return self._state_features(stepped.pipeline_state)

    def _sample_goal(self, rng: jax.Array) -> jax.Array:
        """A commanded goal when not `single_goal`, shape (len(goal_indices),)."""
        raise NotImplementedError

    def _start(self, rng: jax.Array, goal: jax.Array):
        """The pipeline state an episode with `goal` starts from: the brax environment's own
        reset distribution unless overridden."""
        return super().reset(rng).pipeline_state

    def reset(self, rng: jax.Array) -> State:
        """A fresh start and a fresh goal (the fixed one with `single_goal`)."""
        start_key, goal_key = jax.random.split(rng)
        if self.single_goal:
            goal = jnp.asarray(self.single_goal_position, jnp.float32)
        else:
            goal = self._sample_goal(goal_key).astype(jnp.float32)
        zero = jnp.zeros((), jnp.float32)
        pipeline_state = self._start(start_key, goal)
        state = State(pipeline_state, jnp.zeros(0), zero, zero, {}, {"goal": goal})
        return self._with_goal(state, self._state_features(pipeline_state))

    def step(self, state: State, action: jax.Array) -> State:
        """The brax environment's step; reward = success, the goal appended to the observation."""
        # brax's step adds its reward terms to the metrics dict it is handed: give it a fresh
        # one so the episode's metrics keep their structure.
        stepped = super().step(state.replace(metrics={}), jnp.clip(action, -1.0, 1.0))
        return self._with_goal(
            state.replace(pipeline_state=stepped.pipeline_state, done=stepped.done),
            self._stepped_features(stepped),
        )

    def _with_goal(self, state: State, features: jax.Array) -> State:
        obs = jnp.concatenate([features, state.info["goal"]]).astype(jnp.float32)
        achieved = features[jnp.asarray(self.achieved_goal_indices)]
        done = jnp.asarray(state.done, jnp.float32)
        return goal_step_state(
            state, state.pipeline_state, obs, achieved, self.success_radius, done
        )

    @property
    def observation_size(self) -> int:
        # Static (brax's property would run an uncompiled reset).
        return self.goal_indices[-1] + 1
