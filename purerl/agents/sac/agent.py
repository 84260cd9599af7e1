"""Goal-conditioned SAC with hindsight relabelling (SAC+HER) as a purerl agent.

Each update stores the collected (T, N) transitions in the on-device trajectory buffer CRL
uses, then takes `updates_per_iteration` gradient steps. Every step samples transitions,
relabels a `relabel_fraction` of their goals with states their trajectory reached later,
recomputes those rows' sparse success reward from the environment's goal indices and success
radius, and updates twin Q critics toward the soft Bellman target of Polyak-averaged target
critics, the actor on the smaller Q, and the entropy temperature toward its target.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.flatten_util import ravel_pytree

from envs import EnvSpec
from purerl.agents.sac.config import SACConfig
from purerl.agents.sac.loss import critic_loss, polyak, soft_target
from purerl.checks import ConfigError
from purerl.goals import goal_layout, success_reward
from purerl.losses.max_entropy import actor_loss, alpha_loss
from purerl.networks import ResidualTrunk, SquashedGaussianActor
from purerl.optim import apply_groups, raveled_groups
from purerl.replay import (
    TrajectoryBuffer,
    init_buffer,
    insert,
    sample_with_future,
    train_after_warmup,
)
from purerl.types import Metrics, Transition

NUM_CRITICS = 2


@struct.dataclass
class SACState:
    params: dict  # {"actor", "critic" (twin trunks stacked on a leading axis), "log_alpha"}
    target_critic: Any  # Polyak average of params["critic"]
    optimizer_state: dict  # one optax state per parameter group, keys of params
    buffer: TrajectoryBuffer


@struct.dataclass
class SACBatch:
    """Transitions with their (possibly relabelled) goal already in the observations:
    obs, next_obs (B, obs) = [state, goal]; action (B, action); reward, termination (B,);
    relabelled (B,) 1.0 where the goal came from the trajectory's future."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    termination: jax.Array
    relabelled: jax.Array


