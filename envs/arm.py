"""Goal-conditioned arm tasks (reach, push, bin-pick) on a 7-joint arm built from primitives.

The depth-scaling paper's arm tasks (JaxGCRL's `envs/manipulation`) use MuJoCo Menagerie's
Franka Emika Panda, meshes included, on brax's MJX pipeline. purerl does not ship that model.
The PyPI packages that carry a Panda (gymnasium-robotics 1.4.2's kitchen Franka, robosuite
1.5.2) carry it as meshes in their own multi-file assembly formats, with heavy dependencies,
and mesh collisions make MJX slow on a CPU. So `arm_mjcf` writes, as MJCF text, an arm with
the Panda's kinematics and limits:

* 7 hinge joints placed by the Panda's published Denavit-Hartenberg table (modified
  convention): shoulder 0.333 m above the base, upper arm 0.316 m, elbow offsets +-0.0825 m,
  forearm 0.384 m, wrist offset 0.088 m, flange 0.107 m past the wrist. Joint ranges are the
  Panda's (rad): +-2.8973, +-1.7628, +-2.8973, [-3.0718, -0.0698], +-2.8973,
  [-0.0175, 3.7525], +-2.8973. Link masses are the Panda's (4.97, 0.65, 3.23, 3.59, 1.23,
  1.67, 0.74 kg; hand 0.73 kg), each on one capsule 5.5 cm in radius.
* Position servos on all 7 joints (stiffness 4500, 4500, 3500, 3500, 2000, 2000, 2000 N m/rad,
  damping a tenth of it), torques clipped to the Panda's limits: 87 N m on joints 1-4, 12 N m
  on joints 5-7. Armature 0.1, damping 1 on every joint.
* A parallel gripper: a hand capsule across the fingers' travel and two box fingers (5.4 cm
  long) on slide joints, 0 to 0.04 m each, so the gap opens to 0.08 m as the Panda's does;
  each finger is a position servo (500 N/m) whose force is clipped to 20 N.
* The "end effector" is, as in JaxGCRL, the origin of link 7 (the wrist, 0.107 m behind the
  flange and about 0.21 m behind the fingertips): reach goals are for it, and every
  observation holds its position and velocity.

How it differs from the paper's Panda: capsules and boxes instead of meshes; each link's
mass sits on a capsule along the link instead of at the Panda's measured centre of mass with
its inertia tensor; servo gains and the finger servos are ours (JaxGCRL couples the fingers
with an equality constraint and one actuator); the hand is mounted so that joint 7 at pi/2
closes the fingers horizontally (the Panda's hand sits at -45 degrees, so JaxGCRL holds joint
7 at 1.4487); bin walls are capsules (cheap to collide) rather than thin boxes; the fingers
and hand collide with the cube and the table but not with the bin walls (JaxGCRL lists a few
finger-wall pairs and notes that fingers pass through walls anyway); physics steps are 5 ms
x 10 per env step (JaxGCRL: 2 ms x 25, also 0.05 s). The arm's links, as in JaxGCRL, collide
with nothing.

Tasks (goal-conditioned, see `envs.goal`; reward = success; goals are 3-D positions):
* reach: move the wrist to a goal drawn uniformly in the box x in [-0.2, 0.2],
  y in [0.3, 0.7], z in [0.1, 0.5] (the arm's base is at the origin, the table is z = 0).
* push: push a 6 cm cube from a square region on the table (left, x < 0) to a goal on the
  table in the adjacent square region (right). Easy: regions of half-width 0.1 m centred at
  (-+0.1, 0.6); hard: half-width 0.25 m centred at (-+0.25, 0.65).
* binpick: carry the cube from the left bin to a goal on the floor of the right bin, over
  6.6 cm bin walls. Easy: bins centred at (-+0.17, 0.6), the cube within 0.07 m of
  (-0.15, 0.6), the goal within 5 mm of (0.17, 0.6); hard: bins centred at (-+0.3, 0.6),
  the cube and the goal anywhere within 0.15 m of their bin's centre.
Every episode starts from the same arm pose (JaxGCRL's, at rest, gripper open) and never
terminates; JaxGCRL suggests 100 steps for reach and 150 for the others, the paper runs
1000-step episodes. Every task takes `success_radius` (default 0.1 m) and `single_goal`
(command the centre of the goal region, `single_goal_position`, in every episode).

Only brax's "mjx" backend is supported, as in the paper and JaxGCRL (which refuses the
others "for stability"); the model is neither tuned nor checked on brax's other pipelines,
so they are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import PipelineEnv, State
from brax.io import mjcf

from envs.goal import (
    GOAL_EPISODE_METRICS,
    checked_success_radius,
    goal_start_state,
    goal_step_state,
)

# Panda kinematics, modified Denavit-Hartenberg parameters (a_{i-1}, d_i, alpha_{i-1}) per
# joint; body i sits at RotX(alpha) TransX(a) TransZ(d) in body i-1's frame and turns about
# its own z axis.
_DH = (
    (0.0, 0.333, 0.0),
    (0.0, 0.0, -np.pi / 2),
    (0.0, 0.316, np.pi / 2),
    (0.0825, 0.0, np.pi / 2),
    (-0.0825, 0.384, -np.pi / 2),
    (0.0, 0.0, np.pi / 2),
    (0.088, 0.0, np.pi / 2),
)
_FLANGE = 0.107  # flange along joint 7's axis
_JOINT_RANGES = (
    (-2.8973, 2.8973),
    (-1.7628, 1.7628),
    (-2.8973, 2.8973),
    (-3.0718, -0.0698),
    (-2.8973, 2.8973),
    (-0.0175, 3.7525),
    (-2.8973, 2.8973),
)
_LINK_MASSES = (4.97, 0.65, 3.23, 3.59, 1.23, 1.67, 0.74)
_HAND_MASS = 0.73
_TORQUE_LIMITS = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)
_JOINT_KP = (4500.0, 4500.0, 3500.0, 3500.0, 2000.0, 2000.0, 2000.0)
_LINK_RADIUS = 0.055
_FINGER_BASE = 0.0584  # finger slide joints, past the flange
_FINGER_OPEN = 0.04  # per finger
_FINGER_FORCE = 20.0
_CUBE_HALF = 0.03
_WALL_HEIGHT = 0.066

# Joints 1, 2, 4, 6 follow the action; 3, 5, 7 are held at fixed angles. Action -1..1 maps
# linearly onto these target ranges (JaxGCRL's: the arm works in front of its base).
_ACTED_JOINTS = (0, 1, 3, 5)
_ACTION_LOW = (0.3491, 0.0, -3.0718, 2.3562)
_ACTION_HIGH = (2.7925, 1.48353, -0.0698, 3.7525)
_HELD_JOINTS = {2: 0.0, 4: 0.0, 6: np.pi / 2}  # joint 7 at pi/2: fingers close horizontally
# Start pose: arm over the table in front of the base, gripper open.
_START_ARM = (1.571, 0.742, 0.0, -1.571, 0.0, 3.054, np.pi / 2)


def _fmt(values) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def _link_capsule(index: int, child_pos: np.ndarray) -> str:
    """A capsule from link `index`'s origin to its child's (or along its axis if they
    coincide), carrying the link's mass."""
    end = child_pos if np.linalg.norm(child_pos) > 1e-9 else np.array([0.0, 0.0, -0.1])
    return (
        f'<geom name="link{index + 1}" type="capsule" fromto="0 0 0 {_fmt(end)}"'
        f' size="{_LINK_RADIUS}" mass="{_LINK_MASSES[index]}"/>'
    )


