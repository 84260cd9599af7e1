"""PPO learns each cheap task with its preset; an untrained policy cannot pass the bar."""

import jax
import pytest

from experiments.presets import PRESETS
from purerl import Trainer
from purerl.config import replace
from tests.compiling import OPTIMISED

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
    _, metrics = jax.jit(trainer.train, compiler_options=OPTIMISED)(key)
    returns = [float(r) for r in metrics["eval/episode_return"]]
    assert returns[-1] >= threshold, f"{preset}: final eval return < {threshold}: {returns}"


# Brax's algorithm and parameterisation at Brax's published settings (2048 envs x 16 unrolls
# of 5, 32 minibatches, reward scaling 10): (preset, env steps, untrained below, bar), seed 0.
BRAX_SETTINGS = [
    # Positional inverted_pendulum, 5 updates. On seeds 0-4 Brax's own trainer was at 938 on
    # average by this point and purerl at 1000 on every seed, from an untrained 61-83; at
    # 491,520 steps (3 updates) both were still at 179-1000 (docs/PPO_PARITY.md), so a policy
    # that learns slower or stagnates stays below the bar.
    ("ppo-inverted-pendulum-brax-published", 819_200, 200.0, 900.0),
    # Spring inverted_double_pendulum, 6 updates, a harder task: Brax's trainer and purerl
    # both went from ~300-480 to 877-1146 by this point on seeds 0-2; an untrained policy
    # scores ~300-480 and one that stagnates stays there.
    ("ppo-inverted-double-pendulum-brax", 983_040, 600.0, 750.0),
]


@pytest.mark.slow
@pytest.mark.parametrize("preset,env_steps,untrained_below,threshold", BRAX_SETTINGS)
def test_brax_algorithm_at_brax_published_settings_learns(
    preset, env_steps, untrained_below, threshold
):
    config = replace(PRESETS[preset].config, total_env_steps=env_steps, num_evals=1)
    trainer = Trainer(config)
    key = jax.random.PRNGKey(0)
    _, untrained = jax.jit(trainer.evaluate)(trainer.init(key))
    assert float(untrained["eval/episode_return"]) < untrained_below
    _, metrics = jax.jit(trainer.train, compiler_options=OPTIMISED)(key)
    final = float(metrics["eval/episode_return"][-1])
    assert final >= threshold, f"{preset}: final eval return {final} < {threshold}"
