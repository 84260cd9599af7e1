"""purerl's PPO and Brax's algorithm in lockstep: whole runs on the same random numbers.

    python -m experiments.benchmarks.lockstep --seeds 3 --json runs/bench/lockstep.json

Brax's trainer draws its random numbers in its own order, so its run for a seed and purerl's
are two draws of the algorithm, and on a task whose runs either take off or stall
(inverted_pendulum at the issue's setting) only many seeds compare them. This runs Brax's
algorithm rebuilt from brax.training's own pieces (the training wrappers with Brax's
reset, `acting.actor_step` with Brax's policy, `running_statistics.update`,
`compute_ppo_loss` with its entropy bonus, optax's Adam, and `acting.Evaluator` for its
evaluations) beside purerl's trainer with Brax's algorithm and reset (`BRAX_PPO`,
`env.reset_to_first_state`), from the same initial networks and environments, and gives each
of its iterations and evaluations the key purerl's uses. If the two are one algorithm, each
seed's two curves are one run, up to float rounding that the task may amplify.

Reported per seed: both curves (the deterministic policy on `--num-eval-envs` episodes at
step 0 and after every interval), and at every evaluation the largest relative distance
between the two sides' parameters (policy and value, each leaf's norm of the difference over
its norm).

`brax_trainer_run` drives the same pieces with the keys Brax's trainer itself draws for a
seed (`brax_iteration_keys`), so they can be checked against `ppo.train` run by run
(tests/test_ppo_options.py); `BraxPieces.step` gives them purerl's (`purerl_iteration_keys`).

Brax's pieces run in this environment: brax is one of purerl's dependencies.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np


def brax_params_of(params):
    """purerl's MLP parameters in brax.training's naming (hidden_0, hidden_1, ...)."""
    mlp = params["params"]["MLP_0"]
    return {"params": {f"hidden_{i}": mlp[f"Dense_{i}"] for i in range(len(mlp))}}


def brax_networks_for(obs_size, action_size, policy_sizes, value_sizes):
    """brax.training's PPO networks (observations normalised by brax's running statistics),
    which take purerl's parameters through brax_params_of."""
    from brax.training.acme import running_statistics
    from brax.training.agents.ppo import networks as brax_networks

    return brax_networks.make_ppo_networks(
        obs_size,
        action_size,
        preprocess_observations_fn=running_statistics.normalize,
        policy_hidden_layer_sizes=policy_sizes,
        value_hidden_layer_sizes=value_sizes,
    )


class BraxState(NamedTuple):
    """What Brax's training step carries from one iteration to the next."""

    params: Any  # brax's PPONetworkParams
    adam: Any
    normalizer: Any  # brax's RunningStatisticsState
    env: Any  # the training wrappers' batched state


class IterationKeys(NamedTuple):
    """Every key one training step uses: each step's actions (T,), each epoch's shuffle (E,)
    and each minibatch's loss, which draws the entropy's sample (E, M)."""

    actions: Any
    shuffles: Any
    losses: Any


def purerl_iteration_keys(key, config) -> IterationKeys:
    """The keys purerl's `Trainer.iteration` and `PPOAgent.update` split from `state.key`."""
    import jax

    agent = config.agent
    _, collect_key, update_key = jax.random.split(key, 3)
    epochs = jax.random.split(update_key, agent.num_epochs)
    shuffles, losses = jax.vmap(jax.random.split, out_axes=1)(epochs)
    return IterationKeys(
        jax.random.split(collect_key, config.train.unroll_length),
        shuffles,
        jax.vmap(lambda k: jax.random.split(k, agent.num_minibatches))(losses),
    )


def brax_iteration_keys(key, config) -> IterationKeys:
    """The keys Brax's trainer (brax 0.14.2, `training_step`) draws from its training step's
    key: `acting.generate_unroll` and `sgd_step` each split a key carried from step to step."""
    import jax

    def chain(key, length, width, carried):
        """`length` splits into `width` keys, each of the key the previous one carried on
        (its index `carried`): the other keys of each split, (length, width - 1)."""

        def draw(carry, _):
            keys = jax.random.split(carry, width)
            return keys[carried], jax.numpy.delete(keys, carried, axis=0)

        return jax.lax.scan(draw, key, None, length=length)[1]

    agent = config.agent
    key_sgd, key_generate_unroll, _ = jax.random.split(key, 3)
    first = jax.random.split(key_generate_unroll)[0]  # training_step's f, one unroll
    # generate_unroll: `current_key, next_key = split(current_key)`, acting on current_key.
    actions = chain(first, config.train.unroll_length, 2, carried=1)[:, 0]
    # sgd_step: `key, key_perm, key_grad = split(key, 3)`; minibatch_step: `key, key_loss =
    # split(key)`, from key_grad.
    epochs = chain(key_sgd, agent.num_epochs, 3, carried=0)
    losses = jax.vmap(lambda k: chain(k, agent.num_minibatches, 2, carried=0)[:, 0])(epochs[:, 1])
    return IterationKeys(actions, epochs[:, 0], losses)


