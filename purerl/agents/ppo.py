"""PPO agent: GAE, then epochs x minibatches of SGD on the clipped PPO loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct

from envs import EnvSpec
from purerl.config import PPOConfig
from purerl.gae import compute_gae
from purerl.losses.ppo import PPOBatch, make_ppo_loss
from purerl.networks import Body, CategoricalPolicy, GaussianPolicy, ValueNetwork
from purerl.normalize import RunningStatistics, init_statistics, normalize, update_statistics
from purerl.types import Metrics, Transition


@struct.dataclass
class PPOState:
    params: dict  # {"policy": ..., "value": ...}
    optimizer_state: optax.OptState
    normalizer: RunningStatistics


@struct.dataclass
class PolicySample:
    """What `act` keeps for learning: the raw (pre-squash) action and its log-probability."""

    raw_action: jax.Array
    log_prob: jax.Array


class PPOAgent:
    """Proximal policy optimisation (Schulman et al., 2017) as a purerl agent.

    `num_updates` (total minibatch steps over the run) sets the learning-rate decay horizon.
    """

    def __init__(
        self, config: PPOConfig, spec: EnvSpec, normalize_observations: bool, num_updates: int
    ):
        self.config = config
        self.spec = spec
        self.normalize_observations = normalize_observations

        def body(hidden_sizes):
            return Body(
                config.network, tuple(hidden_sizes), config.depth, config.width, config.activation
            )

        if spec.discrete:
            self.policy = CategoricalPolicy(body(config.policy_hidden_sizes), spec.num_actions)
        else:
            self.policy = GaussianPolicy(
                body(config.policy_hidden_sizes),
                spec.action_size,
                squash=config.action_distribution == "tanh_normal",
                init_log_std=config.init_log_std,
            )
        self.value = ValueNetwork(body(config.value_hidden_sizes))
        learning_rate = config.learning_rate
        if config.anneal_learning_rate:
            learning_rate = optax.linear_schedule(config.learning_rate, 0.0, num_updates)
        self.optimizer = optax.chain(
            optax.clip_by_global_norm(config.max_grad_norm),
            optax.adam(learning_rate, eps=1e-5),
        )
        self.loss = make_ppo_loss(self.policy.apply, self.value.apply, config)

    def init(self, key: jax.Array) -> PPOState:
        policy_key, value_key = jax.random.split(key)
        obs = jnp.zeros((1, self.spec.observation_size))
        params = {
            "policy": self.policy.init(policy_key, obs),
            "value": self.value.init(value_key, obs),
        }
        return PPOState(
            params, self.optimizer.init(params), init_statistics(self.spec.observation_size)
        )

    def act(
        self, state: PPOState, obs: jax.Array, key: jax.Array, deterministic: bool = False
    ) -> tuple[jax.Array, PolicySample]:
        """Env actions (N, ...) for observations (N, obs), plus the sample PPO learns from."""
        distribution = self.policy.apply(state.params["policy"], normalize(state.normalizer, obs))
        raw = distribution.mode() if deterministic else distribution.sample(key)
        return distribution.to_action(raw), PolicySample(raw, distribution.log_prob(raw))

    def prepare_batch(
        self, state: PPOState, trajectory: Transition
    ) -> tuple[RunningStatistics, PPOBatch]:
        """Updates the normaliser with the trajectory and builds the flat (T*N) PPO batch.

        Values are those of the current parameters; advantages and targets come from GAE.
        """
        config = self.config
        normalizer = state.normalizer
        if self.normalize_observations:
            normalizer = update_statistics(normalizer, trajectory.obs)
        obs = normalize(normalizer, trajectory.obs)
        values = self.value.apply(state.params["value"], obs)
        next_values = self.value.apply(
            state.params["value"], normalize(normalizer, trajectory.next_obs)
        )
        dones = jnp.maximum(trajectory.termination, trajectory.truncation)
        advantages, targets = compute_gae(
            trajectory.reward * config.reward_scale,
            values,
            next_values,
            trajectory.termination,
            dones,
            config.discount,
            config.gae_lambda,
        )
        batch = PPOBatch(
            obs,
            trajectory.policy.raw_action,
            trajectory.policy.log_prob,
            values,
            advantages,
            targets,
        )
        return normalizer, jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), batch)

    def update(
        self, state: PPOState, trajectory: Transition, key: jax.Array
    ) -> tuple[PPOState, Metrics]:
        """GAE on the (T, N) trajectory, then num_epochs x num_minibatches gradient steps."""
        config = self.config
        normalizer, batch = self.prepare_batch(state, trajectory)
        batch_size = batch.advantage.shape[0]

        def minibatch_step(carry, minibatch_and_key):
            params, optimizer_state = carry
            minibatch, loss_key = minibatch_and_key
            grads, metrics = jax.grad(self.loss, has_aux=True)(params, minibatch, loss_key)
            updates, optimizer_state = self.optimizer.update(grads, optimizer_state, params)
            metrics["optimizer/grad_norm"] = optax.global_norm(grads)
            return (optax.apply_updates(params, updates), optimizer_state), metrics

        def epoch(carry, epoch_key):
            shuffle_key, loss_key = jax.random.split(epoch_key)
            order = jax.random.permutation(shuffle_key, batch_size)
            minibatches = jax.tree.map(
                lambda x: x[order].reshape((config.num_minibatches, -1) + x.shape[1:]), batch
            )
            loss_keys = jax.random.split(loss_key, config.num_minibatches)
            return jax.lax.scan(minibatch_step, carry, (minibatches, loss_keys))

        (params, optimizer_state), metrics = jax.lax.scan(
            epoch,
            (state.params, state.optimizer_state),
            jax.random.split(key, config.num_epochs),
        )
        metrics = jax.tree.map(jnp.mean, metrics)
        return PPOState(params, optimizer_state, normalizer), metrics
