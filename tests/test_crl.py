"""Contrastive RL agent: config validation, goal layout, warm-up and updates, learning."""

import dataclasses
from typing import get_args

import jax
import numpy as np
import pytest

import envs
from experiments.presets import PRESETS
from purerl import Config, ConfigError, CRLConfig, EnvConfig, TrainConfig, Trainer, validate
from purerl.agents.crl.config import ContrastiveObjective, Energy
from purerl.agents.crl.loss import ENERGIES, ENERGY_NAMES, OBJECTIVE_NAMES, OBJECTIVES
from purerl.goals import goal_layout
from tests.compiling import OPTIMISED

SMALL = Config(
    EnvConfig("point_umaze", episode_length=20),
    TrainConfig(
        num_envs=8,
        unroll_length=10,
        total_env_steps=8 * 10 * 4,
        num_evals=2,
        num_eval_envs=4,
    ),
    CRLConfig(
        depth=4,
        width=16,
        representation_size=8,
        batch_size=16,
        updates_per_iteration=3,
        buffer_size=8 * 40,
        warmup_env_steps=8 * 10 * 2,
    ),
)


def with_agent(**fields) -> Config:
    return dataclasses.replace(SMALL, agent=dataclasses.replace(SMALL.agent, **fields))


def test_config_names_match_the_loss_registries():
    assert get_args(Energy) == ENERGY_NAMES == tuple(ENERGIES)
    assert get_args(ContrastiveObjective) == OBJECTIVE_NAMES == tuple(OBJECTIVES)
    assert ENERGIES["neg_l2"].__name__ == "neg_l2_energy"
    assert OBJECTIVES["binary_nce"].__name__ == "binary_nce"


@pytest.mark.parametrize(
    "config, field, fix",
    [
        (with_agent(depth=6), "agent.depth", "4 or 8"),
        (with_agent(depth=-5), "agent.depth", "e.g. 4"),
        (with_agent(warmup_env_steps=320), "agent.warmup_env_steps", "no gradient step"),
        (with_agent(actor_depth=10), "agent.actor_depth", "8 or 12"),
        (with_agent(buffer_size=8 * 40 + 3), "agent.buffer_size", "agent.buffer_size=328"),
        (with_agent(buffer_size=8 * 15), "agent.buffer_size", "agent.buffer_size=160"),
        (with_agent(batch_size=400), "agent.buffer_size", "smaller agent.batch_size"),
        (with_agent(future_goal_discount=1.0), "agent.future_goal_discount", "(0, 1)"),
        (with_agent(warmup_env_steps=10_000), "agent.warmup_env_steps", "warmup_env_steps=320"),
        (dataclasses.replace(SMALL, env=EnvConfig("cartpole")), "env.name", "point_umaze"),
        (
            dataclasses.replace(
                SMALL,
                train=dataclasses.replace(SMALL.train, unroll_length=5, unrolls_per_iteration=2),
            ),
            "train.unrolls_per_iteration",
            "train.unroll_length=10 and train.unrolls_per_iteration=1",
        ),
    ],
)
def test_bad_crl_configs_name_the_field_and_fix(config, field, fix):
    with pytest.raises(ConfigError) as error:
        validate(config)
    assert error.value.field == field
    assert fix in str(error.value)


def test_depth_and_width_set_all_networks_unless_overridden():
    config = CRLConfig(depth=16, width=32, actor_depth=8, goal_encoder_width=64)
    assert config.network_size("sa_encoder") == (32, 16)
    assert config.network_size("actor") == (32, 8)
    assert config.network_size("goal_encoder") == (64, 16)


def test_goal_layout_rejects_mismatched_indices():
    good = envs.EnvSpec(6, 2, goal_indices=(4, 5), achieved_goal_indices=(0, 1))
    state_size, achieved = goal_layout(good, "CRL")
    assert state_size == 4 and list(achieved) == [0, 1]
    for bad in (
        envs.EnvSpec(6, 2, goal_indices=(3, 4), achieved_goal_indices=(0, 1)),  # not last
        envs.EnvSpec(6, 2, goal_indices=(4, 5), achieved_goal_indices=(0,)),  # lengths differ
        envs.EnvSpec(6, 2, goal_indices=(4, 5), achieved_goal_indices=(3, 4)),  # 4 is the goal
        envs.EnvSpec(6, 2),  # not goal-conditioned
    ):
        with pytest.raises(ConfigError, match="goal|CRL"):
            goal_layout(bad, "CRL")


@pytest.fixture(scope="module")
def trainer():
    return Trainer(validate(SMALL))


@pytest.fixture(scope="module")
def iteration(trainer):
    return jax.jit(trainer.iteration)


