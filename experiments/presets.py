"""Named configurations. CPU-sized presets finish in minutes on a laptop; the GPU-sized ones
(marked) are real settings meant for an accelerator and are not run in CI."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from purerl import Config, EnvConfig, PPOConfig, TrainConfig


@dataclass(frozen=True)
class Preset:
    description: str
    config: Config
    gpu_sized: bool = False


# Brax's published PPO settings for its locomotion tasks (network sizes are Brax's defaults).
BRAX_PPO = PPOConfig(
    num_minibatches=32,
    discount=0.97,
    learning_rate=3e-4,
    entropy_coef=1e-2,
    policy_hidden_sizes=(32, 32, 32, 32),
    value_hidden_sizes=(256,) * 5,
    activation="swish",
)

PRESETS: dict[str, Preset] = {
    "ppo-cartpole": Preset(
        "PPO on purerl's pure-JAX cart-pole (discrete actions); reaches 500 in about 1M steps.",
        Config(
            EnvConfig("cartpole", episode_length=500),
            TrainConfig(num_envs=64, unroll_length=32, total_env_steps=1_000_000, num_evals=10),
            PPOConfig(anneal_learning_rate=True),
        ),
    ),
    "ppo-point-reach": Preset(
        "PPO on purerl's pure-JAX 2-D point reaching a random goal (continuous actions).",
        Config(
            EnvConfig("point_reach", episode_length=50),
            TrainConfig(num_envs=64, unroll_length=32, total_env_steps=500_000, num_evals=10),
            PPOConfig(anneal_learning_rate=True),
        ),
    ),
    "ppo-inverted-pendulum": Preset(
        "PPO on brax inverted_pendulum (spring backend); eval return near 1000 within 1M steps.",
        Config(
            EnvConfig("inverted_pendulum", backend="spring", episode_length=1000),
            TrainConfig(
                num_envs=1024,
                unroll_length=10,
                total_env_steps=1_000_000,
                num_evals=10,
                num_eval_envs=16,
            ),
            PPOConfig(num_minibatches=32, discount=0.97),
        ),
    ),
    "ppo-hopper": Preset(
        "GPU-sized: PPO on brax hopper (generalized backend), 50M steps.",
        Config(
            EnvConfig("hopper", episode_length=1000),
            TrainConfig(
                num_envs=2048,
                unroll_length=32,
                total_env_steps=50_000_000,
                num_evals=20,
                num_eval_envs=128,
            ),
            BRAX_PPO,
        ),
        gpu_sized=True,
    ),
    "ppo-ant": Preset(
        "GPU-sized: PPO on brax ant (spring backend), 50M steps.",
        Config(
            EnvConfig("ant", backend="spring", episode_length=1000),
            TrainConfig(
                num_envs=4096,
                unroll_length=20,
                total_env_steps=50_000_000,
                num_evals=20,
                num_eval_envs=128,
            ),
            BRAX_PPO,
        ),
        gpu_sized=True,
    ),
    "ppo-humanoid": Preset(
        "GPU-sized: PPO on brax humanoid (generalized backend), 100M steps.",
        Config(
            EnvConfig("humanoid", episode_length=1000),
            TrainConfig(
                num_envs=4096,
                unroll_length=20,
                total_env_steps=100_000_000,
                num_evals=20,
                num_eval_envs=128,
            ),
            dataclasses.replace(BRAX_PPO, entropy_coef=1e-3),
        ),
        gpu_sized=True,
    ),
}

DEFAULT_PRESET = "ppo-inverted-pendulum"
