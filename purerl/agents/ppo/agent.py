"""PPO agent: advantage estimation, then epochs x minibatches of SGD on the clipped PPO loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct

from envs import EnvSpec
from purerl.agents.ppo.config import PPOConfig
from purerl.agents.ppo.loss import (
    PPOBatch,
    PPOTrajectoryBatch,
    make_ppo_loss,
    make_ppo_trajectory_loss,
)
from purerl.config import TrainConfig
from purerl.gae import (
    NextObservations,
    compute_gae,
    in_passes,
    num_truncation_slots,
    one_step_lambda_advantages,
    values_and_next_values,
)
from purerl.networks import Body, CategoricalPolicy, GaussianPolicy, ValueNetwork
from purerl.normalize import RunningStatistics, init_statistics, normalize, update_statistics
from purerl.optim import raveled
from purerl.types import (
    Metrics,
    Transition,
    columns_to_unrolls,
    scan_metrics,
    unrolls_to_columns,
)


@struct.dataclass
class RewardNormalizer:
    """Running scale of rewards: each environment's discounted return so far, and the running
    statistics of all such returns seen (rewards are divided by their standard deviation)."""

    discounted_return: jax.Array  # (num_envs,)
    statistics: RunningStatistics  # over returns, size 1


@struct.dataclass
class PPOState:
    params: dict  # {"policy": ..., "value": ...}
    optimizer_state: optax.OptState
    normalizer: RunningStatistics
    reward_normalizer: RewardNormalizer | None  # None unless config.normalize_rewards


@struct.dataclass
class PolicySample:
    """What `act` keeps for learning: the raw (pre-squash) action and its log-probability."""

    raw_action: jax.Array
    log_prob: jax.Array


def normalize_rewards(
    normalizer: RewardNormalizer,
    rewards: jax.Array,
    dones: jax.Array,
    discount: float,
    num_unrolls: int = 1,
) -> tuple[RewardNormalizer, jax.Array]:
    """Scales (T, N * U) rewards by the running std of discounted returns, step by step.

    The columns are U consecutive unrolls of N environments (`unrolls_to_columns`); each
    environment's return runs through its unrolls in order. At each of its U * T steps every
    environment's return becomes discount * return + reward; the statistics absorb the N
    returns, and the reward is divided by the updated std (eps 1e-8). A return restarts after
    a step that ended its episode (done = 1), for either reason.
    """
    steps = rewards.shape[0]

    def streams(x):  # (T, N * U) -> (U * T, N): each environment's steps in order
        return columns_to_unrolls(x, num_unrolls).reshape(num_unrolls * steps, -1)

    def step(carry, reward_and_done):
        discounted_return, statistics = carry
        reward, done = reward_and_done
        discounted_return = discount * discounted_return + reward
        statistics = update_statistics(statistics, discounted_return[:, None])
        scaled = reward / jnp.sqrt(statistics.variance[0] + 1e-8)
        return (discounted_return * (1.0 - done), statistics), scaled

    carry = (normalizer.discounted_return, normalizer.statistics)
    # Unrolled (up to 16 steps a trip): a loop costs its body's launches per trip on a GPU.
    (discounted_return, statistics), scaled = jax.lax.scan(
        step, carry, (streams(rewards), streams(dones)), unroll=16
    )
    scaled = unrolls_to_columns(scaled.reshape(num_unrolls, steps, -1))
    return RewardNormalizer(discounted_return, statistics), scaled


def batch_axes(batch: PPOBatch | PPOTrajectoryBatch) -> tuple[int, PPOBatch | PPOTrajectoryBatch]:
    """(how many units a minibatch is drawn from, the axis of every leaf that holds them):
    transitions for a flat PPOBatch, environments (whole trajectories, `env_axes`) for a
    PPOTrajectoryBatch."""
    if isinstance(batch, PPOTrajectoryBatch):
        return batch.obs.shape[1], batch.env_axes()
    return batch.obs.shape[0], jax.tree.map(lambda _: 0, batch)


def minibatch_indices(
    batch: PPOBatch | PPOTrajectoryBatch, key: jax.Array, num_minibatches: int
) -> jax.Array:
    """One epoch's shuffle as (num_minibatches, size / num_minibatches) indices into the batch:
    row m is minibatch m. Gathering a row at a time (`take_minibatch`) never materialises a
    shuffled copy of the whole batch."""
    size, _ = batch_axes(batch)
    return jax.random.permutation(key, size).reshape(num_minibatches, -1)


def take_minibatch(
    batch: PPOBatch | PPOTrajectoryBatch, indices: jax.Array
) -> PPOBatch | PPOTrajectoryBatch:
    """The minibatch of `indices` (one row of `minibatch_indices`): every leaf gathered along
    its batch axis."""
    _, axes = batch_axes(batch)
    # The indices are a permutation's, always in bounds: "clip" spares the default "fill"
    # mode's masking of out-of-bounds rows, an operation per leaf per minibatch step.
    return jax.tree.map(lambda x, axis: jnp.take(x, indices, axis=axis, mode="clip"), batch, axes)


def shuffled_minibatches(
    batch: PPOBatch | PPOTrajectoryBatch, key: jax.Array, num_minibatches: int
) -> PPOBatch | PPOTrajectoryBatch:
    """All of an epoch's minibatches stacked on a new leading axis (what `update` gathers one
    at a time): the batch shuffled and split into num_minibatches.

    A flat PPOBatch is split by transitions; a PPOTrajectoryBatch by environments, so each
    minibatch holds whole trajectories (its `env_axes` say which axis that is per leaf).
    """
    indices = minibatch_indices(batch, key, num_minibatches)
    return jax.vmap(take_minibatch, in_axes=(None, 0))(batch, indices)


# The most observations prepare_batch's value pass sees at once; a larger batch is evaluated
# in passes over consecutive time steps (`gae.in_passes`), so its hidden activations take
# VALUE_PASS_ROWS x width floats per layer instead of T x N x width: at 2^20 environments x 8
# steps with 64 units that is 128 MiB instead of 2 GiB a layer (docs/SCALING.md). Batches up to
# Brax's ant geometry (4,096 x 80 = 327,680) stay one pass.
VALUE_PASS_ROWS = 2**19


class PPOAgent:
    """Proximal policy optimisation (Schulman et al., 2017) as a purerl agent.

    `train` gives the batch geometry (environments, unroll length) and the learning-rate decay
    horizon; `episode_length` bounds how many time limits one unroll can hit.
    """

    def __init__(
        self,
        config: PPOConfig,
        spec: EnvSpec,
        train: TrainConfig,
        episode_length: int,
    ):
        self.config = config
        self.spec = spec
        self.normalize_observations = config.normalize_observations
        self.observation_clip = config.observation_clip
        self.num_envs = train.num_envs
        self.num_unrolls = train.unrolls_per_iteration
        self.num_minibatches = config.minibatches(train)  # set, or from minibatch_size
        # Final observations at time limits are only valued to bootstrap from; with time
        # limits masked out (GAE zeroes their TD errors) no value pass needs them.
        self.truncation_slots = (
            num_truncation_slots(train.unroll_length, episode_length)
            if config.bootstrap_on_timeout
            else 0
        )
        self.value_pass_rows = VALUE_PASS_ROWS

        def body(hidden_sizes):
            return Body(
                config.network,
                tuple(hidden_sizes),
                config.depth,
                config.width,
                config.activation,
                config.kernel_init,
            )

        if spec.discrete:
            self.policy = CategoricalPolicy(body(config.policy_hidden_sizes), spec.num_actions)
        else:
            self.policy = GaussianPolicy(
                body(config.policy_hidden_sizes),
                spec.action_size,
                squash=config.action_distribution == "tanh_normal",
                init_log_std=config.init_log_std,
                scale=config.policy_scale,
                min_std=config.min_std,
            )
        self.value = ValueNetwork(body(config.value_hidden_sizes))
        learning_rate = config.learning_rate
        if config.anneal_learning_rate:
            num_updates = train.num_iterations * config.num_epochs * self.num_minibatches
            learning_rate = optax.linear_schedule(config.learning_rate, 0.0, num_updates)
        adam = optax.adam(learning_rate, eps=config.adam_epsilon)
        if config.max_grad_norm is None:
            self.optimizer = adam
        else:
            self.optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), adam)
        if config.advantage_estimation == "per_minibatch":
            self.loss = make_ppo_trajectory_loss(
                self.policy.apply, self.value.apply, self.advantages, config
            )
        else:
            self.loss = make_ppo_loss(self.policy.apply, self.value.apply, config)

    def init(self, key: jax.Array) -> PPOState:
        policy_key, value_key = jax.random.split(key)
        obs = jnp.zeros((1, self.spec.observation_size))
        params = {
            "policy": self.policy.init(policy_key, obs),
            "value": self.value.init(value_key, obs),
        }
        reward_normalizer = None
        if self.config.normalize_rewards:
            reward_normalizer = RewardNormalizer(jnp.zeros((self.num_envs,)), init_statistics(1))
        return PPOState(
            params,
            self.optimizer.init(params),
            init_statistics(self.spec.observation_size),
            reward_normalizer,
        )

    def normalize(self, normalizer: RunningStatistics, obs: jax.Array) -> jax.Array:
        """Observations as the networks see them (identity until the first update)."""
        return normalize(normalizer, obs, self.observation_clip)

    def act(
        self, state: PPOState, obs: jax.Array, key: jax.Array, deterministic: bool = False
    ) -> tuple[jax.Array, PolicySample]:
        """Env actions (N, ...) for observations (N, obs), plus the sample PPO learns from."""
        distribution = self.policy.apply(
            state.params["policy"], self.normalize(state.normalizer, obs)
        )
        raw = distribution.mode() if deterministic else distribution.sample(key)
        return distribution.to_action(raw), PolicySample(raw, distribution.log_prob(raw))

    def advantages(
        self,
        rewards: jax.Array,
        values: jax.Array,
        next_values: jax.Array,
        termination: jax.Array,
        truncation: jax.Array,
    ) -> tuple[jax.Array, jax.Array]:
        """(advantages, value targets), both (T, N), as the config asks (GAE or Brax's
        one-step form; bootstrapping at time limits or masking them out)."""
        config = self.config
        dones = jnp.maximum(termination, truncation)
        advantages, targets = compute_gae(
            rewards,
            values,
            next_values,
            termination,
            dones,
            config.discount,
            config.gae_lambda,
            None if config.bootstrap_on_timeout else truncation,
        )
        if config.advantage == "one_step_lambda_return":
            advantages = one_step_lambda_advantages(
                advantages, dones, config.discount, config.gae_lambda
            )
        return advantages, targets

    def prepare_batch(
        self, state: PPOState, trajectory: Transition
    ) -> tuple[PPOState, PPOBatch | PPOTrajectoryBatch]:
        """Updates the normalisers with the trajectory and builds what the loss learns from.

        Returns the state with updated normalisers (parameters unchanged) and, per_batch, the
        flat (T*N) batch with advantages and targets from the current value network; per
        minibatch, the (T, N) trajectories for the loss to estimate them itself. The batch's
        observations are normalised with the updated statistics, or with those the policy
        acted with (`observation_statistics`).
        """
        config = self.config
        normalizer = updated = state.normalizer
        if self.normalize_observations:
            updated = update_statistics(state.normalizer, trajectory.obs)
            if config.observation_statistics == "updated":
                normalizer = updated
        obs = self.normalize(normalizer, trajectory.obs)
        next_obs = NextObservations.from_trajectory(
            trajectory.next_obs, trajectory.truncation, self.truncation_slots
        )
        next_obs = next_obs.replace(
            last=self.normalize(normalizer, next_obs.last),
            truncated=self.normalize(normalizer, next_obs.truncated),
        )
        rewards, reward_normalizer = trajectory.reward, state.reward_normalizer
        if config.normalize_rewards:
            dones = jnp.maximum(trajectory.termination, trajectory.truncation)
            reward_normalizer, rewards = normalize_rewards(
                reward_normalizer, rewards, dones, config.discount, self.num_unrolls
            )
        rewards = rewards * config.reward_scale
        state = state.replace(normalizer=updated, reward_normalizer=reward_normalizer)
        value_fn = lambda x: self.value.apply(state.params["value"], x)  # noqa: E731

        if config.advantage_estimation == "per_minibatch":
            # Only the clipped value loss looks at collection-time values.
            old_value = (
                in_passes(value_fn, obs, self.value_pass_rows)
                if config.clip_value_loss
                else jnp.zeros_like(rewards)
            )
            batch = PPOTrajectoryBatch(
                obs,
                trajectory.policy.raw_action,
                trajectory.policy.log_prob,
                old_value,
                rewards,
                trajectory.termination,
                trajectory.truncation,
                next_obs,
            )
            return state, batch

        values, next_values = values_and_next_values(value_fn, obs, next_obs, self.value_pass_rows)
        advantages, targets = self.advantages(
            rewards, values, next_values, trajectory.termination, trajectory.truncation
        )
        batch = PPOBatch(
            obs,
            trajectory.policy.raw_action,
            trajectory.policy.log_prob,
            values,
            advantages,
            targets,
        )
        return state, jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), batch)

    def update(
        self, state: PPOState, trajectory: Transition, key: jax.Array
    ) -> tuple[PPOState, Metrics]:
        """prepare_batch on the (T, N) trajectory, then num_epochs x num_minibatches gradient
        steps; each epoch shuffles transitions (per_batch) or environments (per_minibatch)."""
        config, num_minibatches = self.config, self.num_minibatches
        state, batch = self.prepare_batch(state, trajectory)
        # The gradient steps update the parameters raveled into one vector, so the optimizer's
        # step (gradient clipping and Adam) is a few kernels rather than a few per parameter
        # array: on a GPU, where the update is bound by kernel launches, 61 -> 44 per
        # minibatch step at PureJaxRL's configuration (docs/BENCHMARKS.md).
        flat_params, flat_optimizer_state, unravel, back = raveled(
            state.params, state.optimizer_state
        )

        def flat_loss(flat, minibatch, key):
            return self.loss(unravel(flat), minibatch, key)

        def minibatch_step(carry, indices_and_key):
            params, optimizer_state = carry
            indices, loss_key = indices_and_key
            # Gathered here, one minibatch at a time, rather than a shuffled copy of the whole
            # batch per epoch (docs/SCALING.md).
            minibatch = take_minibatch(batch, indices)
            grads, metrics = jax.grad(flat_loss, has_aux=True)(params, minibatch, loss_key)
            updates, optimizer_state = self.optimizer.update(grads, optimizer_state, params)
            metrics["optimizer/grad_norm"] = optax.global_norm(grads)
            return (optax.apply_updates(params, updates), optimizer_state), metrics

        def epoch(carry, epoch_key):
            shuffle_key, loss_key = jax.random.split(epoch_key)
            indices = minibatch_indices(batch, shuffle_key, num_minibatches)
            loss_keys = jax.random.split(loss_key, num_minibatches)
            return scan_metrics(minibatch_step, carry, (indices, loss_keys))

        (params, optimizer_state), metrics = scan_metrics(
            epoch,
            (flat_params, flat_optimizer_state),
            jax.random.split(key, config.num_epochs),
            mean=True,
        )
        params, optimizer_state = back(params, optimizer_state)
        return state.replace(params=params, optimizer_state=optimizer_state), metrics