def _hand_xml() -> str:
    """Hand (capsule across the fingers' travel) and two box fingers, in the flange frame."""
    pad_half = (0.006, 0.01, 0.027)  # x (thickness), y, z (length)
    fingers = ""
    for name, sign in (("left", 1), ("right", -1)):
        fingers += f"""
          <body name="{name}_finger" pos="0 0 {_FINGER_BASE}">
            <joint name="{name}_finger" type="slide" axis="{sign} 0 0" range="0 {_FINGER_OPEN}"
                   armature="0.01" damping="1"/>
            <geom name="{name}_finger" type="box" pos="{sign * pad_half[0]} 0 {pad_half[2]}"
                  size="{_fmt(pad_half)}" mass="0.05" friction="1.5 0.005 0.0001"
                  rgba="0.2 0.2 0.2 1"/>
          </body>"""
    return f"""
        <body name="hand" pos="0 0 {_FLANGE}">
          <geom name="hand" type="capsule" fromto="-0.07 0 0.03 0.07 0 0.03" size="0.028"
                mass="{_HAND_MASS}"/>
{fingers}
        </body>"""


def _arm_xml() -> str:
    """The 7 links nested body in body, ending with the hand."""
    xml = _hand_xml()
    for i in reversed(range(7)):
        a, d, alpha = _DH[i]
        pos = np.array([a, -np.sin(alpha) * d, np.cos(alpha) * d])
        quat = np.array([np.cos(alpha / 2), np.sin(alpha / 2), 0.0, 0.0])
        if i + 1 < 7:
            a1, d1, alpha1 = _DH[i + 1]
            child = np.array([a1, -np.sin(alpha1) * d1, np.cos(alpha1) * d1])
        else:
            child = np.array([0.0, 0.0, _FLANGE])
        low, high = _JOINT_RANGES[i]
        xml = f"""
      <body name="link{i + 1}" pos="{_fmt(pos)}" quat="{_fmt(quat)}">
        <joint name="joint{i + 1}" range="{low} {high}"/>
        {_link_capsule(i, child)}{xml}
      </body>"""
    return xml


