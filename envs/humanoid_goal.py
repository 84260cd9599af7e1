"""Brax's humanoid walking to a goal on a circle: the goal-conditioned task sized for a GPU."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import State
from brax.envs.humanoid import Humanoid

from envs.goal import GOAL_EPISODE_METRICS, goal_metrics, sample_on_circle


class HumanoidGoal(Humanoid):
    """brax's `Humanoid` (positions kept in the observation) plus a goal for the torso.

    Observation (248,) float32 = brax's humanoid observation with current positions included
    (q (24, torso x, y first), qd (23), com inertia (110), com velocity (66), actuator forces
    (23)) followed by the goal (2,); achieved goal = torso (x, y) at indices (0, 1), goal at
    (246, 247). The goal is uniform on the circle of `goal_radius` (default 5 m) around the
    origin, where the humanoid starts; `single_goal_position` = (goal_radius, 0). Success
    radius default 0.5; reward = success. Dynamics, action (17,) and termination (torso
    height outside (1.0, 2.0)) are brax's.
    """

    achieved_goal_indices = (0, 1)
    episode_metrics = GOAL_EPISODE_METRICS

    def __init__(
        self,
        success_radius: float | None = None,
        single_goal: bool = False,
        goal_radius: float = 5.0,
        backend: str = "generalized",
        **kwargs,
    ):
        kwargs["exclude_current_positions_from_observation"] = False
        super().__init__(backend=backend, **kwargs)
        self.success_radius = 0.5 if success_radius is None else float(success_radius)
        self.single_goal = single_goal
        self.goal_radius = goal_radius
        self.single_goal_position = np.array([goal_radius, 0.0], np.float32)
        size = self.observation_size
        self.goal_indices = (size - 2, size - 1)

    def reset(self, rng: jax.Array) -> State:
        """brax's humanoid reset plus a fresh goal (the fixed one with `single_goal`)."""
        body_key, goal_key = jax.random.split(rng)
        state = super().reset(body_key)
        if self.single_goal:
            goal = jnp.asarray(self.single_goal_position)
        else:
            goal = sample_on_circle(goal_key, self.goal_radius)
        return self._with_goal(state, goal, jnp.zeros((), jnp.float32))

    def step(self, state: State, action: jax.Array) -> State:
        """brax's humanoid step; the reward is replaced by goal success."""
        goal = state.info["goal"]
        state = super().step(state, jnp.clip(action, -1.0, 1.0))
        return self._with_goal(state, goal, state.done)

    def _with_goal(self, state: State, goal: jax.Array, done: jax.Array) -> State:
        distance, success = goal_metrics(state.pipeline_state.q[:2], goal, self.success_radius)
        return state.replace(
            obs=jnp.concatenate([state.obs, goal]).astype(jnp.float32),
            reward=success,
            done=jnp.asarray(done, jnp.float32),
            metrics=dict(state.metrics, distance=distance, success=success),
            info=dict(state.info, goal=goal),
        )

    @property
    def observation_size(self) -> int:
        # Static (brax's property would run an uncompiled reset): q, qd, 10 inertia and 6
        # velocity numbers per link, one actuator force per degree of freedom, and the goal.
        return 2 * self.sys.qd_size() + self.sys.q_size() + 16 * self.sys.num_links() + 2