# purerl's settings that are Brax's algorithm, which the rebuilt step below implements.
BRAX_FORM = {
    "advantage_estimation": "per_minibatch",
    "advantage": "one_step_lambda_return",
    "policy_scale": "softplus",
    "min_std": 1e-3,
    "activation": "swish",
    "observation_clip": None,
    "max_grad_norm": None,
    "bootstrap_on_timeout": False,
    "normalize_advantages": True,
    "normalize_rewards": False,
    "clip_value_loss": False,
    "anneal_learning_rate": False,
}


@dataclasses.dataclass(frozen=True)
class BraxPieces:
    """Brax's PPO at a purerl trainer's settings, built from brax.training's own pieces (its
    environment, networks and optimiser built once, on first use)."""

    trainer: Any  # purerl.Trainer with Brax's algorithm and reset

    def __post_init__(self):
        config = self.trainer.config
        agent = config.agent
        wrong = {k: getattr(agent, k) for k, v in BRAX_FORM.items() if getattr(agent, k) != v}
        if wrong or not config.env.reset_to_first_state or config.train.unrolls_per_iteration != 1:
            raise ValueError(
                f"the lockstep needs purerl in Brax's form ({BRAX_FORM}), "
                f"env.reset_to_first_state and one unroll per iteration; differs: {wrong}"
            )

    @functools.cached_property
    def env(self):
        from brax import envs as brax_envs
        from brax.envs.wrappers import training as brax_training

        config = self.trainer.config.env
        return brax_training.wrap(
            brax_envs.get_environment(config.name, backend=config.backend),
            episode_length=config.episode_length,
        )

    @functools.cached_property
    def networks(self):
        agent, spec = self.trainer.config.agent, self.trainer.spec
        return brax_networks_for(
            spec.observation_size,
            spec.action_size,
            agent.policy_hidden_sizes,
            agent.value_hidden_sizes,
        )

    @functools.cached_property
    def adam(self):
        import optax

        agent = self.trainer.config.agent
        return optax.adam(agent.learning_rate, eps=agent.adam_epsilon)

    def init(self, key, purerl_start) -> BraxState:
        """Brax's state at purerl's start for `key` (`Trainer.init(key)`): the same networks
        and the same environments."""
        import jax
        from brax.training.acme import running_statistics
        from brax.training.agents.ppo import losses as brax_losses

        _, env_key, _ = jax.random.split(key, 3)  # Trainer.init's
        env_keys, _ = self.trainer.env.reset_keys(env_key)
        policy, value = purerl_start.agent.params["policy"], purerl_start.agent.params["value"]
        params = brax_losses.PPONetworkParams(brax_params_of(policy), brax_params_of(value))
        normalizer = running_statistics.init_state(
            jax.numpy.zeros(self.trainer.spec.observation_size)
        )
        return BraxState(params, self.adam.init(params), normalizer, self.env.reset(env_keys))

    def step(self, state: BraxState, key):
        """One training step of Brax's algorithm on the key purerl's `Trainer.iteration`
        takes (its `state.key`), split as purerl splits it: (new state, the batch collected,
        environment-major)."""
        return self.step_on(state, purerl_iteration_keys(key, self.trainer.config))

    def step_on(self, state: BraxState, keys: IterationKeys):
        """One training step of Brax's algorithm on the given keys: (new state, the batch
        collected, environment-major)."""
        import jax
        import jax.numpy as jnp
        import optax
        from brax.training import acting
        from brax.training.acme import running_statistics
        from brax.training.agents.ppo import losses as brax_losses
        from brax.training.agents.ppo import networks as brax_networks

        agent, train = self.trainer.config.agent, self.trainer.config.train
        env, networks, adam = self.env, self.networks, self.adam
        policy = brax_networks.make_inference_fn(networks)(
            (state.normalizer, state.params.policy, state.params.value)
        )

        def act(env_state, step_key):
            return acting.actor_step(env, env_state, policy, step_key, extra_fields=("truncation",))

        env_state, data = jax.lax.scan(act, state.env, keys.actions)
        data = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), data)
        normalizer = running_statistics.update(state.normalizer, data.observation)

        def loss(params, minibatch, loss_key):
            return brax_losses.compute_ppo_loss(
                params,
                normalizer,
                minibatch,
                loss_key,
                networks,
                entropy_cost=agent.entropy_coef,
                discounting=agent.discount,
                reward_scaling=agent.reward_scale,
                gae_lambda=agent.gae_lambda,
                clipping_epsilon=agent.clip_epsilon,
                normalize_advantage=True,
                vf_coefficient=agent.value_loss_coef,
            )[0]

        minibatches = agent.num_minibatches

        def epoch(carry, keys):
            shuffle_key, loss_keys = keys
            rows = jax.random.permutation(shuffle_key, train.num_envs).reshape(minibatches, -1)

            def minibatch_step(carry, rows_and_key):
                params, adam_state = carry
                rows, minibatch_key = rows_and_key
                minibatch = jax.tree.map(lambda x: x[rows], data)
                grads = jax.grad(loss)(params, minibatch, minibatch_key)
                updates, adam_state = adam.update(grads, adam_state, params)
                return (optax.apply_updates(params, updates), adam_state), None

            return jax.lax.scan(minibatch_step, carry, (rows, loss_keys))[0], None

        (params, adam_state), _ = jax.lax.scan(
            epoch, (state.params, state.adam), (keys.shuffles, keys.losses)
        )
        return BraxState(params, adam_state, normalizer, env_state), data

    @functools.cached_property
    def training_epoch(self):
        """Brax's `training_epoch` on its own keys, jitted: iterations_per_eval training steps,
        each splitting its key as `training_step` does; (state, key) -> state."""
        import jax

        config = self.trainer.config

        def training_step(carry, _):
            state, key = carry
            new_key = jax.random.split(key, 3)[2]
            state, _ = self.step_on(state, brax_iteration_keys(key, config))
            return (state, new_key), None

        def epoch(state, key):
            steps = config.train.iterations_per_eval
            (state, _), _ = jax.lax.scan(training_step, (state, key), None, length=steps)
            return state

        return jax.jit(epoch)

    @functools.cached_property
    def trainer_evaluator(self):
        """One Evaluator for `brax_trainer_run`, whose key each run replaces."""
        import jax

        return self.evaluator(jax.random.PRNGKey(0))

    def evaluator(self, key):
        """brax.training's Evaluator (what Brax's trainer reports) at the trainer's evaluation
        settings: its number of episodes, and the policy's mode unless deterministic_eval is
        off."""
        from brax.training import acting
        from brax.training.agents.ppo import networks as brax_networks

        train = self.trainer.config.train
        return acting.Evaluator(
            self.env,
            functools.partial(
                brax_networks.make_inference_fn(self.networks),
                deterministic=train.deterministic_eval,
            ),
            num_eval_envs=train.num_eval_envs,
            episode_length=self.trainer.config.env.episode_length,
            action_repeat=1,
            key=key,
        )


