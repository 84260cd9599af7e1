"""Wrappers that turn a single brax-API environment into a batch ready for training.

`EpisodeTracker` adds a time limit with a truncation flag and running episode statistics to one
environment. `AutoResetBatch` steps a batch of such environments and resets each finished one
with a fresh key, so every episode gets a new start (and, for goal-conditioned tasks, a new
goal); brax's own AutoResetWrapper restores a cached first state instead, which freezes each
slot's start and goal for the whole run. `AutoResetBatch(..., reset_to_first_state=True)` does
that too, for exact comparisons with Brax's trainer. The names differ from brax's
`EpisodeWrapper` and `AutoResetWrapper` because the default behaviour does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State, Wrapper
from jax import custom_batching

EPISODE_KEYS = ("steps", "truncation", "episode_return", "episode_length")
# What AutoResetBatch keeps in `info` beside the environment's own keys (first_state only with
# reset_to_first_state); final_obs is rewritten by every step.
BATCH_KEYS = ("reset_key", "last_episode_return", "last_episode_length", "first_state")


T = TypeVar("T")


def if_any(mask: jax.Array, fn: Callable[[jax.Array, T], T], operand: T) -> T:
    """`fn(mask, operand)` if any entry of `mask` is set, else `operand` unchanged: for an fn
    that changes only the entries in `mask`, which makes skipping it when none is set exact.

    A `lax.cond`, but one that stays a conditional under `jax.vmap`: a cond whose predicate
    is batched (one per seed of a vmapped run, say) becomes a select that computes fn on every
    call. Here the predicate is reduced over the vmapped axis too, and fn, vmapped, runs only
    when some member of the batch needs it. fn must not close over traced values (pass them
    in `mask` or `operand`): custom_vmap refuses them.
    """

    @custom_batching.custom_vmap
    def run(mask, operand):
        return jax.lax.cond(jnp.any(mask), fn, lambda _, operand: operand, mask, operand)

    @run.def_vmap
    def run_batched(axis_size, in_batched, mask, operand):
        def batched(x, is_batched):
            return x if is_batched else jnp.broadcast_to(x, (axis_size, *jnp.shape(x)))

        mask_batched, operand_batched = in_batched
        operand = jax.tree.map(batched, operand, operand_batched)
        out = if_any(batched(mask, mask_batched), jax.vmap(fn), operand)
        return out, jax.tree.map(lambda _: True, out)

    return run(mask, operand)


class EpisodeTracker(Wrapper):
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


class AutoResetBatch:
    """A batch of `num_envs` environments that reset themselves when an episode ends.

    The wrapped environment is a single (unbatched) `EpisodeTracker`. All returned arrays have
    the batch as their leading axis. After each step `info` also holds:
      final_obs            (num_envs, obs): the observation the step reached, before any reset,
                           which is what a learner bootstraps from on truncation;
      last_episode_return  (num_envs,): return of the most recently finished episode;
      last_episode_length  (num_envs,): its length.
    Fresh resets run only on steps where some environment finished (`if_any` on the batch),
    or are built ahead for an unroll (`fresh_states`, once per unroll or once per step of it,
    the latter with no conditional); with `reset_to_first_state` a finished environment takes
    its stored first state with a select, and no step holds a conditional.

    A finished environment starts its next episode from a new reset with its own next key,
    or, with `reset_to_first_state`, from the state its slot was first reset to, kept in
    `info["first_state"]` (brax's AutoResetWrapper: each slot replays one start, and one goal,
    for the whole run).
    """

    def __init__(self, env: EpisodeTracker, num_envs: int, reset_to_first_state: bool = False):
        self.env = env
        self.num_envs = num_envs
        self.reset_to_first_state = reset_to_first_state

    def reset_keys(self, rng: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(the keys `reset` resets the environments with, their keys for later fresh
        starts), each (num_envs, 2): what another batch needs to start from the same states."""
        env_keys, reset_keys = jnp.split(jax.random.split(rng, 2 * self.num_envs), 2)
        return env_keys, reset_keys

    def reset(self, rng: jax.Array) -> State:
        """Returns the batched initial state, each environment from its own key."""
        env_keys, reset_keys = self.reset_keys(rng)
        state = jax.vmap(self.env.reset)(env_keys)
        zeros = jnp.zeros((self.num_envs,))
        info = dict(
            state.info,
            reset_key=reset_keys,
            final_obs=state.obs,
            last_episode_return=zeros,
            last_episode_length=zeros,
        )
        if self.reset_to_first_state:
            info["first_state"] = state
        return state.replace(info=info)

    def step(self, state: State, action: jax.Array) -> State:
        """Steps every environment with `action` (num_envs, ...) and resets finished ones."""
        stepped = self._step(state, action)
        if self.reset_to_first_state:
            stepped = self._reset_finished(stepped.done > 0, stepped)
        else:
            stepped = if_any(stepped.done > 0, self._reset_finished, stepped)
        return self._same_types(stepped, state)

    def fresh_states(self, state: State, steps: int | None = None) -> tuple[State, State]:
        """Fresh resets to hand out with `step_with_fresh`, each from its own key: (fresh
        starts, `state` with every reset key advanced).

        steps None: one per environment (num_envs, ...), for a whole unroll; an environment
        that finishes twice in it is then reset through a conditional. steps T: one per
        environment and step (T, num_envs, ...), for an unroll of T steps: every finish takes
        its own step's start, so no step holds a conditional, for T times the resets and the
        memory. With reset_to_first_state: (each environment's first state, `state`
        unchanged), whatever `steps`.
        """
        if self.reset_to_first_state:
            return state.info["first_state"], state
        if steps is None:
            keys = jax.vmap(jax.random.split)(state.info["reset_key"])
            fresh = jax.vmap(self.env.reset)(keys[:, 0])
            return fresh, state.replace(info=dict(state.info, reset_key=keys[:, 1]))
        keys = jax.vmap(lambda key: jax.random.split(key, steps + 1))(state.info["reset_key"])
        fresh = jax.vmap(jax.vmap(self.env.reset))(jnp.swapaxes(keys[:, :steps], 0, 1))
        return fresh, state.replace(info=dict(state.info, reset_key=keys[:, steps]))

    def step_with_fresh(
        self, state: State, action: jax.Array, fresh: State, available: jax.Array | None
    ) -> tuple[State, jax.Array | None]:
        """`step`, with finished environments taking their state from `fresh` (a select,
        no reset computed). Returns (state, what is still available).

        `available` (num_envs,) says which environments' starts in a once-per-unroll `fresh`
        are unused; one that finishes again is reset as in `step`, through a conditional. Every
        episode still starts from its own fresh reset, but the collect pays one batched reset
        per unroll instead of one per step on which any environment finished (nearly every
        step, with many environments). `available` None: `fresh` is this step's own slice of
        a per-step `fresh_states(state, T)`, which any finished environment takes, with no
        conditional; None is returned.

        With reset_to_first_state this is `step`, which takes the first state (any number of
        episodes may) with one select and no conditional; `fresh` is unused.
        On a GPU a conditional reads its predicate back to the host on every step.
        """
        if self.reset_to_first_state:
            stepped = self.step(state, action)
            return stepped, None if available is None else available & ~(stepped.done > 0)
        stepped = self._step(state, action)
        done = stepped.done > 0
        if available is None:
            return self._same_types(self._take(stepped, fresh, done), state), None
        stepped = self._take(stepped, fresh, done & available)
        stepped = if_any(done & ~available, self._reset_finished, stepped)
        return self._same_types(stepped, state), available & ~done

    def _step(self, state: State, action: jax.Array) -> State:
        """The inner step of every environment, with final_obs and episode statistics."""
        own = {k: state.info[k] for k in BATCH_KEYS if k in state.info}
        inner = {k: v for k, v in state.info.items() if k not in own and k != "final_obs"}
        stepped = jax.vmap(self.env.step)(state.replace(info=inner), action)
        done = stepped.done > 0
        info = {
            **stepped.info,
            **own,
            "final_obs": stepped.obs,
            "last_episode_return": jnp.where(
                done, stepped.info["episode_return"], own["last_episode_return"]
            ),
            "last_episode_length": jnp.where(
                done, stepped.info["episode_length"], own["last_episode_length"]
            ),
        }
        return stepped.replace(info=info)

    @staticmethod
    def _same_types(new: State, old: State) -> State:
        # Brax steps return some weakly typed leaves; matching the input's types keeps a loop
        # carrying this state from compiling twice.
        return jax.tree.map(lambda n, o: n.astype(o.dtype), new, old)

    def _reset_finished(self, mask: jax.Array, state: State) -> State:
        """Resets the environments in `mask` from fresh keys (from their first states, with
        reset_to_first_state)."""
        if self.reset_to_first_state:
            return self._take(state, state.info["first_state"], mask)
        keys = jax.vmap(jax.random.split)(state.info["reset_key"])
        state = self._take(state, jax.vmap(self.env.reset)(keys[:, 0]), mask)
        old = state.info["reset_key"]
        # Raw uint32 keys are (N, 2), typed keys (jax.random.key) (N,): broadcast the mask.
        where = mask.reshape(mask.shape + (1,) * (old.ndim - 1))
        reset_key = jax.lax.select(jnp.broadcast_to(where, old.shape), keys[:, 1], old)
        return state.replace(info=dict(state.info, reset_key=reset_key))

    @staticmethod
    def _take(state: State, fresh: State, mask: jax.Array) -> State:
        """`state` with the environments in `mask` replaced by `fresh`'s start of an episode."""

        def pick(new, old):
            return jnp.where(mask.reshape(mask.shape + (1,) * (old.ndim - 1)), new, old)

        info = dict(state.info)
        info.update(jax.tree.map(pick, fresh.info, {k: state.info[k] for k in fresh.info}))
        # `truncation` describes the step just taken, not the new episode: keep it.
        info["truncation"] = state.info["truncation"]
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
