"""Contrastive goal-conditioned RL (CRL) as a purerl agent.

Each update inserts the collected (T, N) trajectory into an on-device replay buffer, then takes
`updates_per_iteration` gradient steps, each on a fresh batch of (state, action, future goal)
triples relabelled from the buffer: the critic is a pair of encoders trained contrastively
(positives on the diagonal, the rest of the batch as negatives), the actor maximises the
critic's energy plus an entropy bonus whose temperature is tuned automatically.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct

from envs import EnvSpec
from purerl.agents.crl.config import CRLConfig
from purerl.agents.crl.loss import ENERGIES, critic_loss
from purerl.goals import goal_layout
from purerl.losses.max_entropy import actor_loss, alpha_loss, default_target_entropy
from purerl.networks import ResidualTrunk, SquashedGaussianActor
from purerl.optim import apply_groups
from purerl.replay import (
    TrajectoryBuffer,
    init_buffer,
    insert,
    sample_with_future,
    train_after_warmup,
)
from purerl.types import Metrics, Transition


@struct.dataclass
class CRLState:
    params: dict  # {"actor", "sa_encoder", "goal_encoder", "log_alpha"}
    optimizer_state: dict  # one optax state per parameter group, same keys
    buffer: TrajectoryBuffer


@struct.dataclass
class CRLBatch:
    """Relabelled training triples: state (B, state), action (B, action), goal (B, goal)."""

    state: jax.Array
    action: jax.Array
    goal: jax.Array


class CRLAgent:
    """Contrastive RL: phi(s, a) and psi(g) encoders, a max-entropy actor pi(a | s, g).

    `num_envs` and `episode_length` size the replay buffer's columns and relabelling horizon.
    """

    def __init__(self, config: CRLConfig, spec: EnvSpec, num_envs: int, episode_length: int):
        self.config = config
        self.spec = spec
        self.num_envs = num_envs
        self.episode_length = episode_length
        self.state_size, self.achieved_goal = goal_layout(spec, "CRL")
        trunk = dict(
            activation=config.activation, normalization=config.normalization, remat=config.remat
        )

        def size(name):
            width, depth = config.network_size(name)
            return dict(width=width, depth=depth)

        self.sa_encoder = ResidualTrunk(
            output_size=config.representation_size, **size("sa_encoder"), **trunk
        )
        self.goal_encoder = ResidualTrunk(
            output_size=config.representation_size, **size("goal_encoder"), **trunk
        )
        self.actor = SquashedGaussianActor(action_size=spec.action_size, **size("actor"), **trunk)
        self.energy = ENERGIES[config.energy]
        self.target_entropy = (
            default_target_entropy(spec.action_size)
            if config.target_entropy is None
            else config.target_entropy
        )
        self.optimizers = {
            "actor": optax.adam(config.actor_learning_rate),
            "critic": optax.adam(config.critic_learning_rate),
            "log_alpha": optax.adam(config.alpha_learning_rate),
        }

    @property
    def buffer_rows(self) -> int:
        return self.config.buffer_size // self.num_envs

    def init(self, key: jax.Array) -> CRLState:
        actor_key, sa_key, goal_key = jax.random.split(key, 3)
        goal_size = len(self.achieved_goal)
        obs = jnp.zeros((1, self.spec.observation_size))
        params = {
            "actor": self.actor.init(actor_key, obs),
            "sa_encoder": self.sa_encoder.init(
                sa_key, jnp.zeros((1, self.state_size + self.spec.action_size))
            ),
            "goal_encoder": self.goal_encoder.init(goal_key, jnp.zeros((1, goal_size))),
            "log_alpha": jnp.zeros(()),
        }
        optimizer_state = {
            "actor": self.optimizers["actor"].init(params["actor"]),
            "critic": self.optimizers["critic"].init(self._critic(params)),
            "log_alpha": self.optimizers["log_alpha"].init(params["log_alpha"]),
        }
        example = {
            "obs": jnp.zeros((self.num_envs, self.spec.observation_size)),
            "action": jnp.zeros((self.num_envs, self.spec.action_size)),
        }
        return CRLState(params, optimizer_state, init_buffer(example, self.buffer_rows))

    @staticmethod
    def _critic(params: dict) -> dict:
        return {"sa_encoder": params["sa_encoder"], "goal_encoder": params["goal_encoder"]}

    def act(
        self, state: CRLState, obs: jax.Array, key: jax.Array, deterministic: bool = False
    ) -> tuple[jax.Array, jax.Array]:
        """Env actions (N, action) for observations [state, goal] (N, obs); keeps the action."""
        distribution = self.actor.apply(state.params["actor"], obs)
        raw = distribution.mode() if deterministic else distribution.sample(key)
        action = distribution.to_action(raw)
        return action, action

    def represent(self, critic: dict, batch: CRLBatch, action: jax.Array) -> tuple:
        """(phi(s, a) (B, repr), psi(g) (B, repr))."""
        sa = self.sa_encoder.apply(
            critic["sa_encoder"], jnp.concatenate([batch.state, action], axis=-1)
        )
        return sa, self.goal_encoder.apply(critic["goal_encoder"], batch.goal)

    def sample_batch(self, buffer: TrajectoryBuffer, key: jax.Array) -> CRLBatch:
        """Relabelled triples: each state's goal is where its trajectory went later."""
        config = self.config
        now, future, _ = sample_with_future(
            buffer, key, config.batch_size, config.future_goal_discount, self.episode_length
        )
        return CRLBatch(
            state=now["obs"][:, : self.state_size],
            action=now["action"],
            goal=future["obs"][:, self.achieved_goal],
        )

    def critic_objective(self, critic: dict, batch: CRLBatch) -> tuple[jax.Array, Metrics]:
        """Contrastive loss of the encoders on a batch (diagonal pairs are positives)."""
        config = self.config
        sa, goal = self.represent(critic, batch, batch.action)
        return critic_loss(sa, goal, config.energy, config.objective, config.logsumexp_coef)

    def actor_objective(
        self, actor: dict, critic: dict, log_alpha: jax.Array, batch: CRLBatch, key: jax.Array
    ) -> tuple[jax.Array, tuple[Metrics, jax.Array]]:
        """Max-entropy actor loss on a reparameterised action; aux: (metrics, log_prob (B,))."""
        distribution = self.actor.apply(actor, jnp.concatenate([batch.state, batch.goal], -1))
        raw = distribution.sample(key)  # reparameterised: gradients flow into the actor
        log_prob = distribution.log_prob(raw)
        sa, goal = self.represent(critic, batch, distribution.to_action(raw))
        q = jnp.diagonal(self.energy(sa, goal))
        loss = actor_loss(log_prob, q, jnp.exp(log_alpha))
        return loss, ({"actor/loss": loss, "actor/entropy": -log_prob.mean()}, log_prob)

    def gradient_step(
        self, params: dict, optimizer_state: dict, buffer: TrajectoryBuffer, key: jax.Array
    ) -> tuple[dict, dict, Metrics]:
        """One critic, actor and temperature step on one freshly relabelled batch."""
        batch_key, actor_key = jax.random.split(key)
        batch = self.sample_batch(buffer, batch_key)
        critic = self._critic(params)
        critic_grads, critic_metrics = jax.grad(self.critic_objective, has_aux=True)(critic, batch)
        # The actor's gradient flows through the critic's energy but must not move it.
        actor_grads, (actor_metrics, log_prob) = jax.grad(self.actor_objective, has_aux=True)(
            params["actor"], jax.lax.stop_gradient(critic), params["log_alpha"], batch, actor_key
        )
        alpha_grad = jax.grad(alpha_loss)(params["log_alpha"], log_prob, self.target_entropy)
        grads = {"critic": critic_grads, "actor": actor_grads, "log_alpha": alpha_grad}
        groups = {"critic": critic, "actor": params["actor"], "log_alpha": params["log_alpha"]}
        groups, new_state = apply_groups(self.optimizers, grads, optimizer_state, groups)
        params = {**groups["critic"], "actor": groups["actor"], "log_alpha": groups["log_alpha"]}
        metrics = {
            **critic_metrics,
            **actor_metrics,
            "alpha": jnp.exp(params["log_alpha"]),
            "critic/grad_norm": optax.global_norm(critic_grads),
            "actor/grad_norm": optax.global_norm(actor_grads),
        }
        return params, new_state, metrics

    def update(
        self, state: CRLState, trajectory: Transition, key: jax.Array
    ) -> tuple[CRLState, Metrics]:
        """Stores the (T, N) trajectory, then updates_per_iteration gradient steps once the
        buffer holds warmup_env_steps steps. Metrics are zeros, with "trained" 0, before."""
        config = self.config
        dones = jnp.maximum(trajectory.termination, trajectory.truncation)
        buffer = insert(state.buffer, {"obs": trajectory.obs, "action": trajectory.policy}, dones)

        def step(carry, step_key):
            params, optimizer_state, metrics = self.gradient_step(*carry, buffer, step_key)
            return (params, optimizer_state), metrics

        (params, optimizer_state), metrics = train_after_warmup(
            buffer,
            config.warmup_env_steps,
            config.updates_per_iteration,
            step,
            (state.params, state.optimizer_state),
            key,
        )
        return CRLState(params, optimizer_state, buffer), metrics
