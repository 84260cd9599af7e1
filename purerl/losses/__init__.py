"""Loss pieces shared by several agents: pure functions of arrays.

A loss that belongs to one algorithm lives in that agent's folder (purerl/agents/<name>/loss.py).
"""

from purerl.losses.max_entropy import actor_loss, alpha_loss, default_target_entropy

__all__ = ["actor_loss", "alpha_loss", "default_target_entropy"]
