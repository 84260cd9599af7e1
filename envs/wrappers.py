"""Wrappers that turn a single brax-API environment into a batch ready for training.

`EpisodeWrapper` adds a time limit with a truncation flag and running episode statistics to one
environment. `AutoResetWrapper` steps a batch of such environments and resets each finished one
with a fresh key, so every episode gets a new start (and, for goal-conditioned tasks, a new
goal); brax's own AutoResetWrapper restores a cached first state instead, which freezes each
slot's start and goal for the whole run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State, Wrapper

EPISODE_KEYS = ("steps", "truncation", "episode_return", "episode_length")


class EpisodeWrapper(Wrapper):
    """Ends episodes after `episode_length` steps and tracks their return and length.

    `state.done` is 1 when the episode ended for either reason; `state.info["truncation"]` is 1
    only when it ended by the time limit without the task terminating, so learners bootstrap
    from the final observation there and not on true terminations.
    """

    def __init__(self, env: Env, episode_length: int):
        super().__init__(env)
        self.episode_length = episode_length

    def reset(self, rng: jax.Array) -> State:
        state = self.env.reset(rng)
        zero = jnp.zeros(())
        info = dict(
            state.info,
            steps=jnp.zeros((), jnp.int32),
            truncation=zero,
            episode_return=zero,
            episode_length=zero,
        )
        return state.replace(info=info, done=zero)

    def step(self, state: State, action: jax.Array) -> State:
        # The inner step starts from an ongoing episode: a `done` left over from the step that
        # triggered a reset must not leak into environments that only update what they change.
        next_state = self.env.step(state.replace(done=jnp.zeros_like(state.done)), action)
        steps = state.info["steps"] + 1
        timed_out = steps >= self.episode_length
        terminated = next_state.done > 0
        info = dict(
            next_state.info,
            steps=steps,
            truncation=(timed_out & ~terminated).astype(jnp.float32),
            episode_return=state.info["episode_return"] + next_state.reward,
            episode_length=state.info["episode_length"] + 1.0,
        )
        done = (timed_out | terminated).astype(jnp.float32)
        return next_state.replace(info=info, done=done)


class AutoResetWrapper:
    """A batch of `num_envs` environments that reset themselves when an episode ends.

    The wrapped environment is a single (unbatched) `EpisodeWrapper`. All returned arrays have
    the batch as their leading axis. After each step `info` also holds:
      final_obs            (num_envs, obs): the observation the step reached, before any reset,
                           which is what a learner bootstraps from on truncation;
      last_episode_return  (num_envs,): return of the most recently finished episode;
      last_episode_length  (num_envs,): its length.
    Resets run only on steps where some environment finished (`lax.cond` on the batch).
    """

    def __init__(self, env: EpisodeWrapper, num_envs: int):
        self.env = env
        self.num_envs = num_envs

    def reset(self, rng: jax.Array) -> State:
        """Returns the batched initial state, each environment from its own key."""
        env_keys, reset_keys = jnp.split(jax.random.split(rng, 2 * self.num_envs), 2)
        state = jax.vmap(self.env.reset)(env_keys)
        zeros = jnp.zeros((self.num_envs,))
        info = dict(
            state.info,
            reset_key=reset_keys,
            final_obs=state.obs,
            last_episode_return=zeros,
            last_episode_length=zeros,
        )
        return state.replace(info=info)

    def step(self, state: State, action: jax.Array) -> State:
        """Steps every environment with `action` (num_envs, ...) and resets finished ones."""
        own = {
            k: state.info[k] for k in ("reset_key", "last_episode_return", "last_episode_length")
        }
        inner = {k: v for k, v in state.info.items() if k not in own and k != "final_obs"}
        stepped = jax.vmap(self.env.step)(state.replace(info=inner), action)
        done = stepped.done > 0
        info = dict(
            stepped.info,
            final_obs=stepped.obs,
            reset_key=own["reset_key"],
            last_episode_return=jnp.where(
                done, stepped.info["episode_return"], own["last_episode_return"]
            ),
            last_episode_length=jnp.where(
                done, stepped.info["episode_length"], own["last_episode_length"]
            ),
        )
        stepped = stepped.replace(info=info)
        stepped = jax.lax.cond(jnp.any(done), self._reset_finished, lambda s: s, stepped)
        # Brax steps return some weakly typed leaves; matching the input's types keeps a loop
        # carrying this state from compiling twice.
        return jax.tree.map(lambda new, old: new.astype(old.dtype), stepped, state)

    def _reset_finished(self, state: State) -> State:
        done = state.done > 0
        keys = jax.vmap(jax.random.split)(state.info["reset_key"])
        fresh = jax.vmap(self.env.reset)(keys[:, 0])

        def pick(new, old):
            mask = done.reshape(done.shape + (1,) * (old.ndim - 1))
            return jnp.where(mask, new, old)

        info = dict(state.info)
        info.update(jax.tree.map(pick, fresh.info, {k: state.info[k] for k in fresh.info}))
        # `truncation` describes the step just taken, not the new episode: keep it.
        info["truncation"] = state.info["truncation"]
        info["reset_key"] = pick(keys[:, 1], state.info["reset_key"])
        return state.replace(
            pipeline_state=jax.tree.map(pick, fresh.pipeline_state, state.pipeline_state),
            obs=pick(fresh.obs, state.obs),
            info=info,
        )

    @property
    def observation_size(self) -> int:
        return self.env.observation_size

    @property
    def action_size(self) -> int:
        return self.env.action_size
