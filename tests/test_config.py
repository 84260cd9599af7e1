import dataclasses
import json

import pytest

from purerl import (
    Config,
    ConfigError,
    CRLConfig,
    EnvConfig,
    PPOConfig,
    TrainConfig,
    build_agent,
    validate,
)
from purerl.config import from_dict, replace, to_dict


@pytest.mark.parametrize(
    "overrides,field,hint",
    [
        (dict(num_envs=0), "train.num_envs", "positive"),
        (dict(num_minibatches=7), "agent.num_minibatches", "agent.num_minibatches=8"),
        (dict(total_env_steps=1000), "train.total_env_steps", "train.total_env_steps=20480"),
        (dict(discount=1.5), "agent.discount", "[0.0, 1.0]"),
        (dict(name="nope"), "env.name", "cartpole"),
        (dict(backend="spring"), "env.backend", "jax"),
        (dict(policy_hidden_sizes=(64, 0)), "agent.policy_hidden_sizes", "positive"),
        (dict(entropy_coef=-1.0), "agent.entropy_coef", ">= 0"),
        (dict(max_grad_norm=0.0), "agent.max_grad_norm", "use None to turn clipping off"),
        (dict(adam_epsilon=0.0), "agent.adam_epsilon", "positive"),
        (dict(min_std=-0.1), "agent.min_std", "positive"),
        (dict(observation_clip=0.0), "agent.observation_clip", "use None for no clipping"),
        # 64 envs do not split into 5 minibatches of whole trajectories (2048 steps would).
        (
            dict(advantage_estimation="per_minibatch", num_minibatches=5),
            "agent.num_minibatches",
            "agent.num_minibatches=4",
        ),
        (dict(unrolls_per_iteration=0), "train.unrolls_per_iteration", "positive"),
        (dict(fresh_starts="per_episode"), "env.fresh_starts", "auto, per_unroll, per_step"),
        (dict(substeps="fused"), "env.substeps", "auto, scan, unrolled"),
        # 64 envs x 3 unrolls = 192 trajectories: 7 does not divide them; 6 does (not 64).
        (
            dict(unrolls_per_iteration=3, advantage_estimation="per_minibatch", num_minibatches=7),
            "agent.num_minibatches",
            "agent.num_minibatches=6",
        ),
        (dict(num_minibatches=0), "agent.num_minibatches", "positive"),
        # Exactly one of the two ways to size minibatches; the message names both.
        (
            dict(num_minibatches=4, minibatch_size=512),
            "agent.minibatch_size",
            "agent.num_minibatches=4 and agent.minibatch_size=512 are both set; set only one",
        ),
        (dict(minibatch_size=0), "agent.minibatch_size", "positive"),
        # 2048 steps: 500 does not divide them; 512 is the nearest divisor.
        (dict(minibatch_size=500), "agent.minibatch_size", "agent.minibatch_size=512"),
        # per_minibatch takes whole trajectories of 32 steps: 16 divides 2048 but is half of
        # one; 160 is five, which do not divide the 64 trajectories, four (128 steps) do.
        (
            dict(advantage_estimation="per_minibatch", minibatch_size=16),
            "agent.minibatch_size",
            "agent.minibatch_size=32",
        ),
        (
            dict(advantage_estimation="per_minibatch", minibatch_size=160),
            "agent.minibatch_size",
            "agent.minibatch_size=128",
        ),
        (
            dict(unrolls_per_iteration=2, total_env_steps=10 * 4096 - 1),
            "train.total_env_steps",
            "train.total_env_steps=40960",
        ),
    ],
)
def test_invalid_configs_name_field_and_fix(overrides, field, hint):
    config = replace(
        Config(train=TrainConfig(num_envs=64, unroll_length=32, num_evals=10)), **overrides
    )
    with pytest.raises(ConfigError) as error:
        validate(config)
    assert error.value.field == field
    assert hint in str(error.value)