@dataclass(frozen=True)
class Box3:
    """An axis-aligned box to draw points from: centre (3,) and half-extents (3,) in m."""

    center: tuple[float, float, float]
    half: tuple[float, float, float]

    def sample(self, rng: jax.Array) -> jax.Array:
        """A point uniform in the box, shape (3,) float32."""
        offset = jax.random.uniform(rng, (3,), minval=-1.0, maxval=1.0, dtype=jnp.float32)
        return jnp.asarray(self.center, jnp.float32) + jnp.asarray(self.half) * offset


@dataclass(frozen=True)
class Bin:
    """A square bin on the table: centre (x, y) and half-width of its inside, in m."""

    center: tuple[float, float]
    half: float


def arm_mjcf(cube: bool = False, bins: tuple[Bin, ...] = ()) -> str:
    """MJCF text of the arm on a table, optionally with a 6 cm cube and square bins.

    Only the hand and fingers collide, with the cube and the table (pairs listed in
    <contact>), and the cube with the table and the bin walls; links never collide.
    """
    init_q = list(_START_ARM) + [_FINGER_OPEN, _FINGER_OPEN]
    cube_xml = walls_xml = pairs = ""
    if cube:
        init_q = [0.0, 0.6, _CUBE_HALF, 1.0, 0.0, 0.0, 0.0] + init_q
        cube_xml = f"""
    <body name="cube" pos="0 0.6 {_CUBE_HALF}">
      <freejoint name="cube"/>
      <geom name="cube" type="box" size="{_CUBE_HALF} {_CUBE_HALF} {_CUBE_HALF}" mass="0.1"
            friction="1 0.005 0.0001" rgba="0.1 0.6 0.2 1"/>
    </body>"""
        touching = ["table", "hand", "left_finger", "right_finger"]
        walls = []
        radius = _WALL_HEIGHT / 2
        for b, (color, bin_) in enumerate(
            zip(("0.2 0.3 0.8 1", "0.8 0.2 0.2 1"), bins, strict=False)
        ):
            (x, y), h = bin_.center, bin_.half + radius
            for w, (x0, y0, x1, y1) in enumerate(
                (
                    (x - h, y - h, x + h, y - h),
                    (x - h, y + h, x + h, y + h),
                    (x - h, y - h, x - h, y + h),
                    (x + h, y - h, x + h, y + h),
                )
            ):
                name = f"bin{b}_wall{w}"
                walls.append(name)
                walls_xml += (
                    f'\n    <geom name="{name}" type="capsule" size="{radius}"'
                    f' fromto="{x0} {y0} {radius} {x1} {y1} {radius}" rgba="{color}"/>'
                )
        pairs = "".join(f'\n    <pair geom1="cube" geom2="{other}"/>' for other in touching + walls)
    pairs += "".join(
        f'\n    <pair geom1="table" geom2="{part}"/>'
        for part in ("hand", "left_finger", "right_finger")
    )
    actuators = "".join(
        f'\n    <position joint="joint{i + 1}" kp="{kp}" kv="{kp / 10}"'
        f' ctrlrange="{low} {high}" forcerange="{-limit} {limit}"/>'
        for i, ((low, high), kp, limit) in enumerate(
            zip(_JOINT_RANGES, _JOINT_KP, _TORQUE_LIMITS, strict=True)
        )
    )
    actuators += "".join(
        f'\n    <position joint="{name}_finger" kp="500" kv="10" ctrlrange="0 {_FINGER_OPEN}"'
        f' forcerange="{-_FINGER_FORCE} {_FINGER_FORCE}"/>'
        for name in ("left", "right")
    )
    return f"""<mujoco model="purerl_arm">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="0.005" integrator="implicitfast"/>
  <custom>
    <numeric name="init_qpos" data="{_fmt(init_q)}"/>
  </custom>
  <default>
    <joint armature="0.1" damping="1"/>
    <geom contype="0" conaffinity="0" rgba="0.9 0.9 0.9 1"/>
  </default>
  <worldbody>
    <light directional="true" pos="0 0 3" dir="0 0 -1"/>
    <geom name="table" type="plane" size="2 2 0.1" rgba="0.5 0.45 0.4 1"/>
    <geom name="base" type="cylinder" fromto="0 0 0 0 0 0.14" size="0.07" rgba="0.3 0.3 0.3 1"/>
    {cube_xml}{_arm_xml()}{walls_xml}
  </worldbody>
  <contact>{pairs}
  </contact>
  <actuator>{actuators}
  </actuator>
</mujoco>
"""


