"""PPO learns each cheap task with its preset; an untrained policy cannot pass the bar."""

import jax
import pytest

from experiments.presets import PRESETS
from purerl import Trainer

# (preset, threshold on the final deterministic eval return)
CASES = [
    ("ppo-cartpole", 450.0),  # max 500; an untrained policy falls within ~10-60 steps
    ("ppo-point-reach", -10.0),  # an untrained policy stays put: about -40
    ("ppo-inverted-pendulum", 900.0),  # max 1000, within 1M env steps
]


@pytest.mark.slow
@pytest.mark.parametrize("preset,threshold", CASES)
def test_ppo_solves(preset, threshold):
    config = PRESETS[preset].config
    assert config.train.num_iterations * config.train.steps_per_iteration <= 1_000_000
    trainer = Trainer(config)
    key = jax.random.PRNGKey(config.train.seed)
    _, untrained = jax.jit(trainer.evaluate)(trainer.init(key))
    assert float(untrained["eval/episode_return"]) < threshold
    _, metrics = jax.jit(trainer.train)(key)
    final = float(metrics["eval/episode_return"][-1])
    assert final >= threshold, f"{preset}: final eval return {final} < {threshold}"
