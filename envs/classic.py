"""Cheap pure-JAX environments with the brax `Env` interface, for fast learning tests.

Both step thousands of times faster than a physics simulator, so PPO solves them on a CPU in
seconds. Neither applies a time limit itself: `envs.wrappers.EpisodeTracker` does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State
from flax import struct


@struct.dataclass
class CartPoleState:
    """Physical state: cart position and velocity, pole angle and angular velocity."""

    x: jax.Array
    x_dot: jax.Array
    theta: jax.Array
    theta_dot: jax.Array


class CartPole(Env):
    """Classic cart-pole balancing with two discrete actions (push left, push right).

    Dynamics and termination follow the classic control formulation (Barto, Sutton and
    Anderson, 1983): reward 1 per step, terminates when |x| > 2.4 or |theta| > 12 degrees.
    Observation: (x, x_dot, theta, theta_dot), shape (4,). Action: int32 scalar in {0, 1}.
    """

    num_actions = 2
    gravity = 9.8
    cart_mass = 1.0
    pole_mass = 0.1
    pole_half_length = 0.5
    force_magnitude = 10.0
    time_step = 0.02
    x_limit = 2.4
    theta_limit = 12 * 2 * jnp.pi / 360

    def reset(self, rng: jax.Array) -> State:
        values = jax.random.uniform(rng, (4,), minval=-0.05, maxval=0.05)
        physics = CartPoleState(*values)
        zero = jnp.zeros(())
        return State(physics, self._observe(physics), zero, zero, {}, {})

    def step(self, state: State, action: jax.Array) -> State:
        p = state.pipeline_state
        force = jnp.where(action == 1, self.force_magnitude, -self.force_magnitude)
        total_mass = self.cart_mass + self.pole_mass
        pole_mass_length = self.pole_mass * self.pole_half_length
        cos, sin = jnp.cos(p.theta), jnp.sin(p.theta)
        temp = (force + pole_mass_length * p.theta_dot**2 * sin) / total_mass
        theta_acc = (self.gravity * sin - cos * temp) / (
            self.pole_half_length * (4.0 / 3.0 - self.pole_mass * cos**2 / total_mass)
        )
        x_acc = temp - pole_mass_length * theta_acc * cos / total_mass
        physics = CartPoleState(
            x=p.x + self.time_step * p.x_dot,
            x_dot=p.x_dot + self.time_step * x_acc,
            theta=p.theta + self.time_step * p.theta_dot,
            theta_dot=p.theta_dot + self.time_step * theta_acc,
        )
        fell = (jnp.abs(physics.x) > self.x_limit) | (jnp.abs(physics.theta) > self.theta_limit)
        return state.replace(
            pipeline_state=physics,
            obs=self._observe(physics),
            reward=jnp.ones(()),
            done=fell.astype(jnp.float32),
        )

    def _observe(self, p: CartPoleState) -> jax.Array:
        return jnp.stack([p.x, p.x_dot, p.theta, p.theta_dot])

    @property
    def observation_size(self) -> int:
        return 4

    @property
    def action_size(self) -> int:
        return 1

    @property
    def backend(self) -> str:
        return "jax"


@struct.dataclass
class PointState:
    position: jax.Array
    goal: jax.Array


class PointReach(Env):
    """A point in the plane driven toward a random goal by velocity commands.

    Start and goal are uniform in [-1, 1]^2, resampled on every reset. The action (2,) in
    [-1, 1] moves the point by `speed * action`; reward is minus the distance to the goal.
    It never terminates (only the time limit ends an episode), which exercises bootstrapping
    on truncation. Observation: (position, goal - position), shape (4,).
    """

    speed = 0.1

    def reset(self, rng: jax.Array) -> State:
        start_key, goal_key = jax.random.split(rng)
        physics = PointState(
            position=jax.random.uniform(start_key, (2,), minval=-1.0, maxval=1.0),
            goal=jax.random.uniform(goal_key, (2,), minval=-1.0, maxval=1.0),
        )
        zero = jnp.zeros(())
        return State(physics, self._observe(physics), zero, zero, {}, {})

    def step(self, state: State, action: jax.Array) -> State:
        p = state.pipeline_state
        position = jnp.clip(p.position + self.speed * jnp.clip(action, -1.0, 1.0), -2.0, 2.0)
        physics = p.replace(position=position)
        reward = -jnp.linalg.norm(p.goal - position)
        return state.replace(
            pipeline_state=physics,
            obs=self._observe(physics),
            reward=reward,
            done=jnp.zeros(()),
        )

    def _observe(self, p: PointState) -> jax.Array:
        return jnp.concatenate([p.position, p.goal - p.position])

    @property
    def observation_size(self) -> int:
        return 4

    @property
    def action_size(self) -> int:
        return 2

    @property
    def backend(self) -> str:
        return "jax"