def test_no_gradient_steps_before_warmup_then_learning(trainer, iteration):
    state = trainer.init(jax.random.PRNGKey(0))
    first, metrics = iteration(state)  # 80 env steps stored, warm-up is 160
    assert float(metrics["buffer/env_steps"]) == 80
    same = jax.tree.map(lambda a, b: bool((a == b).all()), state.agent.params, first.agent.params)
    assert all(jax.tree.leaves(same))
    assert float(metrics["critic/loss"]) == 0.0  # the placeholder of a skipped update
    second, metrics = iteration(first)
    changed = jax.tree.map(
        lambda a, b: bool((a != b).any()), first.agent.params, second.agent.params
    )
    assert all(jax.tree.leaves(changed))
    assert all(np.isfinite(float(v)) for v in metrics.values())
    # A uniform-ish initial critic: forward InfoNCE near log(batch).
    assert abs(float(metrics["critic/loss"]) - np.log(16)) < 1.5


def test_chunk_metrics_average_only_the_trained_iterations(trainer, iteration):
    """Warm-up iterations report zeros; a chunk's means must not be diluted by them."""
    state = trainer.init(jax.random.PRNGKey(3))
    _, chunk = jax.jit(trainer.run_iterations, static_argnums=1)(state, 2)
    first, _ = iteration(state)  # warm-up: no gradient steps
    _, second = iteration(first)
    assert float(chunk["train/trained_fraction"]) == 0.5
    for name in ("critic/loss", "alpha", "actor/entropy"):
        np.testing.assert_allclose(chunk[f"train/{name}"], second[name], rtol=1e-6)


def test_same_seed_same_numbers(trainer, iteration):
    def run(seed):
        state = trainer.init(jax.random.PRNGKey(seed))
        for _ in range(3):
            state, metrics = iteration(state)
        return metrics

    a, b, c = run(1), run(1), run(2)
    assert all(float(a[k]) == float(b[k]) for k in a)
    assert float(a["critic/loss"]) != float(c["critic/loss"])


def test_eval_goal_metrics_match_a_plain_python_rollout(trainer, iteration):
    """success_rate (reached at least once), time_at_goal (steps within the radius) and
    final_distance, recomputed one environment at a time with a Python loop."""
    state = trainer.init(jax.random.PRNGKey(0))
    state = state.replace(
        agent=jax.jit(trainer.iteration)(jax.jit(trainer.iteration)(state)[0])[0].agent
    )
    _, metrics = jax.jit(trainer.evaluate)(state)

    _, reset_key = jax.random.split(state.key)  # as evaluate draws its starts
    env, reached, at_goal, final = trainer.eval_env, [], [], []
    step = jax.jit(env.step)
    for key in jax.random.split(reset_key, SMALL.train.num_eval_envs):
        env_state, hits = env.reset(key), []
        while True:
            action, _ = trainer.agent.act(state.agent, env_state.obs[None], key, True)
            env_state = step(env_state, action[0])
            hits.append(float(env_state.metrics["success"]))
            if float(env_state.done):
                break
        reached.append(max(hits))
        at_goal.append(sum(hits))
        final.append(float(env_state.metrics["distance"]))
    np.testing.assert_allclose(metrics["eval/success_rate"], np.mean(reached), rtol=1e-6)
    np.testing.assert_allclose(metrics["eval/time_at_goal"], np.mean(at_goal), rtol=1e-6)
    np.testing.assert_allclose(metrics["eval/final_distance"], np.mean(final), rtol=1e-5)
    assert np.mean(at_goal) > 0  # some goal is reached: not a vacuous all-zero comparison


def test_single_goal_commands_one_goal(trainer):
    config = dataclasses.replace(SMALL, env=dataclasses.replace(SMALL.env, single_goal=True))
    single = Trainer(validate(config))
    state = single.init(jax.random.PRNGKey(0))
    goals = state.env.obs[:, -2:]
    assert np.allclose(goals, goals[0])
    free = trainer.init(jax.random.PRNGKey(0)).env.obs[:, -2:]
    assert not np.allclose(free, free[0])


def test_deep_networks_stack_blocks(trainer):
    config = with_agent(depth=8, actor_depth=12)
    params = Trainer(validate(config)).agent.init(jax.random.PRNGKey(0)).params
    kernel = params["actor"]["params"]["trunk"]["blocks"]["dense_0"]["kernel"]
    assert kernel.shape == (3, 16, 16)
    kernel = params["sa_encoder"]["params"]["blocks"]["dense_0"]["kernel"]
    assert kernel.shape == (2, 16, 16)


@pytest.mark.slow
def test_crl_learns_point_umaze():
    """A uniform-random policy reaches the goal in 21% of 100-step U-maze episodes and spends
    a few steps there; CRL gets to 89-94% and ~77 steps at goal within 128k env steps (seeds
    0-2, measured)."""
    config = PRESETS["crl-point-umaze"].config
    train = dataclasses.replace(config.train, total_env_steps=128_000, num_evals=4)
    trainer = Trainer(dataclasses.replace(config, train=train))
    _, metrics = jax.jit(trainer.train, compiler_options=OPTIMISED)(jax.random.PRNGKey(0))
    success = np.asarray(metrics["eval/success_rate"])
    assert success[-1] >= 0.75, success
    assert float(metrics["eval/time_at_goal"][-1]) >= 50.0, metrics["eval/time_at_goal"]