def brax_trainer_run(pieces: BraxPieces, seed: int) -> tuple[list[float], Any]:
    """Brax's pieces on the keys Brax's trainer (brax 0.14.2's `ppo.train`, one process, one
    device) draws for `seed`: its networks, environments, training steps and evaluations, at
    the trainer's settings (an evaluation at step 0 and after each of num_evals intervals).
    Returns the evaluation returns and the final (normaliser, policy, value) parameters,
    which `ppo.train` returns too. If the pieces are Brax's trainer, both coincide with it."""
    import jax
    from brax.training.acme import running_statistics
    from brax.training.agents.ppo import losses as brax_losses

    config, networks = pieces.trainer.config, pieces.networks
    key = jax.random.PRNGKey(seed)
    global_key, local_key = jax.random.split(key)
    local_key = jax.random.fold_in(local_key, 0)  # process 0
    local_key, key_env, eval_key = jax.random.split(local_key, 3)
    key_policy, key_value = jax.random.split(global_key)
    params = brax_losses.PPONetworkParams(
        networks.policy_network.init(key_policy), networks.value_network.init(key_value)
    )
    state = BraxState(
        params,
        pieces.adam.init(params),
        running_statistics.init_state(jax.numpy.zeros(pieces.trainer.spec.observation_size)),
        pieces.env.reset(jax.random.split(key_env, config.train.num_envs)),
    )

    # Compiled once per pieces, and the one Evaluator given this seed's key, so that a loop
    # over seeds compiles nothing after its first.
    evaluator = pieces.trainer_evaluator
    evaluator._key = eval_key

    def evaluate(state):
        params = (state.normalizer, state.params.policy, state.params.value)
        return float(evaluator.run_evaluation(params, {})["eval/episode_reward"])

    curve = [evaluate(state)]
    for _ in range(config.train.num_evals):
        epoch_key, local_key = jax.random.split(local_key)
        state = pieces.training_epoch(state, jax.random.split(epoch_key, 1)[0])  # one device
        curve.append(evaluate(state))
    return curve, (state.normalizer, state.params.policy, state.params.value)


