"""Optimiser steps over named parameter groups, for agents whose parts learn at their own rates
(actor, critic, temperature)."""

from __future__ import annotations

import optax


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
