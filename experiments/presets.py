"""Named configurations. CPU-sized presets finish in minutes on a laptop; the GPU-sized ones
(marked) are real settings meant for an accelerator and are not run in CI."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from purerl import Config, CRLConfig, EnvConfig, PPOConfig, SACConfig, TrainConfig


@dataclass(frozen=True)
class Preset:
    description: str
    config: Config
    gpu_sized: bool = False


# Brax's PPO: its published settings for the locomotion tasks, its default networks, and its
# parameterisation (state-dependent softplus scale, lecun-uniform init, no gradient clipping,
# Adam epsilon 1e-8, advantages re-estimated per minibatch of whole trajectories in Brax's
# one-step form, ratio clipping 0.3, normalised observations unclipped). Time limits still
# bootstrap and episodes start from fresh resets, purerl's defaults; for an exact comparison
# the parity benchmark masks time limits as Brax does (env.reset_to_first_state gives Brax's
# resets too; on hopper it measured no difference, docs/PPO_PARITY.md).
BRAX_PPO = PPOConfig(
    num_minibatches=32,
    discount=0.97,
    learning_rate=3e-4,
    entropy_coef=1e-2,
    clip_epsilon=0.3,
    policy_hidden_sizes=(32, 32, 32, 32),
    value_hidden_sizes=(256,) * 5,
    activation="swish",
    policy_scale="softplus",
    kernel_init="lecun_uniform",
    max_grad_norm=None,
    adam_epsilon=1e-8,
    advantage_estimation="per_minibatch",
    advantage="one_step_lambda_return",
    observation_clip=None,
)


def brax_published(
    env: str, num_envs: int, total_env_steps: int, backend: str = "spring", **train
) -> Config:
    """Brax's published settings for ant, inverted_pendulum and inverted_double_pendulum: 16
    unrolls of 5 per update (batch_size num_envs / 2 x 32 minibatches), Brax's algorithm with
    reward scaling 10."""
    return Config(
        EnvConfig(env, backend=backend, episode_length=1000),
        TrainConfig(
            num_envs=num_envs,
            unroll_length=5,
            unrolls_per_iteration=16,
            total_env_steps=total_env_steps,
            **train,
        ),
        dataclasses.replace(BRAX_PPO, reward_scale=10.0),
    )


# The paper's settings for its Brax tasks ("1000 Layer Networks for Self-Supervised RL"):
# 512 envs x unroll 62 = 31,744 env steps per collect and ~800 gradient steps ("UTD 1:40"),
# batch 512, a buffer of 10,000 steps per env; depth 64 is where its largest gains appear.
PAPER_CRL = CRLConfig(
    depth=64,
    width=256,
    batch_size=512,
    updates_per_iteration=800,
    buffer_size=10_000 * 512,
    warmup_env_steps=1_000 * 512,
)
PAPER_CRL_TRAIN = TrainConfig(
    num_envs=512,
    unroll_length=62,
    total_env_steps=100_000_000,
    num_evals=50,
    num_eval_envs=128,
)
# CPU-sized contrastive RL on the point-mass U-maze: learns in a minute or two on a laptop.
POINT_CRL = CRLConfig(
    depth=4,
    width=128,
    batch_size=256,
    updates_per_iteration=40,
    buffer_size=64 * 1_000,
    warmup_env_steps=6_400,
)
POINT_CRL_TRAIN = TrainConfig(
    num_envs=64,
    unroll_length=25,
    total_env_steps=200_000,
    num_evals=10,
    num_eval_envs=64,
)

# SAC+HER, the papers' baseline, at CRL's geometry: the same replay buffer, batch, gradient
# steps per collect and residual trunks (depth 4), so the two can be compared like for like.
PAPER_SAC = SACConfig(
    depth=4,
    width=256,
    batch_size=PAPER_CRL.batch_size,
    updates_per_iteration=PAPER_CRL.updates_per_iteration,
    buffer_size=PAPER_CRL.buffer_size,
    warmup_env_steps=PAPER_CRL.warmup_env_steps,
)
POINT_SAC = SACConfig(
    depth=POINT_CRL.depth,
    width=POINT_CRL.width,
    batch_size=POINT_CRL.batch_size,
    updates_per_iteration=POINT_CRL.updates_per_iteration,
    buffer_size=POINT_CRL.buffer_size,
    warmup_env_steps=POINT_CRL.warmup_env_steps,
)

# brax inverted_pendulum on a CPU: purerl's preset and Brax's settings share the geometry.
PENDULUM_ENV = EnvConfig("inverted_pendulum", backend="spring", episode_length=1000)
PENDULUM_TRAIN = TrainConfig(
    num_envs=1024, unroll_length=10, total_env_steps=1_000_000, num_evals=10, num_eval_envs=16
)

PRESETS: dict[str, Preset] = {
    "ppo-cartpole": Preset(
        "PPO on purerl's pure-JAX cart-pole (discrete actions); reaches 500 in about 1M steps.",
        Config(
            EnvConfig("cartpole", episode_length=500),
            TrainConfig(num_envs=64, unroll_length=32, total_env_steps=1_000_000, num_evals=10),
            # Value clipping, as PureJaxRL and CleanRL use on cart-pole: without it 2 of 4
            # seeds fell from 500 to 100-220; with it 8 of 8 stay at 500 (docs/PPO_PARITY.md).
            PPOConfig(anneal_learning_rate=True, clip_value_loss=True),
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
            PENDULUM_ENV,
            PENDULUM_TRAIN,
            PPOConfig(num_minibatches=32, discount=0.97),
        ),
    ),
    "ppo-inverted-pendulum-brax": Preset(
        "Brax's PPO (its algorithm and parameterisation) with its hyperparameters for brax "
        "inverted_pendulum (spring; reward scaling 10), at the geometry of the parity "
        "benchmark (1024 envs x unroll 10, 8 minibatches). Learns on some seeds only within "
        "1M steps, as Brax's own trainer does here (docs/PPO_PARITY.md).",
        Config(
            PENDULUM_ENV,
            PENDULUM_TRAIN,
            dataclasses.replace(BRAX_PPO, num_minibatches=8, reward_scale=10.0),
        ),
    ),
    "ppo-inverted-pendulum-brax-published": Preset(
        "Brax's PPO with its published inverted_pendulum settings on the positional backend: "
        "2048 envs, 16 unrolls of 5 per update (batch_size 1024 x 32 minibatches), reward "
        "scaling 10, 2M steps. Brax's own trainer and purerl both reach 1000 within about 1M "
        "steps there; on spring neither learns at these settings (docs/PPO_PARITY.md).",
        brax_published(
            "inverted_pendulum",
            2048,
            1_966_080,
            backend="positional",
            num_evals=12,
            num_eval_envs=16,
        ),
    ),
    "ppo-inverted-double-pendulum-brax": Preset(
        "Brax's PPO with its published inverted_double_pendulum settings (spring): 2048 envs, "
        "16 unrolls of 5 per update (batch_size 1024 x 32 minibatches), reward scaling 10, "
        "on a CPU budget of 2M steps (Brax publishes 20M); return ~400 -> ~1000 by then, as "
        "Brax's own trainer (docs/PPO_PARITY.md).",
        brax_published("inverted_double_pendulum", 2048, 1_966_080, num_evals=6, num_eval_envs=16),
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
        "GPU-sized: Brax's PPO with its published ant settings (spring backend), 50M steps: "
        "4096 envs, 16 unrolls of 5 per update (Brax's batch_size 2048 x 32 minibatches).",
        brax_published("ant", 4096, 50_000_000, num_evals=10, num_eval_envs=128),
        gpu_sized=True,
    ),
    "ppo-humanoid": Preset(
        "GPU-sized: Brax's PPO with its published humanoid settings (generalized backend), "
        "50M steps: 2048 envs, 16 unrolls of 10 per update (batch_size 1024 x 32 "
        "minibatches), 8 epochs, reward scaling 0.1.",
        Config(
            EnvConfig("humanoid", episode_length=1000),
            TrainConfig(
                num_envs=2048,
                unroll_length=10,
                unrolls_per_iteration=16,
                total_env_steps=50_000_000,
                num_evals=10,
                num_eval_envs=128,
            ),
            dataclasses.replace(BRAX_PPO, entropy_coef=1e-3, num_epochs=8, reward_scale=0.1),
        ),
        gpu_sized=True,
    ),
    "crl-point-umaze": Preset(
        "Contrastive RL on purerl's pure-JAX point-mass U-maze (random goals); CPU, minutes.",
        Config(EnvConfig("point_umaze", episode_length=100), POINT_CRL_TRAIN, POINT_CRL),
    ),
    "crl-point-umaze-single-goal": Preset(
        "Contrastive RL collecting with one fixed goal (the far end of the U), relabelling with "
        "future states; evaluated on that goal. CPU, minutes.",
        Config(
            EnvConfig("point_umaze", episode_length=100, single_goal=True),
            POINT_CRL_TRAIN,
            POINT_CRL,
        ),
    ),
    "sac-her-point-umaze": Preset(
        "Goal-conditioned SAC with hindsight relabelling on the point-mass U-maze, at "
        "crl-point-umaze's settings; CPU, minutes.",
        Config(EnvConfig("point_umaze", episode_length=100), POINT_CRL_TRAIN, POINT_SAC),
    ),
    "sac-her-ant": Preset(
        "GPU-sized: goal-conditioned SAC+HER on ant goal reaching, at crl-ant's geometry.",
        Config(
            EnvConfig("ant_goal", backend="spring", episode_length=1000), PAPER_CRL_TRAIN, PAPER_SAC
        ),
        gpu_sized=True,
    ),
    "crl-ant": Preset(
        "GPU-sized: contrastive RL, depth 64, on ant goal reaching (goal on a 10 m circle).",
        Config(
            EnvConfig("ant_goal", backend="spring", episode_length=1000), PAPER_CRL_TRAIN, PAPER_CRL
        ),
        gpu_sized=True,
    ),
    "crl-humanoid": Preset(
        "GPU-sized: contrastive RL, depth 64, on humanoid goal reaching.",
        Config(EnvConfig("humanoid_goal", episode_length=1000), PAPER_CRL_TRAIN, PAPER_CRL),
        gpu_sized=True,
    ),
}


def crl_preset_name(env_name: str) -> str:
    """The CRL preset of a suite environment: crl-ENV with hyphens (ant_u4maze: crl-ant-u4maze)."""
    return "crl-" + env_name.replace("_", "-")


# The depth-scaling paper's goal-reaching suite (its section 2 environments) at its settings:
# CRL at depth 64, width 256, 512 envs x unroll 62, 800 gradient steps of batch 512 per collect,
# 100M env steps; `--depth 4` gives its baseline. GPU-sized. (environment, backend, episode
# length) as JaxGCRL runs them: spring for the ant and humanoid mazes (brax's generalized
# pipeline is also ~20x slower on the humanoid mazes' hundreds of wall contacts).
PAPER_SUITE = (
    ("ant_umaze", "spring", 1000),
    ("ant_u4maze", "spring", 1000),
    ("ant_u5maze", "spring", 1000),
    ("ant_bigmaze", "spring", 1000),
    ("ant_hardestmaze", "spring", 1000),
    ("humanoid_umaze", "spring", 1000),
    ("humanoid_bigmaze", "spring", 1000),
    ("ant_ball", "spring", 1000),
    ("ant_push", "mjx", 1000),  # JaxGCRL: "stable only in mjx"
    # JaxGCRL's basic tasks, on its default backend for them.
    ("reacher_goal", "generalized", 1000),
    ("pusher_easy", "generalized", 1000),
    ("pusher_hard", "generalized", 1000),
    ("half_cheetah_goal", "generalized", 1000),
    # The arm tasks run only on mjx (envs/arm.py); JaxGCRL's shorter 100/150-step episodes
    # are `--episode-length` away.
    ("arm_reach", "mjx", 1000),
    ("arm_push_easy", "mjx", 1000),
    ("arm_push_hard", "mjx", 1000),
    ("arm_binpick_easy", "mjx", 1000),
    ("arm_binpick_hard", "mjx", 1000),
)
for _env, _backend, _length in PAPER_SUITE:
    PRESETS[crl_preset_name(_env)] = Preset(
        f"GPU-sized: contrastive RL, depth 64, on {_env} at the depth-scaling paper's settings "
        f"({_backend} backend, {_length}-step episodes, 100M env steps).",
        Config(
            EnvConfig(_env, backend=_backend, episode_length=_length), PAPER_CRL_TRAIN, PAPER_CRL
        ),
        gpu_sized=True,
    )

# CPU-sized: the point-mass mazes (the paper's layouts, 1 m cells, 200-step episodes) at the
# settings of the depth sweep (experiments/sweeps/depth.toml runs crl-point-hardestmaze):
# 256 envs x unroll 25, 20 gradient steps of batch 256 per collect, depth 4, width 64,
# 1.536M env steps, about 5 minutes at depth 4 on a 2-core CPU. crl-point-umaze (above) keeps
# its smaller, older settings.
POINT_MAZE_TRAIN = TrainConfig(
    num_envs=256, unroll_length=25, total_env_steps=1_536_000, num_evals=8, num_eval_envs=256
)
POINT_MAZE_CRL = dataclasses.replace(
    POINT_CRL,
    width=64,
    updates_per_iteration=20,
    buffer_size=256 * 2_000,
    warmup_env_steps=256 * 100,
)
for _env in (
    "point_maze_open",
    "point_u4maze",
    "point_u5maze",
    "point_bigmaze",
    "point_hardestmaze",
):
    PRESETS[crl_preset_name(_env)] = Preset(
        f"Contrastive RL on the point-mass {_env.removeprefix('point_')} (200-step episodes), "
        "256 envs x unroll 25, 20 gradient steps of batch 256 per collect, width 64; CPU, "
        "about 5 minutes at depth 4.",
        Config(EnvConfig(_env, episode_length=200), POINT_MAZE_TRAIN, POINT_MAZE_CRL),
    )

# A million environments of a cheap pure-JAX task (docs/SCALING.md): one iteration is 2^20 x 8 =
# 8.4M env steps. The minibatch count is set explicitly so that a minibatch (262,144
# transitions) stays a small fraction of the batch: SGD activations then cost less than the
# trajectory itself (peak RSS 2.9 GB at 2^20 on a CPU, docs/SCALING.md).
MILLION = 2**20
PRESETS["ppo-cartpole-million"] = Preset(
    "GPU-sized: PPO on cart-pole with 2^20 = 1,048,576 environments x unroll 8 (8.4M env steps "
    "per iteration, 32 minibatches of 262,144), 40 iterations; about 3 GB of memory.",
    Config(
        EnvConfig("cartpole", episode_length=500),
        TrainConfig(
            num_envs=MILLION,
            unroll_length=8,
            total_env_steps=MILLION * 8 * 40,
            num_evals=10,
            num_eval_envs=128,
        ),
        PPOConfig(num_minibatches=32, learning_rate=1e-3, anneal_learning_rate=True),
    ),
    gpu_sized=True,
)
# CRL's collection path at 2^20 environments: the replay buffer keeps one column per
# environment, so its capacity per column is one episode (50 steps: 28 bytes a step for the
# U-maze's 4-float observation and 2-float action, 1.4 KB per environment, 1.5 GB in all).
PRESETS["crl-point-umaze-million"] = Preset(
    "GPU-sized: contrastive RL's collection path with 2^20 point-mass U-maze environments x "
    "unroll 10 (episodes of 50 steps; a replay buffer of 50 steps per environment), 256 "
    "gradient steps of batch 1024 per collect.",
    Config(
        EnvConfig("point_umaze", episode_length=50),
        TrainConfig(
            num_envs=MILLION,
            unroll_length=10,
            total_env_steps=MILLION * 10 * 20,
            num_evals=5,
            num_eval_envs=128,
        ),
        dataclasses.replace(
            POINT_CRL,
            batch_size=1024,
            updates_per_iteration=256,
            buffer_size=MILLION * 50,
            warmup_env_steps=MILLION * 20,
        ),
    ),
    gpu_sized=True,
)

DEFAULT_PRESET = "ppo-inverted-pendulum"
