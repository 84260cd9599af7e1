"""Goal-conditioned observations as learners see them: the [state, goal] layout an environment
declares (envs/goal.py's contract), and the sparse success reward of a relabelled goal.

Shared by the agents that relabel goals from their replay buffer (CRL, SAC+HER).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from envs import EnvSpec
from envs.goal import goal_metrics
from purerl.checks import ConfigError


def goal_layout(spec: EnvSpec, agent: str) -> tuple[int, jax.Array]:
    """(state size, achieved-goal indices) of a goal-conditioned observation [state, goal].

    Raises ConfigError (naming `agent`) when the environment is not goal-conditioned, its
    actions are discrete, or its declared indices do not describe that layout.
    """
    if not spec.goal_conditioned:
        raise ConfigError("env.name", f"{agent} needs a goal-conditioned environment")
    if spec.discrete:
        raise ConfigError("env.name", f"{agent} needs continuous actions")
    goal, achieved = tuple(spec.goal_indices), tuple(spec.achieved_goal_indices)
    state_size = spec.observation_size - len(goal)
    if goal != tuple(range(state_size, spec.observation_size)):
        raise ConfigError(
            "env.name",
            f"goal_indices {goal} must be the last {len(goal)} observation entries "
            f"({state_size}..{spec.observation_size - 1}): observations are [state, goal]",
        )
    if len(achieved) != len(goal) or not all(0 <= i < state_size for i in achieved):
        raise ConfigError(
            "env.name",
            f"achieved_goal_indices {achieved} must name {len(goal)} state entries "
            f"(indices below {state_size}), one per goal coordinate",
        )
    return state_size, jnp.asarray(achieved)


def success_reward(achieved: jax.Array, goal: jax.Array, success_radius: float) -> jax.Array:
    """1.0 where achieved (B, goal) lies within `success_radius` of goal (B, goal), else 0.0:
    the reward a goal-conditioned environment gives (envs.goal.goal_metrics, the one
    definition of success), for goals the environment never commanded."""
    return jax.vmap(goal_metrics, in_axes=(0, 0, None))(achieved, goal, success_radius)[1]