class _Arm(PipelineEnv):
    """Shared arm dynamics, action mapping, observation and metrics; tasks choose the scene,
    the start and the goal.

    Action (4,) or (5,) in [-1, 1]: target angles of joints 1, 2, 4 and 6, each mapped
    linearly onto `_ACTION_LOW`..`_ACTION_HIGH` (joints 3, 5, 7 hold 0, 0, pi/2); with a
    gripper, a fifth entry closes both fingers when > 0 and opens them otherwise (JaxGCRL's
    action layout). One env step is 10 physics steps of 5 ms (0.05 s; JaxGCRL: 25 x 2 ms).
    """

    episode_metrics = GOAL_EPISODE_METRICS
    backends = ("mjx",)  # what `envs.backends_for` reports
    default_success_radius = 0.1
    uses_gripper = True
    # XLA:CPU's fusion emitters compile the batched forward kinematics of this deep chain of
    # bodies (9 deep) into code whose run time grows steeply with the depth: 4 arms step ~100x
    # slower than one (6 instead of ~460 env steps/s, measured). Programs that step an arm
    # are compiled without them (`envs.compiler_options`; purerl's trainer, run, evaluate,
    # render and benchmarks pass it to jax.jit). Large batches hang on a 2-core CPU in
    # jaxlib's batched Cholesky (docs/ENVIRONMENTS.md, "Arm tasks").
    cpu_compiler_options = {"xla_cpu_use_fusion_emitters": False}

    goal_region: Box3  # where goals are drawn; its centre is `single_goal_position`

    def __init__(
        self, xml: str, success_radius: float | None, single_goal: bool, backend: str, **kwargs
    ):
        radius = checked_success_radius(self, backend, success_radius)
        sys = mjcf.loads(xml)
        # Newton solver (MuJoCo's default); more iterations than brax's ant needs because a
        # grasped cube slips out at fewer. 10 x 5 ms per env step: at 10 ms the fingers lose
        # the cube.
        sys = sys.tree_replace({"opt.iterations": 4, "opt.ls_iterations": 8})
        kwargs.setdefault("n_frames", 10)
        super().__init__(sys=sys, backend=backend, **kwargs)
        self.success_radius = radius
        self.single_goal = single_goal
        self.single_goal_position = np.asarray(self.goal_region.center, np.float32)
        model = sys.mj_model
        # brax's link arrays (x, xd) leave out the world body, hence the - 1.
        self._wrist = model.body("link7").id - 1
        self._arm_q = np.array(
            [model.jnt_qposadr[model.joint(f"joint{i + 1}").id] for i in range(7)]
        )
        self._finger_q = np.array(
            [model.jnt_qposadr[model.joint(f"{n}_finger").id] for n in ("left", "right")]
        )
        held = np.zeros(7, np.float32)
        for joint, angle in _HELD_JOINTS.items():
            held[joint] = angle
        self._held_targets = held

    @property
    def action_size(self) -> int:
        return 5 if self.uses_gripper else 4

    @property
    def hold_action(self) -> np.ndarray:
        """The action that holds the start pose with the gripper open, (action_size,)."""
        low, high = np.asarray(_ACTION_LOW), np.asarray(_ACTION_HIGH)
        start = np.asarray(_START_ARM)[np.asarray(_ACTED_JOINTS)]
        arm = (start - (low + high) / 2) / ((high - low) / 2)
        return np.concatenate([arm, [-1.0]])[: self.action_size].astype(np.float32)

    def _targets(self, action: jax.Array) -> jax.Array:
        """Servo targets (9,): 7 joint angles, then the two finger openings."""
        action = jnp.clip(action, -1.0, 1.0)
        low, high = np.asarray(_ACTION_LOW), np.asarray(_ACTION_HIGH)
        acted = (low + high) / 2 + action[:4] * (high - low) / 2
        arm = jnp.asarray(self._held_targets).at[np.asarray(_ACTED_JOINTS)].set(acted)
        if self.uses_gripper:
            opening = jnp.where(action[4] > 0, 0.0, _FINGER_OPEN)
        else:
            opening = jnp.asarray(_FINGER_OPEN)
        return jnp.concatenate([arm, jnp.full((2,), opening)])

    def _initial_q(self, rng: jax.Array) -> jax.Array:
        """Joint positions at reset, shape (q_size,)."""
        return jnp.asarray(self.sys.init_q)

    def _achieved(self, pipeline_state) -> jax.Array:
        """The state's coordinates in goal space, shape (3,)."""
        raise NotImplementedError

    def _features(self, pipeline_state) -> list[jax.Array]:
        """State features placed before the goal in the observation."""
        raise NotImplementedError

    def reset(self, rng: jax.Array) -> State:
        """The start pose (cube, if any, at a fresh place) at rest, with a fresh goal."""
        q_key, goal_key = jax.random.split(rng)
        q = self._initial_q(q_key)
        pipeline_state = self.pipeline_init(q, jnp.zeros(self.sys.qd_size()))
        if self.single_goal:
            goal = jnp.asarray(self.single_goal_position)
        else:
            goal = self.goal_region.sample(goal_key)
        obs = self._observe(pipeline_state, goal)
        achieved = self._achieved(pipeline_state)
        return goal_start_state(pipeline_state, obs, achieved, goal, self.success_radius)

    def step(self, state: State, action: jax.Array) -> State:
        """Sets the servo targets from `action` and runs `n_frames` physics steps; never
        done (episodes end by time limit)."""
        pipeline_state = self.pipeline_step(state.pipeline_state, self._targets(action))
        obs = self._observe(pipeline_state, state.info["goal"])
        achieved = self._achieved(pipeline_state)
        return goal_step_state(state, pipeline_state, obs, achieved, self.success_radius)

    def _observe(self, pipeline_state, goal: jax.Array) -> jax.Array:
        return jnp.concatenate(self._features(pipeline_state) + [goal]).astype(jnp.float32)

    def _arm_features(self, pipeline_state) -> list[jax.Array]:
        """Joint angles (7), wrist position (3) and velocity (3)."""
        return [
            pipeline_state.q[self._arm_q],
            pipeline_state.x.pos[self._wrist],
            pipeline_state.xd.vel[self._wrist],
        ]

    @property
    def observation_size(self) -> int:
        # Static, so asking does not run an (uncompiled, slow) reset as PipelineEnv's does.
        return self.goal_indices[-1] + 1