@pytest.mark.parametrize("first_state", [False, True])
def test_fresh_starts_auto_builds_per_step_starts_on_accelerators_only(first_state):
    """ "auto" spends resets where they are cheap and conditionals costly (accelerators); with
    reset_to_first_state no fresh starts are built at all."""
    from purerl.config import EnvConfig, fresh_starts_per_step

    for mode, cpu, gpu in [("auto", False, True), ("per_unroll", False, False),
                           ("per_step", True, True)]:  # fmt: skip
        env = EnvConfig(fresh_starts=mode, reset_to_first_state=first_state)
        want = (False, False) if first_state else (cpu, gpu)
        assert (fresh_starts_per_step(env, "cpu"), fresh_starts_per_step(env, "gpu")) == want


def test_substeps_auto_unrolls_on_accelerators_only():
    from purerl.config import EnvConfig, unrolled_substeps

    for mode, want in [("auto", (False, True)), ("scan", (False, False)),
                       ("unrolled", (True, True))]:  # fmt: skip
        env = EnvConfig(substeps=mode)
        assert (unrolled_substeps(env, "cpu"), unrolled_substeps(env, "gpu")) == want


def test_trainer_steps_brax_substeps_as_configured():
    """The Trainer hands env.substeps to envs.make: unrolled replaces brax's pipeline_step on
    its environment's instance, scan leaves brax's own."""
    from purerl import Config, EnvConfig, TrainConfig, Trainer

    def pipeline_step_of(substeps):
        config = Config(
            EnvConfig("inverted_pendulum", backend="spring", substeps=substeps),
            TrainConfig(num_envs=2, unroll_length=2, total_env_steps=4, num_evals=1),
        )
        return "pipeline_step" in vars(Trainer(config).eval_env.env)

    assert pipeline_step_of("unrolled") and not pipeline_step_of("scan")


def test_valid_config_and_iteration_arithmetic():
    config = Config(
        EnvConfig("cartpole"),
        TrainConfig(num_envs=8, unroll_length=4, total_env_steps=1000, num_evals=3),
        PPOConfig(num_minibatches=2),
    )
    assert validate(config) is config
    assert config.train.steps_per_iteration == 32
    assert config.train.iterations_per_eval == 10  # 1000 // (32 * 3)
    assert config.train.num_iterations == 30


@pytest.mark.parametrize(
    "estimation,ppo,expected",
    [
        # 64 envs x 32 steps x 2 unrolls = 4096 transitions in 128 trajectories of 32.
        ("per_batch", dict(), 4),  # neither set: DEFAULT_NUM_MINIBATCHES
        ("per_batch", dict(num_minibatches=8), 8),
        ("per_batch", dict(minibatch_size=256), 16),  # 4096 / 256
        ("per_batch", dict(minibatch_size=16), 256),  # less than one trajectory is fine here
        ("per_minibatch", dict(num_minibatches=8), 8),
        ("per_minibatch", dict(minibatch_size=256), 16),  # 8 trajectories each: 128 / 8
        ("per_minibatch", dict(minibatch_size=4096), 1),
    ],
)
def test_minibatch_count_from_count_or_size(estimation, ppo, expected):
    config = Config(
        EnvConfig("cartpole"),
        TrainConfig(num_envs=64, unroll_length=32, unrolls_per_iteration=2, num_evals=1),
        PPOConfig(advantage_estimation=estimation, **ppo),
    )
    assert validate(config) is config
    assert config.agent.minibatches(config.train) == expected
    # The agent splits its batch that many ways (the minibatch size per_minibatch sees is
    # in transitions too: 16 minibatches of 8 whole trajectories).
    from purerl import Trainer

    assert Trainer(config).agent.num_minibatches == expected


def test_minibatch_size_keeps_size_and_grows_the_count_with_num_envs():
    agent = PPOConfig(minibatch_size=1024)
    counts = [
        agent.minibatches(TrainConfig(num_envs=n, unroll_length=16)) for n in (256, 1024, 16384)
    ]
    assert counts == [4, 16, 256]
    fixed = PPOConfig(num_minibatches=4)
    assert {fixed.minibatches(TrainConfig(num_envs=n)) for n in (256, 1024, 16384)} == {4}


