"""Optimiser steps: over named parameter groups, for agents whose parts learn at their own rates
(actor, critic, temperature); and on parameters raveled into one vector, for loops of many
small gradient steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax
from jax.flatten_util import ravel_pytree


def apply_groups(
    optimizers: dict[str, optax.GradientTransformation],
    grads: dict,
    states: dict,
    params: dict,
) -> tuple[dict, dict]:
    """One step of each group's optimizer: optimizers, grads, states and params share keys.
    Returns (new params, new optimizer states), both keyed like `optimizers`."""
    new_params, new_states = {}, {}
    for name, optimizer in optimizers.items():
        updates, new_states[name] = optimizer.update(grads[name], states[name], params[name])
        new_params[name] = optax.apply_updates(params[name], updates)
    return new_params, new_states


def raveled(
    params: Any, optimizer_state: Any
) -> tuple[jax.Array, Any, Callable[[jax.Array], Any], Callable[[jax.Array, Any], tuple]]:
    """The parameter tree and its optimizer's state with every parameter-shaped part raveled
    into one vector (`jax.flatten_util.ravel_pytree`): (flat params, flat state, unravel,
    back), where `back(flat params, flat state)` gives (params, state) as trees again.

    An elementwise optimizer (Adam, global-norm clipping) steps the vector as it steps the
    tree, in a few kernels instead of a few per parameter array: on a GPU, where loops of
    small gradient steps are bound by kernel launches, that is most of the optimizer's cost
    (docs/BENCHMARKS.md). The state stays stored as a tree, so checkpoints keep their layout.
    """
    flat, unravel = ravel_pytree(params)
    structure = jax.tree.structure(params)

    def params_like(x: Any) -> bool:
        return jax.tree.structure(x) == structure

    # The state's parts, parameter-shaped subtrees whole, and which of them are raveled.
    parts, layout = jax.tree.flatten(optimizer_state, is_leaf=params_like)
    raveled_parts = [params_like(part) for part in parts]
    flat_state = layout.unflatten(
        ravel_pytree(part)[0] if is_params else part
        for part, is_params in zip(parts, raveled_parts, strict=True)
    )

    def back(flat_params: jax.Array, state: Any) -> tuple[Any, Any]:
        parts = layout.flatten_up_to(state)
        return unravel(flat_params), layout.unflatten(
            unravel(part) if is_params else part
            for part, is_params in zip(parts, raveled_parts, strict=True)
        )

    return flat, flat_state, unravel, back


def raveled_groups(
    params: dict, optimizer_states: dict
) -> tuple[dict, dict, dict, Callable[[dict, dict], tuple[dict, dict]]]:
    """`raveled` for each named group of `apply_groups`: (flat params, flat states, unravel,
    back), the first three keyed like `optimizer_states`, and `back(flat params, flat states)`
    giving (params, states) as trees again."""
    groups = {name: raveled(params[name], state) for name, state in optimizer_states.items()}
    flat, flat_states, unravel, backs = (
        {name: group[i] for name, group in groups.items()} for i in range(4)
    )

    def back(flat_params: dict, flat_states: dict) -> tuple[dict, dict]:
        trees = {name: backs[name](flat_params[name], flat_states[name]) for name in backs}
        params = {name: tree for name, (tree, _) in trees.items()}
        return params, {name: state for name, (_, state) in trees.items()}

    return flat, flat_states, unravel, back
