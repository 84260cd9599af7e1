"""How much arithmetic one PPO iteration asks for: the dense layers' FLOPs, counted from the
network sizes and the batch geometry.

The throughput benchmark divides the update's count by its measured time to say how close the
update comes to this machine's matmul ceiling. Only matrix products are counted (activations,
optimiser and GAE are small beside them); a backward pass counts as twice its forward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from purerl import Trainer


def _mlp_macs(sizes: list[int]) -> int:
    """Multiply-accumulates of one sample through dense layers of these widths."""
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def analytic_flops(trainer: Trainer) -> dict:
    """Dense-layer FLOPs of one iteration (matmuls only; backward counted as 2x forward)."""
    spec, cfg = trainer.agent.spec, trainer.agent.config
    out_size = spec.num_actions if spec.discrete else spec.action_size
    policy = _mlp_macs([spec.observation_size, *cfg.policy_hidden_sizes, out_size])
    value = _mlp_macs([spec.observation_size, *cfg.value_hidden_sizes, 1])
    train = trainer.config.train
    samples = train.steps_per_iteration
    collect = 2 * samples * policy
    # V(obs), then V of the last step's and each time limit's final observations.
    slots = trainer.agent.truncation_slots
    prep = 2 * (samples + (1 + slots) * train.num_envs) * value
    sgd = cfg.num_epochs * samples * 3 * 2 * (policy + value)  # forward + backward
    return {
        "policy_macs_per_sample": policy,
        "value_macs_per_sample": value,
        "collect_flops": collect,
        "update_prep_flops": prep,
        "update_sgd_flops": sgd,
        "update_flops": prep + sgd,
        "iteration_flops": collect + prep + sgd,
    }
