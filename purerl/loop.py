"""The one training loop: collect -> agent.update, with periodic deterministic evaluation.

`Trainer.train(key)` is the whole run as one pure function (jit it, vmap it over keys). The CLI
drives the very same `train_chunk` from Python between evaluations, so it can report progress
and save the complete `TrainState` in between; both paths give identical numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

import envs
from envs import Env, State  # through envs, which keeps mujoco's import message off stdout
from purerl.agents import build_agent
from purerl.config import Config, fresh_starts_per_step, unrolled_substeps, validate
from purerl.types import Agent, Metrics, Transition, scan_metrics, unrolls_to_columns


@struct.dataclass
class TrainState:
    """Everything a run needs to continue exactly: checkpoint this pytree to resume."""

    agent: Any
    env: State  # batched: every leaf has num_envs as its leading axis
    key: jax.Array
    iteration: jax.Array  # int32 scalar: completed collect-and-update iterations


def evaluation_keys(key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(the state's next key, the key the evaluation episodes reset from, the key their sampled
    actions come from when not deterministic_eval), three independent keys.

    With JAX's partitionable threefry, split(k, n)[i] is the same key for every n, and
    fold_in(k, i) is split(k, n)[i]: a key derived from reset_key by either would be one of
    the episodes' reset keys, so the actions are split from the state's key beside it.
    """
    return tuple(jax.random.split(key, 3))