class ArmReach(_Arm):
    """Move the wrist to a goal point drawn uniformly in x in [-0.2, 0.2], y in [0.3, 0.7],
    z in [0.1, 0.5] (m). JaxGCRL's episode length: 100 steps.

    Observation (16,) float32: [arm joint angles (7), wrist position (3), wrist velocity (3),
    goal (3)]; achieved goal = wrist position at (7, 8, 9), goal at (13, 14, 15). Action (4,):
    see `_Arm`. The wrist is JaxGCRL's "end effector": the origin of link 7, 0.107 m behind
    the flange.
    """

    achieved_goal_indices = (7, 8, 9)
    goal_indices = (13, 14, 15)
    uses_gripper = False
    goal_region = Box3((0.0, 0.5, 0.3), (0.2, 0.2, 0.2))

    def __init__(
        self,
        success_radius: float | None = None,
        single_goal: bool = False,
        backend: str = "mjx",
        **kwargs,
    ):
        super().__init__(arm_mjcf(), success_radius, single_goal, backend, **kwargs)

    def _achieved(self, pipeline_state) -> jax.Array:
        return pipeline_state.x.pos[self._wrist]

    def _features(self, pipeline_state) -> list[jax.Array]:
        return self._arm_features(pipeline_state)


class _CubeTask(_Arm):
    """A cube to bring to a goal on the table: push or bin-pick, easy or hard.

    Observation (21,) float32: [cube position (3), arm joint angles (7), wrist position (3),
    wrist velocity (3), finger gap (1, m), finger force (1, mean of the two servos' forces
    over their 20 N limit), goal (3)]; achieved goal = cube centre at (0, 1, 2), goal at
    (18, 19, 20). Action (5,): see `_Arm`. JaxGCRL's episode length: 150 steps.
    """

    achieved_goal_indices = (0, 1, 2)
    goal_indices = (18, 19, 20)
    # difficulty -> (cube start region, goal region, bins)
    layouts: dict[str, tuple[Box3, Box3, tuple[Bin, ...]]] = {}

    def __init__(
        self,
        difficulty: str = "easy",
        success_radius: float | None = None,
        single_goal: bool = False,
        backend: str = "mjx",
        **kwargs,
    ):
        if difficulty not in self.layouts:
            raise ValueError(f"difficulty={difficulty!r}: choose one of {', '.join(self.layouts)}")
        self.difficulty = difficulty
        self.start_region, self.goal_region, self.bins = self.layouts[difficulty]
        xml = arm_mjcf(cube=True, bins=self.bins)
        super().__init__(xml, success_radius, single_goal, backend, **kwargs)
        model = self.sys.mj_model
        self._cube_q = model.jnt_qposadr[model.joint("cube").id]
        self._cube = model.body("cube").id - 1

    def _initial_q(self, rng: jax.Array) -> jax.Array:
        cube = self.start_region.sample(rng)
        return jnp.asarray(self.sys.init_q).at[self._cube_q : self._cube_q + 3].set(cube)

    def _achieved(self, pipeline_state) -> jax.Array:
        return pipeline_state.x.pos[self._cube]

    def _features(self, pipeline_state) -> list[jax.Array]:
        fingers = pipeline_state.q[self._finger_q]
        force = pipeline_state.actuator_force[-2:].mean() / _FINGER_FORCE
        return (
            [pipeline_state.x.pos[self._cube]]
            + self._arm_features(pipeline_state)
            + [fingers.sum()[None], force[None]]
        )


