"""Goal-conditioned quadruped ("ant") tasks in brax, on an ant model written here as MJCF.

`AntGoal` walks to a goal on a circle around the start; `AntMaze` walks through a maze (the
U-maze and the depth-scaling paper's U4, U5, big and hardest mazes) whose walls are boxes
generated from an `envs.goal` layout. Both follow the goal-environment contract
of `envs.goal` (observation ends with the goal, "distance"/"success" metrics, reward =
success) and terminate, like brax's ant, when the torso height leaves (0.2, 1.0): the ant has
flipped over or jumped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from brax.envs.base import PipelineEnv, State
from brax.io import mjcf

from envs.goal import (
    GOAL_EPISODE_METRICS,
    MazeMixin,
    add_walls,
    checked_success_radius,
    goal_start_state,
    goal_step_state,
    sample_on_circle,
)

# (name, x sign, y sign) of each leg's outward direction.
_LEGS = (("front_left", 1, 1), ("front_right", -1, 1), ("back_left", -1, -1), ("back_right", 1, -1))
_HIP_LENGTH = 0.2  # per axis: the fixed hip stub and the thigh each reach (0.2, 0.2) outward
_SHIN_LENGTH = 0.4  # per axis
_LIMB_RADIUS = 0.08
_ANKLE_BEND = 1.0  # rad, initial downward bend of every shin (joint range 30..70 degrees)
# Torso height when standing on the bent shins: shin drop plus foot radius (~0.556).
_STAND_HEIGHT = round(float(np.sqrt(2) * _SHIN_LENGTH * np.sin(_ANKLE_BEND)) + _LIMB_RADIUS, 3)
TORSO_HEIGHT_RANGE = (0.2, 1.0)
# The ant's own coordinates come first in q and qd (torso free joint, then the eight leg
# joints); the free bodies of `ant_mjcf(objects=...)` follow, 7 q and 6 qd entries each.
ANT_Q_SIZE = 15
ANT_QD_SIZE = 14


def _leg_xml(name: str, sx: int, sy: int) -> str:
    hx, hy = _HIP_LENGTH * sx, _HIP_LENGTH * sy
    fx, fy = _SHIN_LENGTH * sx, _SHIN_LENGTH * sy
    # The ankle axis is z x (leg direction), so a positive angle bends every shin downward and
    # all four legs share one joint range and one standing pose.
    ax, ay = -sy, sx
    return f"""
      <body name="{name}_hip" pos="0 0 0">
        <geom name="{name}_stub" type="capsule" fromto="0 0 0 {hx} {hy} 0" size="{_LIMB_RADIUS}"/>
        <body name="{name}_thigh" pos="{hx} {hy} 0">
          <joint name="{name}_hip" type="hinge" axis="0 0 1" range="-30 30"/>
          <geom name="{name}_thigh" type="capsule" fromto="0 0 0 {hx} {hy} 0"
                size="{_LIMB_RADIUS}"/>
          <body name="{name}_shin" pos="{hx} {hy} 0">
            <joint name="{name}_ankle" type="hinge" axis="{ax} {ay} 0" range="30 70"/>
            <geom name="{name}_shin" type="capsule" fromto="0 0 0 {fx} {fy} 0"
                  size="{_LIMB_RADIUS}"/>
            <geom name="{name}_foot" type="sphere" pos="{fx} {fy} 0" size="{_LIMB_RADIUS}"
                  contype="1" mass="0"/>
          </body>
        </body>
      </body>"""


@dataclass(frozen=True)
class MovableObject:
    """A rigid body on a free joint that the ant can push: one sphere or box geom.

    `shape` "sphere" (`size` = (radius,)) or "box" (`size` = half extents (x, y, z));
    `position` (x, y, z) of its centre at rest in the MJCF, `mass` in kg; `friction` its
    sliding friction against the floor (see `ant_mjcf`).
    """

    name: str
    shape: str
    size: tuple[float, ...]
    mass: float
    position: tuple[float, float, float]
    friction: float = 1.0
    rgba: str = "0.9 0.9 0.9 1"

    def xml(self) -> str:
        """The <body> element: a free joint and one geom colliding with feet, torso, floor and
        walls (contype and conaffinity 1)."""
        x, y, z = self.position
        size = " ".join(str(s) for s in self.size)
        return f"""
    <body name="{self.name}" pos="{x} {y} {z}">
      <joint name="{self.name}_root" type="free" limited="false" armature="0" damping="0"/>
      <geom name="{self.name}" type="{self.shape}" size="{size}" mass="{self.mass}"
            friction="{self.friction} 0.5 0.5" contype="1" conaffinity="1" rgba="{self.rgba}"/>
    </body>"""


def ant_mjcf(
    walls: Sequence[tuple[float, float, float, float]] = (),
    wall_height: float = 2.0,
    objects: Sequence[MovableObject] = (),
) -> str:
    """MJCF text of the ant on a floor, with optional static box walls and movable objects.

    walls: (center x, center y, half size x, half size y) per box; boxes stand on the floor,
    `wall_height` tall (2 m: the generalized pipeline lets a fast ant ride up onto a 1 m
    wall). Only feet and torso have contype 1, and only floor and walls have conaffinity 1, so
    the simulator checks just feet/torso against floor/walls (sphere-plane and sphere-box
    pairs, both supported by brax's collision), never limbs against each other.
    objects: free bodies listed after the ant, so q = [ant (ANT_Q_SIZE), 7 per object
    (x, y, z, quaternion w x y z)] and qd = [ant (ANT_QD_SIZE), 6 per object (linear, then
    angular velocity)]. Objects have contype and conaffinity 1: they also touch feet, torso,
    floor and walls, so their shapes add sphere-sphere / sphere-box / box-plane / box-box pairs.
    A contact takes the larger friction of its two geoms (MuJoCo's rule, which brax's
    collision follows), so the floor gets the smallest object friction (1 without objects):
    feet, torso and walls keep friction 1 against it, and each object slides with its own.
    The <custom> numerics are the constraint and spring settings brax's spring and
    positional pipelines read (brax's defaults are tuned for no particular model).
    """
    init_qpos = [0.0, 0.0, _STAND_HEIGHT, 1.0, 0.0, 0.0, 0.0] + [0.0, _ANKLE_BEND] * len(_LEGS)
    for obj in objects:
        init_qpos += [*obj.position, 1.0, 0.0, 0.0, 0.0]
    legs = "".join(_leg_xml(*leg) for leg in _LEGS)
    bodies = "".join(obj.xml() for obj in objects)
    floor_friction = min([1.0] + [obj.friction for obj in objects])
    actuators = "".join(
        f'\n    <motor joint="{name}_{part}" gear="150" ctrllimited="true" ctrlrange="-1 1"/>'
        for name, _, _ in _LEGS
        for part in ("hip", "ankle")
    )
    xml = f"""<mujoco model="purerl_ant">
  <compiler angle="degree" coordinate="local" inertiafromgeom="true"/>
  <option timestep="0.01" iterations="4"/>
  <custom>
    <numeric name="init_qpos" data="{" ".join(str(v) for v in init_qpos)}"/>
    <numeric name="constraint_stiffness" data="4000"/>
    <numeric name="constraint_limit_stiffness" data="1000"/>
    <numeric name="constraint_ang_damping" data="10"/>
    <numeric name="constraint_vel_damping" data="20"/>
    <numeric name="joint_scale_pos" data="0.5"/>
    <numeric name="joint_scale_ang" data="0.2"/>
    <numeric name="ang_damping" data="0"/>
    <numeric name="spring_mass_scale" data="1"/>
    <numeric name="spring_inertia_scale" data="1"/>
    <numeric name="solver_maxls" data="15"/>
  </custom>
  <default>
    <joint limited="true" armature="1" damping="1"/>
    <geom contype="0" conaffinity="0" condim="3" density="5" friction="1 0.5 0.5"
          rgba="0.7 0.5 0.3 1"/>
  </default>
  <worldbody>
    <light directional="true" pos="0 0 3" dir="0 0 -1"/>
    <geom name="floor" type="plane" pos="0 0 0" size="50 50 0.1" conaffinity="1"
          friction="{floor_friction} 0.5 0.5" rgba="0.5 0.5 0.5 1"/>
    <body name="torso" pos="0 0 {_STAND_HEIGHT}">
      <joint name="root" type="free" limited="false" armature="0" damping="0"/>
      <geom name="torso" type="sphere" size="0.25" contype="1"/>{legs}
    </body>{bodies}
  </worldbody>
  <actuator>{actuators}
  </actuator>
</mujoco>
"""
    return add_walls(xml, walls, wall_height, conaffinity=1, rgba="0.6 0.6 0.7 1")


class _GoalAnt(PipelineEnv):
    """Shared ant dynamics, observation and metrics; subclasses choose start and goal.

    Observation (31,) float32: [q (15: torso x, y, z, quaternion w x y z, then hip and ankle
    angles of the four legs), qd (14), goal x, goal y]; achieved goal = torso (x, y) at
    indices (0, 1), commanded goal at (29, 30). Action (8,) in [-1, 1]: hip and ankle torques
    of each leg in the order front left, front right, back left, back right.

    With movable objects (`ant_mjcf(objects=...)`) the observation is still [q, qd, goal],
    q and qd growing by 7 and 6 per object after the ant's own entries; subclasses then
    declare their `goal_indices`, and `achieved_goal_indices` may point at an object's
    (x, y) in q (they must index q, which leads the observation). Reset noise touches only
    the ant's own q and qd; objects start at rest where `_place_objects` puts them.
    """

    achieved_goal_indices = (0, 1)
    goal_indices = (29, 30)
    episode_metrics = GOAL_EPISODE_METRICS
    default_success_radius = 0.5
    objects: tuple[MovableObject, ...] = ()  # free bodies that subclasses add to the scene
    # The brax pipelines the task is checked to work on (`envs.backends_for` reads this).
    backends: tuple[str, ...] = ("generalized", "spring", "positional", "mjx")
    # mjx's Newton solver: (iterations, line-search iterations), brax's ant settings.
    mjx_iterations = (1, 4)

    def __init__(
        self,
        xml: str,
        success_radius: float | None,
        single_goal: bool,
        reset_noise_scale: float,
        backend: str,
        **kwargs,
    ):
        radius = checked_success_radius(self, backend, success_radius)
        sys = mjcf.loads(xml)
        n_frames = 5
        # Same per-pipeline numerics as brax's own ant: spring and positional need a smaller
        # step, positional a stronger motor, mjx a Newton solver with few iterations.
        if backend in ("spring", "positional"):
            sys = sys.tree_replace({"opt.timestep": 0.005})
            n_frames = 10
        if backend == "positional":
            sys = sys.replace(
                actuator=sys.actuator.replace(gear=200 * jnp.ones_like(sys.actuator.gear))
            )
        if backend == "mjx":
            sys = sys.tree_replace(
                {
                    "opt.solver": mujoco.mjtSolver.mjSOL_NEWTON,
                    "opt.disableflags": mujoco.mjtDisableBit.mjDSBL_EULERDAMP,
                    "opt.iterations": self.mjx_iterations[0],
                    "opt.ls_iterations": self.mjx_iterations[1],
                }
            )
        kwargs.setdefault("n_frames", n_frames)
        super().__init__(sys=sys, backend=backend, **kwargs)
        self.success_radius = radius
        if max(self.achieved_goal_indices) >= self.sys.q_size():
            raise ValueError("achieved_goal_indices must index q, the observation's first part")
        self.single_goal = single_goal
        self.reset_noise_scale = reset_noise_scale

    def _sample_goal(self, rng: jax.Array) -> jax.Array:
        """Commanded goal when not `single_goal`, shape (2,)."""
        raise NotImplementedError

    def _sample_start_xy(self, rng: jax.Array, goal: jax.Array) -> jax.Array:
        """Torso (x, y) at reset before the reset noise, shape (2,): the origin by default."""
        return jnp.zeros(2, jnp.float32)

    def _place_objects(self, q: jax.Array, goal: jax.Array, rng: jax.Array) -> jax.Array:
        """q (q_size,) with the movable objects' entries set for a reset toward `goal`;
        by default they stay where the MJCF puts them."""
        return q

    def _achieved_goal(self, pipeline_state) -> jax.Array:
        """The state's coordinates in goal space, shape (2,): q at `achieved_goal_indices`."""
        return pipeline_state.q[np.asarray(self.achieved_goal_indices)]

    def reset(self, rng: jax.Array) -> State:
        """Standing pose with brax-ant-style noise, at a fresh start, with a fresh goal."""
        q_key, qd_key, start_key, goal_key, object_key = jax.random.split(rng, 5)
        if self.single_goal:
            goal = jnp.asarray(self.single_goal_position, jnp.float32)
        else:
            goal = self._sample_goal(goal_key).astype(jnp.float32)
        noise = self.reset_noise_scale
        q = self.sys.init_q.at[:ANT_Q_SIZE].add(
            jax.random.uniform(q_key, (ANT_Q_SIZE,), minval=-noise, maxval=noise)
        )
        q = q.at[:2].add(self._sample_start_xy(start_key, goal))
        ant_qd = noise * jax.random.normal(qd_key, (ANT_QD_SIZE,))
        qd = jnp.zeros(self.sys.qd_size()).at[:ANT_QD_SIZE].set(ant_qd)
        pipeline_state = self.pipeline_init(self._place_objects(q, goal, object_key), qd)
        obs = self._observe(pipeline_state, goal)
        achieved = self._achieved_goal(pipeline_state)
        return goal_start_state(pipeline_state, obs, achieved, goal, self.success_radius)

    def step(self, state: State, action: jax.Array) -> State:
        """Applies the torques for `n_frames` physics steps; done when the torso height leaves
        (0.2, 1.0)."""
        pipeline_state = self.pipeline_step(state.pipeline_state, jnp.clip(action, -1.0, 1.0))
        z = pipeline_state.x.pos[0, 2]
        low, high = TORSO_HEIGHT_RANGE
        done = ((z < low) | (z > high)).astype(jnp.float32)
        obs = self._observe(pipeline_state, state.info["goal"])
        achieved = self._achieved_goal(pipeline_state)
        return goal_step_state(state, pipeline_state, obs, achieved, self.success_radius, done)

    def _observe(self, pipeline_state, goal: jax.Array) -> jax.Array:
        return jnp.concatenate([pipeline_state.q, pipeline_state.qd, goal]).astype(jnp.float32)

    @property
    def observation_size(self) -> int:
        # Static, so asking does not run an (uncompiled, slow) reset as PipelineEnv's does.
        return self.sys.q_size() + self.sys.qd_size() + 2


class AntGoal(_GoalAnt):
    """Ant starting at the origin, goal uniform on the circle of `goal_radius` (default 10).

    `single_goal_position` = (goal_radius, 0). Success radius default 0.5. See `_GoalAnt` for
    the observation and action layout.
    """

    def __init__(
        self,
        success_radius: float | None = None,
        single_goal: bool = False,
        goal_radius: float = 10.0,
        reset_noise_scale: float = 0.1,
        backend: str = "generalized",
        **kwargs,
    ):
        super().__init__(
            ant_mjcf(objects=self.objects),
            success_radius,
            single_goal,
            reset_noise_scale,
            backend,
            **kwargs,
        )
        self.goal_radius = goal_radius
        self.single_goal_position = np.array([goal_radius, 0.0], np.float32)

    def _sample_goal(self, rng: jax.Array) -> jax.Array:
        return sample_on_circle(rng, self.goal_radius)


class AntMaze(MazeMixin, _GoalAnt):
    """Ant in a maze of `cell_size` cells (default: the U-maze, 4 m cells, `wall_height` 2 m,
    as in JaxGCRL and the depth-scaling paper).

    Starts and goals follow `envs.goal.MazeMixin`: by default both are uniform free cells
    (different ones) plus a uniform offset at least `margin` (1 m) from the cell's edges; with
    `fixed_start=True` every episode starts at the centre of the layout's start cell ('S',
    the paper's protocol) and goals avoid that cell. The torso then gets brax-ant-style
    reset noise (uniform +-`reset_noise_scale`). `single_goal_position` is the centre of the
    free cell furthest by path from the start cell: the far end of the U, (6, 14). Walls are
    the layout's wall cells merged into few boxes (`walls`), in `xml`. Success radius default
    0.5. See `_GoalAnt` for the observation and action layout.

    layout: a name in `envs.goal.LAYOUTS` or rows of '#'/'.'/'S'.
    """

    def __init__(
        self,
        success_radius: float | None = None,
        single_goal: bool = False,
        layout: str | tuple[str, ...] = "umaze",
        cell_size: float = 4.0,
        margin: float = 1.0,
        fixed_start: bool = False,
        wall_height: float = 2.0,
        reset_noise_scale: float = 0.1,
        backend: str = "generalized",
        **kwargs,
    ):
        self._init_maze(layout, cell_size, margin, fixed_start, wall_height)
        self.xml = ant_mjcf(self.walls, self.wall_height, self.objects)
        super().__init__(
            self.xml, success_radius, single_goal, reset_noise_scale, backend, **kwargs
        )