class Trainer:
    """Builds the environment batch and the agent for `config`; all methods are pure.

    `env` overrides `config.env` with an already-built single environment; `agent` overrides
    the agent built from `config.agent`. Raises ConfigError for an environment whose interface
    does not fit the agent (checked here, before anything compiles).
    """

    def __init__(
        self,
        config: Config,
        env: Env | None = None,
        agent: Agent | None = None,
        validate_config: bool = True,
    ):
        # A sweep that vmaps numeric fields builds trainers from traced values: it validates
        # the concrete configs first and passes validate_config=False.
        self.config = validate(config) if validate_config else config
        train = config.train
        if env is None:
            env = envs.make(
                config.env.name,
                config.env.backend,
                unroll_substeps=unrolled_substeps(config.env, jax.default_backend()),
                **config.env.make_kwargs(),
            )
        episodic = envs.EpisodeTracker(env, config.env.episode_length)
        self.env = envs.AutoResetBatch(
            episodic, train.num_envs, reset_to_first_state=config.env.reset_to_first_state
        )
        self.eval_env = episodic
        self.fresh_per_step = fresh_starts_per_step(config.env, jax.default_backend())
        self.spec = envs.spec(env)
        # XLA options for jitting this trainer's programs (`envs.compiler_options`): None
        # except for environments that need their own, such as the arm tasks on a CPU.
        self.compiler_options = envs.compiler_options(env)
        self.agent = agent if agent is not None else build_agent(config, self.spec)

    def init(self, key: jax.Array) -> TrainState:
        """The initial state for one seed."""
        agent_key, env_key, key = jax.random.split(key, 3)
        return TrainState(
            agent=self.agent.init(agent_key),
            env=self.env.reset(env_key),
            key=key,
            iteration=jnp.zeros((), jnp.int32),
        )

    def collect(
        self, agent_state: Any, env_state: State, key: jax.Array
    ) -> tuple[State, Transition, Metrics]:
        """Collects one iteration's batch with the current stochastic policy: unrolls_per_iteration
        consecutive unrolls of unroll_length steps of every environment.

        Returns the new batched env state, the (T, N * U) trajectory, whose column n * U + u
        is environment n's u-th unroll (environment-major, so a device holding a block of
        environments holds their columns), and the summed return, length and count of the
        episodes that finished (only these reductions leave the loop).
        """
        num_unrolls = self.config.train.unrolls_per_iteration
        if num_unrolls == 1:
            return self.unroll(agent_state, env_state, key)

        def one(env_state, unroll_key):
            env_state, trajectory, finished = self.unroll(agent_state, env_state, unroll_key)
            return env_state, (trajectory, finished)

        keys = jax.random.split(key, num_unrolls)
        env_state, (trajectory, finished) = jax.lax.scan(one, env_state, keys)
        trajectory = jax.tree.map(unrolls_to_columns, trajectory)
        return env_state, trajectory, jax.tree.map(lambda x: x.sum(0), finished)

    def unroll(
        self, agent_state: Any, env_state: State, key: jax.Array
    ) -> tuple[State, Transition, Metrics]:
        """Steps all environments unroll_length times: (env state, (T, N) trajectory,
        finished-episode sums), as `collect` returns them for one unroll."""

        # Environments that finish take a fresh start built ahead, once per unroll or once per
        # step of it (AutoResetBatch.step_with_fresh), instead of a batched reset on every step.
        num_steps = self.config.train.unroll_length
        per_step = self.fresh_per_step
        fresh, env_state = self.env.fresh_states(env_state, num_steps if per_step else None)

        def step(carry, inputs):
            env_state, available, finished = carry
            step_key, own_fresh = inputs  # this step's own starts, or None: the unroll's
            action, policy = self.agent.act(agent_state, env_state.obs, step_key, False)
            next_state, available = self.env.step_with_fresh(
                env_state, action, fresh if own_fresh is None else own_fresh, available
            )
            done = next_state.done
            truncation = next_state.info["truncation"]
            # Summed per environment here and over environments once after the scan: a sum
            # over the batch on every step would be a reduction kernel apiece on a GPU.
            finished = {
                "return": finished["return"] + done * next_state.info["last_episode_return"],
                "length": finished["length"] + done * next_state.info["last_episode_length"],
                "count": finished["count"] + done,
            }
            transition = Transition(
                obs=env_state.obs,
                policy=policy,
                reward=next_state.reward,
                termination=done * (1.0 - truncation),
                truncation=truncation,
                next_obs=next_state.info["final_obs"],
            )
            return (next_state, available, finished), transition

        num_envs = self.config.train.num_envs
        zeros = {name: jnp.zeros((num_envs,)) for name in ("return", "length", "count")}
        keys = jax.random.split(key, num_steps)
        available = None if per_step else jnp.ones((num_envs,), bool)
        (env_state, _, finished), trajectory = jax.lax.scan(
            step, (env_state, available, zeros), (keys, fresh if per_step else None)
        )
        return env_state, trajectory, jax.tree.map(jnp.sum, finished)

    def iteration(self, state: TrainState) -> tuple[TrainState, Metrics]:
        """One collect-and-update step."""
        key, collect_key, update_key = jax.random.split(state.key, 3)
        env_state, trajectory, finished = self.collect(state.agent, state.env, collect_key)
        agent_state, metrics = self.agent.update(state.agent, trajectory, update_key)
        metrics = dict(metrics, **{f"finished/{k}": v for k, v in finished.items()})
        return TrainState(agent_state, env_state, key, state.iteration + 1), metrics

    def run_iterations(self, state: TrainState, num_iterations: int) -> tuple[TrainState, Metrics]:
        """`num_iterations` iterations in one scan; metrics averaged over them.

        Training episode statistics cover the episodes that finished during these iterations.
        With `train.check_finite`, metrics also hold "health/nonfinite_iteration": the number
        of the first iteration whose metrics (losses, gradient norms) or parameters were not
        finite, -1 if none was; and "health/nonfinite/NAME" (1.0 for each metric, or
        "parameters", that was non-finite then). The iterations after it still run (a `cond`
        around them would cost the in-place updates of large states); callers stop there.
        """
        check = self.config.train.check_finite
        first_iteration = state.iteration

        def step(state, _):
            return self.iteration(state)

        state, metrics = scan_metrics(step, state, length=num_iterations)
        if check:
            # Read from the stacked per-iteration metrics after the scan, so the training
            # steps themselves carry no checks. Parameters are checked once, at the end: they
            # only turn non-finite through a non-finite gradient, which the gradient-norm
            # metrics flag in the same iteration.
            flags = {
                name: ~jnp.isfinite(value)
                for name, value in metrics.items()
                if not name.startswith("finished/")
            }
            params = getattr(state.agent, "params", state.agent)
            bad_params = ~jnp.all(
                jnp.stack([jnp.isfinite(p).all() for p in jax.tree.leaves(params)])
            )
            any_bad = jnp.any(jnp.stack(list(flags.values())), axis=0)  # (num_iterations,)
            index = jnp.where(any_bad.any(), jnp.argmax(any_bad), num_iterations - 1)
            bad = any_bad.any() | bad_params
            first_bad = {
                "iteration": jnp.where(bad, first_iteration + index + 1, -1).astype(jnp.int32),
                "flags": {name: bad & flag[index] for name, flag in flags.items()},
            }
            first_bad["flags"]["parameters"] = bad_params & ~any_bad.any()
        finished = {
            k[len("finished/") :]: metrics.pop(k).sum()
            for k in list(metrics)
            if k.startswith("finished/")
        }
        count = jnp.maximum(finished["count"], 1.0)
        # An agent that skips some updates (e.g. while filling a replay buffer) marks those it took
        # with "trained"; its metrics are averaged over those only.
        trained = metrics.pop("trained", None)
        if trained is None:
            metrics = {f"train/{k}": v.mean() for k, v in metrics.items()}
        else:
            taken = jnp.maximum(trained.sum(), 1.0)
            metrics = {f"train/{k}": (v * trained).sum() / taken for k, v in metrics.items()}
            metrics["train/trained_fraction"] = trained.mean()
        metrics["train/episode_return"] = finished["return"] / count
        metrics["train/episode_length"] = finished["length"] / count
        metrics["train/episodes"] = finished["count"]
        if check:
            metrics["health/nonfinite_iteration"] = first_bad["iteration"]
            for name, flag in first_bad["flags"].items():
                metrics[f"health/nonfinite/{name}"] = flag.astype(jnp.float32)
        return state, metrics

    def evaluate(self, state: TrainState) -> tuple[TrainState, Metrics]:
        """Runs one episode in each of num_eval_envs fresh environments, with the policy's
        mode (train.deterministic_eval) or sampled actions.

        Returns the state (only its key advances) and, averaged over the episodes,
        eval/episode_return, eval/episode_length and the per-episode metrics the environment
        declares (`EnvSpec.episode_metrics`; goal-conditioned ones: eval/success_rate,
        eval/time_at_goal, eval/final_distance). An environment that declares none gets every
        `state.metrics` entry summed over its episode, eval/episode_NAME, as brax's evaluator
        reports them.
        """
        key, reset_key, act_key = evaluation_keys(state.key)
        num = self.config.train.num_eval_envs
        deterministic = self.config.train.deterministic_eval
        env_state = jax.vmap(self.eval_env.reset)(jax.random.split(reset_key, num))
        declared = self.spec.episode_metrics
        if declared is None:
            declared = tuple((f"episode_{k}", k, "sum") for k in sorted(env_state.metrics))
        declared = (("episode_return", None, "sum"), ("episode_length", None, "sum"), *declared)

        def still_running(carry):
            return jnp.any(carry[1])

        def step(carry):
            env_state, active, old, act_key = carry
            act_key, step_key = jax.random.split(act_key)
            action, _ = self.agent.act(state.agent, env_state.obs, step_key, deterministic)
            env_state = jax.vmap(self.eval_env.step)(env_state, action)
            values = dict(env_state.metrics, episode_return=env_state.reward)
            totals = {}
            for name, source, reduction in declared:
                value = jnp.ones((num,)) if name == "episode_length" else values[source or name]
                totals[name] = _accumulate(reduction, old[name], value, active > 0)
            return env_state, active * (1.0 - env_state.done), totals, act_key

        totals = {name: jnp.full((num,), _START[reduction]) for name, _, reduction in declared}
        _, _, totals, _ = jax.lax.while_loop(
            still_running, step, (env_state, jnp.ones((num,)), totals, act_key)
        )
        metrics = {f"eval/{name}": value.mean() for name, value in totals.items()}
        return state.replace(key=key), metrics

    def train_chunk(self, state: TrainState) -> tuple[TrainState, Metrics]:
        """Trains for one evaluation interval, then evaluates. The CLI's unit of work."""
        state, train_metrics = self.run_iterations(state, self.config.train.iterations_per_eval)
        state, eval_metrics = self.evaluate(state)
        return state, {**train_metrics, **eval_metrics, "iteration": state.iteration}

    def train(
        self, key: jax.Array, progress: Callable[[Metrics], None] | None = None
    ) -> tuple[TrainState, Metrics]:
        """The whole run as one pure function: (final state, metrics stacked over num_evals).

        `progress`, if given, is called on the host with each evaluation's metrics while the
        program runs (through jax.debug.callback; under vmap it is called once per run).
        """

        def chunk(state, _):
            state, metrics = self.train_chunk(state)
            if progress is not None:
                jax.debug.callback(progress, metrics, ordered=True)
            return state, metrics

        return jax.lax.scan(chunk, self.init(key), None, length=self.config.train.num_evals)


# How a per-episode metric folds in each step's value while its episode runs: the start value,
# and (old, value, active) -> new. Every episode has at least one active step.
_START = {"sum": 0.0, "max": -jnp.inf, "last": 0.0}


def _accumulate(reduction: str, old: jax.Array, value: jax.Array, active: jax.Array) -> jax.Array:
    if reduction == "sum":
        return old + jnp.where(active, value, 0.0)
    if reduction == "max":
        return jnp.where(active, jnp.maximum(old, value), old)
    if reduction == "last":
        return jnp.where(active, value, old)
    raise ValueError(f"unknown episode-metric reduction {reduction!r}; use sum, max or last")


def make_train(
    config: Config, env: Env | None = None, agent: Agent | None = None
) -> Callable[[jax.Array], tuple[TrainState, Metrics]]:
    """Returns train(key) -> (final TrainState, metrics stacked over evaluations).

    `jax.jit(train)(key)` runs the whole training; `jax.vmap(train)(keys)` trains many seeds in
    one program.
    """
    return Trainer(config, env, agent).train