_ON_TABLE = _CUBE_HALF  # cube centre height resting on the table


class ArmPush(_CubeTask):
    """Push the cube across the table from a left square region to a goal in the right one.

    easy: regions of half-width 0.1 m centred at (-0.1, 0.6) and (0.1, 0.6); hard: 0.25 m
    centred at (-0.25, 0.65) and (0.25, 0.65) (JaxGCRL's). See `_CubeTask` for observation
    and action.
    """

    layouts = {
        "easy": (
            Box3((-0.1, 0.6, _ON_TABLE), (0.1, 0.1, 0.0)),
            Box3((0.1, 0.6, _ON_TABLE), (0.1, 0.1, 0.0)),
            (),
        ),
        "hard": (
            Box3((-0.25, 0.65, _ON_TABLE), (0.25, 0.25, 0.0)),
            Box3((0.25, 0.65, _ON_TABLE), (0.25, 0.25, 0.0)),
            (),
        ),
    }


class ArmBinpick(_CubeTask):
    """Carry the cube from the left bin to a goal on the floor of the right bin.

    easy: bins of inside half-width 0.14 m centred at (-0.17, 0.6) and (0.17, 0.6), the cube
    within 0.07 m of (-0.15, 0.6), the goal within 5 mm of (0.17, 0.6); hard: bins of
    half-width 0.19 m centred at (-0.3, 0.6) and (0.3, 0.6), cube and goal anywhere within
    0.15 m of their bin's centre (JaxGCRL's). See `_CubeTask` for observation and action.
    """

    layouts = {
        "easy": (
            Box3((-0.15, 0.6, _ON_TABLE), (0.07, 0.07, 0.0)),
            Box3((0.17, 0.6, _ON_TABLE), (0.005, 0.005, 0.0)),
            (Bin((-0.17, 0.6), 0.14), Bin((0.17, 0.6), 0.14)),
        ),
        "hard": (
            Box3((-0.3, 0.6, _ON_TABLE), (0.15, 0.15, 0.0)),
            Box3((0.3, 0.6, _ON_TABLE), (0.15, 0.15, 0.0)),
            (Bin((-0.3, 0.6), 0.19), Bin((0.3, 0.6), 0.19)),
        ),
    }