def test_config_saved_with_num_minibatches_loads_unchanged():
    """config.json files written before minibatch_size existed hold num_minibatches: 4 (then
    the default) and no minibatch_size; they load to a config with the same 4 minibatches."""
    data = json.loads(json.dumps(to_dict(Config())))
    data["agent"]["num_minibatches"] = 4
    del data["agent"]["minibatch_size"]
    config = from_dict(data)
    assert validate(config) is config
    assert (config.agent.num_minibatches, config.agent.minibatch_size) == (4, None)
    assert config.agent.minibatches(config.train) == 4
    assert to_dict(Config())["agent"]["num_minibatches"] is None  # new files: the default


def test_replace_unknown_field():
    with pytest.raises(ConfigError, match="no such config field"):
        replace(Config(), bogus=1)


def test_every_preset_validates():
    from experiments.presets import DEFAULT_PRESET, PAPER_SUITE, PRESETS, crl_preset_name

    assert DEFAULT_PRESET in PRESETS
    for name, preset in PRESETS.items():
        assert validate(preset.config) is preset.config, name
    gpu = {name for name, preset in PRESETS.items() if preset.gpu_sized}
    assert gpu == {
        "ppo-hopper",
        "ppo-ant",
        "ppo-humanoid",
        "crl-ant",
        "crl-humanoid",
        "sac-her-ant",
        "ppo-cartpole-million",
        "crl-point-umaze-million",
    } | {crl_preset_name(env) for env, _, _ in PAPER_SUITE}
    assert "crl-ant-hardestmaze" in gpu and "crl-point-hardestmaze" in PRESETS
    assert "crl-arm-binpick-hard" in gpu and "crl-arm-reach" in gpu


def test_crl_presets_fit_their_environments():
    """Building the trainer checks the environment's declared goal indices against the agent."""
    from experiments.presets import PRESETS
    from purerl import Trainer
    from purerl.agents.crl.agent import CRLAgent

    for name, preset in PRESETS.items():
        if name.startswith("crl-"):
            assert isinstance(Trainer(preset.config).agent, CRLAgent), name


@pytest.mark.parametrize("agent", [PPOConfig(num_epochs=2), CRLConfig(depth=8)])
def test_config_dict_round_trip_keeps_the_agent_type(agent):
    config = Config(env=EnvConfig("point_umaze"), agent=agent)
    data = to_dict(config)
    assert from_dict(json.loads(json.dumps(data))) == config


def test_no_silent_fallback_to_ppo():
    """An unknown or missing agent type is an error everywhere, never PPO by default."""
    data = to_dict(Config())
    del data["agent_type"]
    with pytest.raises(ConfigError, match="names no agent") as error:
        from_dict(data)
    assert error.value.field == "agent_type"

    @dataclasses.dataclass(frozen=True)
    class OtherConfig:
        learning_rate: float = 1e-3

    config = Config(agent=OtherConfig())
    for check in (validate, to_dict, lambda c: build_agent(c, None)):
        with pytest.raises(ConfigError) as error:
            check(config)
        assert error.value.field == "agent"


def test_configs_saved_before_a_field_moved_keep_their_value():
    """Observation normalisation moved from `train` to PPO's config; a run saved before keeps
    the value it was trained with when it is resumed."""
    data = to_dict(Config())
    data["train"]["normalize_observations"] = False
    data["train"]["observation_clip"] = None
    del data["agent"]["normalize_observations"], data["agent"]["observation_clip"]
    config = from_dict(json.loads(json.dumps(data)))
    assert config.agent.normalize_observations is False
    assert config.agent.observation_clip is None
    data["agent"]["normalize_observations"] = True  # its own section wins
    assert from_dict(data).agent.normalize_observations is True
