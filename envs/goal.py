"""Shared pieces of the goal-conditioned environments: maze layouts and the success metric.

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
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

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

    def sample_point(
        self,
        rng: jax.Array,
        cell_size: float,
        margin: float,
        exclude: tuple[int, int] | None = None,
    ) -> jax.Array:
        """A point uniform over free cells (other than `exclude`), then uniform in the cell
        `margin` from its edges.

        Returns (x, y), shape (2,) float32.
        """
        cells = self.free_cells
        if exclude is not None:
            cells = cells[(cells != np.asarray(exclude)).any(axis=1)]
        cell_key, offset_key = jax.random.split(rng)
        index = jax.random.randint(cell_key, (), 0, len(cells))
        row, col = jnp.asarray(cells)[index]
        corner = jnp.stack([col, row]).astype(jnp.float32) * cell_size
        offset = jax.random.uniform(
            offset_key, (2,), minval=margin, maxval=cell_size - margin, dtype=jnp.float32
        )
        return corner + offset


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
    """Distance between achieved (2,) and commanded (2,) goal, and success, float32 scalars."""
    distance = jnp.linalg.norm(achieved - goal).astype(jnp.float32)
    success = (distance < success_radius).astype(jnp.float32)
    return distance, success


def sample_on_circle(rng: jax.Array, radius: float) -> jax.Array:
    """A point uniform on the circle of `radius` around the origin, shape (2,) float32."""
    angle = jax.random.uniform(rng, (), minval=0.0, maxval=2 * jnp.pi, dtype=jnp.float32)
    return radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)])