def relative_distance(ours, theirs) -> float:
    """The largest, over leaves, of |ours - theirs| / |theirs| (Frobenius norms)."""
    import jax

    return max(
        float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True)
    )


class Lockstep:
    """Runs seeds in lockstep. Both sides' programs (purerl's iteration and evaluation,
    Brax's steps between evaluations, Brax's Evaluator) are compiled once, on the first seed,
    and reused for every seed after it."""

    def __init__(self, pieces: BraxPieces):
        import jax

        self.pieces = pieces
        self.iteration = jax.jit(pieces.trainer.iteration)
        self.evaluate = jax.jit(pieces.trainer.evaluate)
        self.brax_steps = jax.jit(lambda state, keys: jax.lax.scan(pieces.step, state, keys)[0])
        # Its key is replaced before every evaluation (run_seed).
        self.evaluator = pieces.evaluator(jax.random.PRNGKey(0))

    def run_seed(self, seed: int) -> dict:
        """One seed: purerl's run on the keys of `curves`' (the step-0 evaluation leaves the
        training key alone, then `Trainer.train`'s iterations and evaluations, here one
        jitted call each, so its numbers drift from `curves`' run of the seed by rounding),
        beside Brax's pieces on the same keys."""
        import jax

        pieces, train = self.pieces, self.pieces.trainer.config.train
        key = jax.random.PRNGKey(seed)
        state = pieces.trainer.init(key)
        brax_state = pieces.init(key, state)
        curves = {"purerl": [], "brax": []}
        distances = []
        for interval in range(train.num_evals + 1):
            if interval:
                keys = []
                for _ in range(train.iterations_per_eval):
                    keys.append(state.key)
                    state, _ = self.iteration(state)
                brax_state = self.brax_steps(brax_state, jax.numpy.stack(keys))
            # The Evaluator draws its reset keys from its key as Trainer.evaluate does from
            # the trainer's (tests/test_ppo_options.py), so it gets the trainer's key each time.
            self.evaluator._key = state.key
            theirs = self.evaluator.run_evaluation(
                (brax_state.normalizer, brax_state.params.policy, brax_state.params.value), {}
            )
            after, ours = self.evaluate(state)
            if interval:  # the step-0 evaluation leaves the training key alone, as in curves
                state = after
            curves["purerl"].append(float(ours["eval/episode_return"]))
            curves["brax"].append(float(theirs["eval/episode_reward"]))
            distances.append(
                {
                    name: relative_distance(
                        brax_params_of(state.agent.params[name]),
                        getattr(brax_state.params, name),
                    )
                    for name in ("policy", "value")
                }
            )
            print(
                f"[seed {seed}] eval {interval}: purerl {curves['purerl'][-1]:.1f}, "
                f"brax {curves['brax'][-1]:.1f}, distance {distances[-1]}",
                file=sys.stderr,
                flush=True,
            )
        return {"seed": seed, **curves, "distance": distances}


def markdown(result: dict) -> str:
    from experiments.benchmarks.curves import area_under_curve

    steps = np.asarray(result["steps"], dtype=np.float64)
    lines = [
        "| seed | purerl curve | Brax's pieces, same keys | areas | largest parameter "
        "distance (policy, value) |",
        "|---:|---|---|---:|---|",
    ]
    for run in result["runs"]:
        areas = [area_under_curve(steps, np.asarray([run[s]]))[0] for s in ("purerl", "brax")]
        last = run["distance"][-1]
        lines.append(
            f"| {run['seed']} | {' '.join(f'{r:.0f}' for r in run['purerl'])} | "
            f"{' '.join(f'{r:.0f}' for r in run['brax'])} | {areas[0]:.0f} / {areas[1]:.0f} | "
            f"{last['policy']:.1e}, {last['value']:.1e} |"
        )
    return "\n".join(lines)


def main(argv=None) -> dict:
    from experiments.benchmarks import curves
    from purerl import Trainer, validate

    p = curves.settings_parser(__doc__.split("\n\n")[0])
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    curves.check_intervals(p, args)
    sizes = {
        "policy_hidden_sizes": tuple(args.policy_hidden_sizes),
        "value_hidden_sizes": tuple(args.value_hidden_sizes),
    }
    config = validate(curves.purerl_config(args, {**sizes, "reset_to_first_state": True}))
    pieces = BraxPieces(Trainer(config))
    lockstep = Lockstep(pieces)
    runs = [lockstep.run_seed(seed) for seed in curves.seeds(args)]
    interval = config.train.iterations_per_eval * config.train.steps_per_iteration
    result = {
        "config": vars(args),
        "steps": [k * interval for k in range(args.num_evals + 1)],
        "runs": runs,
    }
    print(markdown(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
