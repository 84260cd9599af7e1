"""JaxGCRL's basic goal-reaching tasks on brax's own reacher, pusher and half cheetah.

Each keeps its brax environment's model, action handling and physics (per-backend numerics
included) and follows the goal-environment contract of `envs.goal` through
`GoalConditioned`: observation = [state features, goal], reward = success, metrics
"distance"/"success", a fresh start and goal every reset. The state features are brax's
observation with everything that reveals the commanded goal (the target or goal body) left
out, so a goal relabelled from the future is as consistent with the state as the commanded
one. Where brax's model has a target body (reacher's target, pusher's goal) it is placed at
the commanded goal, so a rendering shows the goal the policy is given.
"""

from __future__ import annotations

import contextlib
import warnings

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from brax import base, math
from brax.envs.half_cheetah import Halfcheetah
from brax.envs.pusher import Pusher
from brax.envs.reacher import Reacher

from envs.goal import GoalConditioned


class ReacherGoal(GoalConditioned, Reacher):
    """brax's two-link reacher: bring the fingertip to the goal (x, y) on the arena plane.

    Observation (10,) float32: cos and sin of the two joint angles (4), fingertip (x, y) (2),
    fingertip velocity (x, y) (2), goal (x, y) (2); achieved goal at (4, 5), goal at (8, 9).
    Goals follow brax's target distribution (distance from the base 0.2 * U(0, 1), uniform
    angle), and brax's target sphere is placed at the goal; starts are brax's (joint angles
    +-0.1, velocities +-0.005). `single_goal_position` = (-0.15, 0), opposite the arm's rest
    direction. Success radius default 0.05 (JaxGCRL's). Action (2,): brax's joint torques.
    """

    achieved_goal_indices = (4, 5)
    goal_indices = (8, 9)
    default_success_radius = 0.05
    backends = ("generalized", "spring", "positional", "mjx")

    def __init__(
        self,
        success_radius: float | None = None,
        single_goal: bool = False,
        backend: str = "generalized",
        **kwargs,
    ):
        super().__init__(success_radius, single_goal, backend, **kwargs)
        self.single_goal_position = np.array([-0.15, 0.0], np.float32)
        # brax fuses the fingertip body into the second link (no joint between them); its
        # sphere keeps the offset.
        tip_offset = jnp.asarray(self.sys.mj_model.geom("fingertip").pos, jnp.float32)
        self._fingertip = base.Transform.create(pos=tip_offset)

    def _sample_goal(self, rng: jax.Array) -> jax.Array:
        # The target body sits at the origin, so its slide coordinates are its world (x, y).
        return self._random_target(rng)[1]

    def _start(self, rng: jax.Array, goal: jax.Array):
        q_key, qd_key = jax.random.split(rng)
        q_noise = jax.random.uniform(q_key, (self.sys.q_size(),), minval=-0.1, maxval=0.1)
        qd = jax.random.uniform(qd_key, (self.sys.qd_size(),), minval=-0.005, maxval=0.005)
        q = self.sys.init_q + q_noise
        return self.pipeline_init(q.at[2:].set(goal), qd.at[2:].set(0.0))

    def _state_features(self, pipeline_state) -> jax.Array:
        theta = pipeline_state.q[:2]
        link = pipeline_state.x.take(1)
        tip = link.do(self._fingertip).pos
        link_velocity = pipeline_state.xd.take(1)
        tip_velocity = link_velocity.vel + jnp.cross(link_velocity.ang, tip - link.pos)
        return jnp.concatenate([jnp.cos(theta), jnp.sin(theta), tip[:2], tip_velocity[:2]])


