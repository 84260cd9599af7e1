"""Ant tasks with a movable object, after JaxGCRL's "Ant Soccer" (`ant_ball`) and HIRO's
AntPush (`ant_push`), on the ant of `envs.ant_goal` with a free body added to its MJCF.

`AntBall`: push a ball to the goal; the achieved goal is the ball's (x, y).
`AntPush`: a block stands in the only way to the goal; push it aside and walk to the goal;
the achieved goal is the torso's (x, y).

Both keep the ant's q at [0:15] and qd at [0:14]; the object's free joint follows, so
q[15:22] = object (x, y, z, quaternion w x y z) and qd[14:20] = its linear and angular
velocity. Observation (44,) float32 = [q (22), qd (20), goal (2)].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from envs.ant_goal import ANT_Q_SIZE, AntGoal, AntMaze, MovableObject

# JaxGCRL's ball: radius 0.5 m, 0.576 kg (two concentric geoms of density 1 and 0.1).
BALL_RADIUS = 0.5
BALL_MASS = 0.576
# Every foot's centre is 0.87 m from the torso's axis at reset (0.95 m with its radius): a ball
# centre closer than this to the start would overlap the ant.
BALL_CLEARANCE = 1.6


class AntBall(AntGoal):
    """Ant soccer: push a free ball (radius 0.5 m, 0.576 kg) to a goal 5 m from the start.

    The ant starts at the origin; the goal is uniform on the circle of `goal_radius`
    (default 5) around it; the ball starts at rest on the floor at a fifth of the way to the
    goal plus 1 m in a uniform direction (JaxGCRL's placement), moved radially out to
    `BALL_CLEARANCE` (1.6 m) from the origin where that would put it on the ant. The ball
    rolls, without rolling resistance (JaxGCRL's ball glides on frictionless slide joints).
    Observation (44,): [q (22), qd (20), goal (2)]; achieved goal = ball (x, y) = q[15:17],
    at observation indices (15, 16); goal at (42, 43). Success radius 0.5 between ball and
    goal. `single_goal_position` = (goal_radius, 0). Episode ends like `AntGoal`'s when the
    torso height leaves (0.2, 1.0).
    """

    achieved_goal_indices = (ANT_Q_SIZE, ANT_Q_SIZE + 1)
    goal_indices = (42, 43)
    objects = (
        MovableObject(
            "ball", "sphere", (BALL_RADIUS,), BALL_MASS, (2.0, 0.0, BALL_RADIUS), rgba="1 1 1 1"
        ),
    )

    def __init__(
        self,
        success_radius: float | None = None,
        single_goal: bool = False,
        goal_radius: float = 5.0,
        reset_noise_scale: float = 0.1,
        backend: str = "generalized",
        **kwargs,
    ):
        if not goal_radius > BALL_CLEARANCE:
            raise ValueError(
                f"goal_radius must exceed {BALL_CLEARANCE} (the ball's clearance from the"
                f" ant), got {goal_radius}"
            )
        super().__init__(
            success_radius, single_goal, goal_radius, reset_noise_scale, backend, **kwargs
        )

    def _place_objects(self, q: jax.Array, goal: jax.Array, rng: jax.Array) -> jax.Array:
        angle = jax.random.uniform(rng, (), minval=0.0, maxval=2 * jnp.pi)
        ball = 0.2 * goal + jnp.stack([jnp.cos(angle), jnp.sin(angle)])
        distance = jnp.linalg.norm(ball)
        # Off the ant: radially outward (along the goal direction if exactly at the origin).
        direction = jnp.where(
            distance > 1e-3, ball / jnp.maximum(distance, 1e-3), goal / jnp.linalg.norm(goal)
        )
        ball = direction * jnp.maximum(distance, BALL_CLEARANCE)
        return q.at[ANT_Q_SIZE : ANT_Q_SIZE + 2].set(ball)


# AntPush's arena, cell size 8 m, row 0 at the lowest y (the `envs.goal` convention). The ant
# starts in cell (1, 1); the block fills cell (2, 2), the only way into the goal cells (2, 3)
# and (3, 2): JaxGCRL's ant_push layout.
PUSH_LAYOUT = (
    "#####",
    "#..##",
    "#...#",
    "##.##",
    "#####",
)
PUSH_CELL_SIZE = 8.0
PUSH_BLOCK_CELL = (2, 2)
PUSH_GOAL_CELLS = ((2, 3), (3, 2))
# JaxGCRL's block: 7.2 x 7.2 x 3.6 m (0.4 m narrower than its cell on each side), walls 4 m.
PUSH_BLOCK_HALF_SIZE = (3.6, 3.6, 1.8)
PUSH_BLOCK_MASS = 1.0
PUSH_BLOCK_FRICTION = 0.2


class AntPush(AntMaze):
    """Ant push (HIRO's AntPush as JaxGCRL lays it out): a movable block blocks the way to
    the goal; the ant must push it out of the way and walk to the goal.

    Arena `PUSH_LAYOUT`, 8 m cells, 4 m tall walls. The ant starts at the centre of cell
    (1, 1), (12, 12). The block (7.2 x 7.2 x 3.6 m, `PUSH_BLOCK_MASS` kg, on a free joint:
    it slides and turns on the floor with friction 1) starts in cell (2, 2), centre (20, 20).
    The goal is in one of the two cells behind it, (2, 3) or (3, 2), chosen uniformly, at
    the cell centre plus a uniform offset in [0, 2) m per axis (JaxGCRL's distribution).
    `single_goal_position` = centre of cell (2, 3), (28, 20). Achieved goal = torso (x, y)
    at (0, 1); observation (44,): [q (22), qd (20), goal (2)], goal at (42, 43). Success
    radius 0.5.
    """

    goal_indices = (42, 43)
    # The positional pipeline throws the block into the air on contact.
    backends = ("generalized", "spring", "mjx")
    # mjx's default single Newton iteration leaves the block stuck to the floor (JaxGCRL runs
    # its ant_push on mjx with 4 and 8).
    mjx_iterations = (4, 8)
    objects = (
        MovableObject(
            "block",
            "box",
            PUSH_BLOCK_HALF_SIZE,
            PUSH_BLOCK_MASS,
            (
                (PUSH_BLOCK_CELL[1] + 0.5) * PUSH_CELL_SIZE,
                (PUSH_BLOCK_CELL[0] + 0.5) * PUSH_CELL_SIZE,
                PUSH_BLOCK_HALF_SIZE[2],
            ),
            PUSH_BLOCK_FRICTION,
            "0.9 0.1 0.1 1",
        ),
    )

    def __init__(
        self,
        success_radius: float | None = None,
        single_goal: bool = False,
        reset_noise_scale: float = 0.1,
        backend: str = "generalized",
        **kwargs,
    ):
        super().__init__(
            success_radius,
            single_goal,
            layout=PUSH_LAYOUT,
            cell_size=PUSH_CELL_SIZE,
            fixed_start=True,  # the ant starts in cell (1, 1), never in the block's cell
            wall_height=4.0,
            reset_noise_scale=reset_noise_scale,
            backend=backend,
            **kwargs,
        )
        self.goal_cells = np.array(
            [self.layout.cell_center(cell, PUSH_CELL_SIZE) for cell in PUSH_GOAL_CELLS]
        )

    def _sample_goal(self, rng: jax.Array) -> jax.Array:
        cell_key, offset_key = jax.random.split(rng)
        centre = jnp.asarray(self.goal_cells)[jax.random.randint(cell_key, (), 0, 2)]
        return centre + jax.random.uniform(offset_key, (2,), maxval=2.0)
