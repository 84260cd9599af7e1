"""Types shared by the loop and the agents, and the scan their metrics leave through."""

from __future__ import annotations

from typing import Any, Protocol

import jax
import jax.numpy as jnp
from flax import struct

Metrics = dict[str, jax.Array]


def scan_metrics(step, init, xs=None, length=None, mean=False) -> tuple[Any, Metrics]:
    """`jax.lax.scan` of `step(carry, x) -> (carry, metrics)`, metrics a dict of arrays of one
    shape (scalars, or an inner scan's metrics): returns (carry, {name: stacked over the
    scan's steps}), or with `mean` {name: mean over all of them}, taken in one reduction.
    They leave each step as one stacked array, not as an output each: a scan writes every
    output on every trip, a kernel launch apiece on a GPU (docs/BENCHMARKS.md)."""
    names: list[str] = []  # filled in when the step is traced

    def packed(carry, x):
        carry, metrics = step(carry, x)
        names[:] = sorted(metrics)
        # On the last axis, so that an outer scan of an inner one's metrics stacks them as
        # the inner one did, and XLA writes them through unchanged.
        return carry, jnp.stack([metrics[name] for name in names], axis=-1)

    carry, stacked = jax.lax.scan(packed, init, xs, length=length)
    if mean:
        stacked = stacked.mean(axis=tuple(range(stacked.ndim - 1)))
    return carry, {name: stacked[..., i] for i, name in enumerate(names)}


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