class PusherGoal(GoalConditioned, Pusher):
    """brax's 7-joint pusher arm: push the object so its centre reaches the goal (x, y).

    Observation (22,) float32: brax's pusher observation without the goal body (arm joint
    angles (7), arm joint velocities (7), arm tip position (3), object position (3)), then
    the goal (x, y); achieved goal = object (x, y) at (17, 18), goal at (20, 21). Table
    coordinates (world frame) as in JaxGCRL: the object starts uniform in x [0.25, 0.65],
    y [-0.35, -0.05) and at least 0.17 from the goal (moved straight away from it if
    closer); the goal is uniform in x [0.25, 0.65], y [-0.6, -0.3) ("easy") or x [-0.1, 0.9],
    y [-0.7, 0.3] ("hard"). brax's red goal disc is placed at the goal. The arm starts at
    rest in brax's pose (velocities +-0.005). `single_goal_position` = the centre of the goal
    range. Success radius default 0.1 (JaxGCRL's). Action (7,) in [-1, 1], scaled by brax to
    the motors' control range.
    """

    achieved_goal_indices = (17, 18)
    goal_indices = (20, 21)
    default_success_radius = 0.1
    backends = ("generalized", "spring", "positional", "mjx")
    # (low corner, high corner) of the uniform (x, y) ranges.
    object_range = ((0.25, -0.35), (0.65, -0.05))
    goal_ranges = {"easy": ((0.25, -0.6), (0.65, -0.3)), "hard": ((-0.1, -0.7), (0.9, 0.3))}
    min_object_goal_distance = 0.17

    def __init__(
        self,
        difficulty: str = "easy",
        success_radius: float | None = None,
        single_goal: bool = False,
        backend: str = "generalized",
        **kwargs,
    ):
        if difficulty not in self.goal_ranges:
            raise ValueError(
                f"difficulty must be one of {', '.join(self.goal_ranges)}, got {difficulty!r}"
            )
        super().__init__(success_radius, single_goal, backend, **kwargs)
        self.difficulty = difficulty
        self.goal_range = np.array(self.goal_ranges[difficulty], np.float32)
        self.single_goal_position = self.goal_range.mean(axis=0)
        self._object_q, self._object_rest = _slide_coordinates(self.sys.mj_model, "object")
        self._goal_q, self._goal_rest = _slide_coordinates(self.sys.mj_model, "goal")

    def _sample_goal(self, rng: jax.Array) -> jax.Array:
        low, high = self.goal_range
        return jax.random.uniform(rng, (2,), minval=low, maxval=high)

    def _start(self, rng: jax.Array, goal: jax.Array):
        object_key, qd_key = jax.random.split(rng)
        low, high = np.array(self.object_range, np.float32)
        position = jax.random.uniform(object_key, (2,), minval=low, maxval=high)
        offset = position - goal
        distance = math.safe_norm(offset)
        scale = jnp.maximum(distance, self.min_object_goal_distance) / jnp.maximum(distance, 1e-6)
        position = goal + scale * offset
        q = self.sys.init_q.at[self._object_q].set(position - self._object_rest)
        q = q.at[self._goal_q].set(goal - self._goal_rest)
        qd = jax.random.uniform(qd_key, (self.sys.qd_size(),), minval=-0.005, maxval=0.005)
        qd = qd.at[np.concatenate([self._object_q, self._goal_q])].set(0.0)
        return self.pipeline_init(q, qd)

    def _state_features(self, pipeline_state) -> jax.Array:
        return self._get_obs(pipeline_state)[:-3]  # the last three are the goal body's position


def _slide_coordinates(model, body: str) -> tuple[np.ndarray, np.ndarray]:
    """q addresses (2,) of `body`'s x and y slide joints, and the body's rest (x, y) (2,)."""
    joints = [j for j in range(model.njnt) if model.jnt_bodyid[j] == model.body(body).id]
    by_axis = {int(np.argmax(model.jnt_axis[j])): int(model.jnt_qposadr[j]) for j in joints}
    return np.array([by_axis[0], by_axis[1]]), np.asarray(model.body(body).pos[:2], np.float32)


@contextlib.contextmanager
def _without_settotalmass_warning():
    """brax's half_cheetah.xml sets `settotalmass`, which MuJoCo 4 deprecates with a warning
    printed and appended to MUJOCO_LOG.TXT in the working directory at every load. We load
    brax's model knowingly: drop that warning, pass any other to Python's warnings."""

    def warn(text: str) -> None:
        if "settotalmass" not in text:
            warnings.warn(text, stacklevel=2)

    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(warn)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


class HalfCheetahGoal(GoalConditioned, Halfcheetah):
    """brax's half cheetah: run until the torso's x position is at the goal x.

    Observation (19,) float32: brax's half-cheetah observation with the current position
    kept (q (9: torso x, z, pitch, then six joint angles), qd (9)), then the goal x;
    achieved goal = torso x at (0,), goal at (18,). The goal lies ahead of or behind the start
    (x = 0) with equal probability, its distance uniform in [min_goal_distance,
    goal_distance] (default [1, 5]: no goal within reach at the start). `single_goal_position` =
    (goal_distance,): JaxGCRL's fixed target 5 m ahead. Starts are brax's (positions
    +-reset_noise_scale, velocities reset_noise_scale * N(0, 1)). Success radius default
    0.5. Action (6,): brax's joint torques. brax's model has no target body.
    """

    achieved_goal_indices = (0,)
    goal_indices = (18,)
    default_success_radius = 0.5
    backends = ("generalized", "spring", "positional", "mjx")

    def __init__(
        self,
        success_radius: float | None = None,
        single_goal: bool = False,
        goal_distance: float = 5.0,
        min_goal_distance: float = 1.0,
        reset_noise_scale: float = 0.1,
        backend: str = "generalized",
        **kwargs,
    ):
        if not 0 <= min_goal_distance <= goal_distance:
            raise ValueError(
                f"need 0 <= min_goal_distance <= goal_distance, got {min_goal_distance} and "
                f"{goal_distance}; lower min_goal_distance or raise goal_distance"
            )
        with _without_settotalmass_warning():
            super().__init__(
                success_radius,
                single_goal,
                backend,
                reset_noise_scale=reset_noise_scale,
                exclude_current_positions_from_observation=False,
                **kwargs,
            )
        self.goal_distance = goal_distance
        self.min_goal_distance = min_goal_distance
        self.single_goal_position = np.array([goal_distance], np.float32)

    def _sample_goal(self, rng: jax.Array) -> jax.Array:
        side_key, distance_key = jax.random.split(rng)
        side = jnp.where(jax.random.bernoulli(side_key), 1.0, -1.0)
        distance = jax.random.uniform(
            distance_key, (1,), minval=self.min_goal_distance, maxval=self.goal_distance
        )
        return side * distance

    def _state_features(self, pipeline_state) -> jax.Array:
        return self._get_obs(pipeline_state)
