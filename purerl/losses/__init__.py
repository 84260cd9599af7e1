"""Loss modules: pure functions (params, batch, key) -> (loss, metrics)."""

from purerl.losses.ppo import PPOBatch, make_ppo_loss, ppo_objective

__all__ = ["PPOBatch", "make_ppo_loss", "ppo_objective"]
