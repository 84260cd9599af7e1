"""Types shared by the loop and the agents."""

from __future__ import annotations

from typing import Any, Protocol

import jax
import jax.numpy as jnp
from flax import struct

Metrics = dict[str, jax.Array]


@struct.dataclass
class Transition:
    """One step of every environment; stacked by `collect` into (T, N, ...) arrays.

    obs/next_obs (…, obs): the observation acted on and the one reached (before any reset, so
    it is the true final observation when the episode ended). termination: ended in a terminal
    state; truncation: ended by the time limit. `policy` is whatever the agent's `act` returned
    to keep (e.g. the raw action and its log-probability).
    """

    obs: jax.Array
    policy: Any
    reward: jax.Array
    termination: jax.Array
    truncation: jax.Array
    next_obs: jax.Array


def unrolls_to_columns(x: jax.Array) -> jax.Array:
    """(U, T, N, ...) consecutive unrolls -> (T, N * U, ...) trajectory columns, column
    n * U + u being environment n's u-th unroll (environment-major, so the columns of a block of
    environments stay together on the device holding them)."""
    return jnp.moveaxis(x, 0, 2).reshape(x.shape[1], -1, *x.shape[3:])


def columns_to_unrolls(x: jax.Array, num_unrolls: int) -> jax.Array:
    """The inverse of `unrolls_to_columns`: (T, N * U, ...) -> (U, T, N, ...)."""
    steps, columns = x.shape[:2]
    x = x.reshape(steps, columns // num_unrolls, num_unrolls, *x.shape[2:])
    return jnp.moveaxis(x, 2, 0)


class Agent(Protocol):
    """What the training loop needs from an algorithm. A new algorithm is a new agent."""

    def init(self, key: jax.Array) -> Any:
        """Returns the agent's initial state (a pytree: parameters, optimiser, normaliser...)."""

    def act(
        self, state: Any, obs: jax.Array, key: jax.Array, deterministic: bool
    ) -> tuple[jax.Array, Any]:
        """Actions for a batch of observations (N, obs): (env actions, what to keep)."""

    def update(self, state: Any, trajectory: Transition, key: jax.Array) -> tuple[Any, Metrics]:
        """One learning step on a (T, N) trajectory: (new state, scalar metrics).

        An agent that sometimes skips learning (e.g. while filling a replay buffer) adds
        metrics["trained"] (1.0 or 0.0); the loop then averages its metrics over the
        iterations that trained.
        """