class SACAgent:
    """Twin Q(s, g, a) critics and a max-entropy actor pi(a | s, g), all residual trunks.

    `num_envs` and `episode_length` size the replay buffer's columns and relabelling horizon.
    """

    def __init__(self, config: SACConfig, spec: EnvSpec, num_envs: int, episode_length: int):
        self.state_size, self.achieved_goal = goal_layout(spec, "SAC+HER")
        if spec.success_radius is None:
            raise ConfigError(
                "env.name",
                "SAC+HER relabels rewards, so the environment must declare its success_radius",
            )
        self.config = config
        self.spec = spec
        self.num_envs = num_envs
        self.episode_length = episode_length
        trunk = dict(
            width=config.width,
            depth=config.depth,
            activation=config.activation,
            normalization=config.normalization,
            remat=config.remat,
        )
        self.actor = SquashedGaussianActor(action_size=spec.action_size, **trunk)
        self.critic = ResidualTrunk(output_size=1, **trunk)
        self.target_entropy = (
            -float(spec.action_size) if config.target_entropy is None else config.target_entropy
        )
        self.optimizers = {
            "actor": optax.adam(config.actor_learning_rate),
            "critic": optax.adam(config.critic_learning_rate),
            "log_alpha": optax.adam(config.alpha_learning_rate),
        }

    def init(self, key: jax.Array) -> SACState:
        actor_key, critic_key = jax.random.split(key)
        obs = jnp.zeros((1, self.spec.observation_size))
        obs_action = jnp.zeros((1, self.spec.observation_size + self.spec.action_size))
        critic_keys = jax.random.split(critic_key, NUM_CRITICS)
        params = {
            "actor": self.actor.init(actor_key, obs),
            "critic": jax.vmap(self.critic.init, in_axes=(0, None))(critic_keys, obs_action),
            "log_alpha": jnp.zeros(()),
        }
        optimizer_state = {name: opt.init(params[name]) for name, opt in self.optimizers.items()}
        n = self.num_envs
        example = {
            "obs": jnp.zeros((n, self.spec.observation_size)),
            "action": jnp.zeros((n, self.spec.action_size)),
            "reward": jnp.zeros((n,)),
            "next_obs": jnp.zeros((n, self.spec.observation_size)),
            "termination": jnp.zeros((n,)),
        }
        buffer = init_buffer(example, self.config.buffer_size // n)
        return SACState(params, params["critic"], optimizer_state, buffer)

    def act(
        self, state: SACState, obs: jax.Array, key: jax.Array, deterministic: bool = False
    ) -> tuple[jax.Array, jax.Array]:
        """Env actions (N, action) for observations [state, goal] (N, obs); keeps the action."""
        distribution = self.actor.apply(state.params["actor"], obs)
        raw = distribution.mode() if deterministic else distribution.sample(key)
        action = distribution.to_action(raw)
        return action, action

    def q_values(self, critic: Any, obs: jax.Array, action: jax.Array) -> jax.Array:
        """Every critic's Q(obs, action): (critics, B)."""
        inputs = jnp.concatenate([obs, action], axis=-1)
        return jax.vmap(lambda p: self.critic.apply(p, inputs)[..., 0])(critic)

    def sample_batch(self, buffer: TrajectoryBuffer, key: jax.Array) -> SACBatch:
        """Stored transitions; a relabel_fraction of them take a goal their trajectory reached
        later, with the success reward recomputed for it (the others keep the commanded goal
        and the environment's reward)."""
        config = self.config
        sample_key, relabel_key = jax.random.split(key)
        now, future, _ = sample_with_future(
            buffer, sample_key, config.batch_size, config.future_goal_discount, self.episode_length
        )
        relabel = jax.random.uniform(relabel_key, (config.batch_size,)) < config.relabel_fraction
        goal = jnp.where(
            relabel[:, None],
            future["obs"][:, self.achieved_goal],
            now["obs"][:, self.state_size :],
        )
        reached = now["next_obs"][:, self.achieved_goal]
        hindsight_reward = success_reward(reached, goal, self.spec.success_radius)

        def with_goal(obs):
            return jnp.concatenate([obs[:, : self.state_size], goal], axis=-1)

        return SACBatch(
            obs=with_goal(now["obs"]),
            action=now["action"],
            reward=jnp.where(relabel, hindsight_reward, now["reward"]),
            next_obs=with_goal(now["next_obs"]),
            termination=now["termination"],
            relabelled=relabel.astype(jnp.float32),
        )

    def policy_sample(self, actor: Any, obs: jax.Array, key: jax.Array) -> tuple:
        """A reparameterised action (B, action) and its log-probability (B,)."""
        distribution = self.actor.apply(actor, obs)
        raw = distribution.sample(key)
        return distribution.to_action(raw), distribution.log_prob(raw)

    def actor_objective(
        self, actor: Any, critic: Any, alpha: jax.Array, obs: jax.Array, key: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """Max-entropy actor loss against the smaller Q; aux: log_prob (B,)."""
        action, log_prob = self.policy_sample(actor, obs, key)
        q = self.q_values(critic, obs, action).min(axis=0)
        return actor_loss(log_prob, q, alpha), log_prob

    def gradient_step(
        self, carry: tuple, buffer: TrajectoryBuffer, key: jax.Array, unravel: dict
    ) -> tuple[tuple, Metrics]:
        """One critic, actor and temperature step on one relabelled batch, then the target
        critics move toward the online ones. The carry holds every parameter group, the target
        critics and the optimizer states raveled into vectors (`purerl.optim.raveled_groups`);
        `unravel` gives each group's tree back."""
        params, target_critic, optimizer_state = carry
        config = self.config
        actor, critic = unravel["actor"](params["actor"]), unravel["critic"](params["critic"])
        batch_key, next_key, actor_key = jax.random.split(key, 3)
        batch = self.sample_batch(buffer, batch_key)
        alpha = jnp.exp(unravel["log_alpha"](params["log_alpha"]))
        next_action, next_log_prob = self.policy_sample(actor, batch.next_obs, next_key)
        target = soft_target(
            batch.reward,
            batch.termination,
            self.q_values(unravel["critic"](target_critic), batch.next_obs, next_action),
            next_log_prob,
            alpha,
            config.discount,
        )

        def critic_objective(flat_critic):
            q = self.q_values(unravel["critic"](flat_critic), batch.obs, batch.action)
            return critic_loss(q, target), q

        def actor_objective(flat_actor):
            return self.actor_objective(
                unravel["actor"](flat_actor),
                jax.lax.stop_gradient(critic),
                alpha,
                batch.obs,
                actor_key,
            )

        def temperature_objective(flat_log_alpha, log_prob):
            return alpha_loss(unravel["log_alpha"](flat_log_alpha), log_prob, self.target_entropy)

        (critic_value, q), critic_grads = jax.value_and_grad(critic_objective, has_aux=True)(
            params["critic"]
        )
        # The actor's gradient flows through the critics' values but must not move them.
        (actor_value, log_prob), actor_grads = jax.value_and_grad(actor_objective, has_aux=True)(
            params["actor"]
        )
        alpha_grad = jax.grad(temperature_objective)(params["log_alpha"], log_prob)
        grads = {"actor": actor_grads, "critic": critic_grads, "log_alpha": alpha_grad}
        params, optimizer_state = apply_groups(self.optimizers, grads, optimizer_state, params)
        target_critic = polyak(target_critic, params["critic"], config.tau)
        metrics = {
            "critic/loss": critic_value,
            "critic/q": q.mean(),
            "critic/grad_norm": optax.global_norm(critic_grads),
            "actor/loss": actor_value,
            "actor/entropy": -log_prob.mean(),
            "actor/grad_norm": optax.global_norm(actor_grads),
            "alpha": jnp.exp(unravel["log_alpha"](params["log_alpha"])),
            "batch/reward": batch.reward.mean(),
            "batch/relabelled": batch.relabelled.mean(),
        }
        return (params, target_critic, optimizer_state), metrics

    def update(
        self, state: SACState, trajectory: Transition, key: jax.Array
    ) -> tuple[SACState, Metrics]:
        """Stores the (T, N) transitions, then updates_per_iteration gradient steps once the
        buffer holds warmup_env_steps steps. Metrics are zeros, with "trained" 0, before."""
        config = self.config
        steps = {
            "obs": trajectory.obs,
            "action": trajectory.policy,
            "reward": trajectory.reward,
            "next_obs": trajectory.next_obs,
            "termination": trajectory.termination,
        }
        dones = jnp.maximum(trajectory.termination, trajectory.truncation)
        buffer = insert(state.buffer, steps, dones)

        # The gradient steps run on every group raveled into one vector: the optimizer's
        # step, the Polyak average and the gradient norms are then a kernel or two per group
        # rather than per parameter array, on a GPU where these small steps are bound by
        # kernel launches (docs/BENCHMARKS.md). Between updates the state keeps its trees.
        params, optimizer_state, unravel, back = raveled_groups(state.params, state.optimizer_state)
        carry = (params, ravel_pytree(state.target_critic)[0], optimizer_state)

        def step(carry, step_key):
            return self.gradient_step(carry, buffer, step_key, unravel)

        (params, target_critic, optimizer_state), metrics = train_after_warmup(
            buffer, config.warmup_env_steps, config.updates_per_iteration, step, carry, key
        )
        params, optimizer_state = back(params, optimizer_state)
        target_critic = unravel["critic"](target_critic)
        return SACState(params, target_critic, optimizer_state, buffer), metrics
