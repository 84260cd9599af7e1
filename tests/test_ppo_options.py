"""PPO's options for matching Brax and PureJaxRL, each against an independent reference."""

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.benchmarks.lockstep import (
    BraxPieces,
    Lockstep,
    brax_networks_for,
    brax_params_of,
    brax_trainer_run,
    relative_distance,
)
from purerl import Config, EnvConfig, PPOConfig, TrainConfig, Trainer
from purerl.agents.ppo.agent import RewardNormalizer, normalize_rewards, shuffled_minibatches
from purerl.agents.ppo.loss import PPOBatch, PPOTrajectoryBatch
from purerl.gae import one_step_lambda_advantages
from purerl.networks import Body, GaussianPolicy, orthogonal
from purerl.normalize import init_statistics


def test_reward_normalization_matches_python_loop():
    """Each step: return = discount * return + reward, statistics take the batch of returns
    (mean and population variance over everything so far), reward / sqrt(var + 1e-8); returns
    restart after a step that ended the episode."""
    rng = np.random.default_rng(0)
    steps, envs, discount = 6, 3, 0.9
    rewards = rng.normal(1.0, 2.0, size=(steps, envs))
    dones = np.zeros((steps, envs))
    dones[2, 0] = dones[4, 2] = 1.0
    initial = np.array([0.5, -1.0, 2.0])

    returns_seen, running, expected = [], initial.copy(), np.zeros((steps, envs))
    for t in range(steps):
        running = discount * running + rewards[t]
        returns_seen.extend(running.tolist())
        expected[t] = rewards[t] / np.sqrt(np.var(returns_seen) + 1e-8)
        running = running * (1.0 - dones[t])

    normalizer = RewardNormalizer(jnp.asarray(initial, jnp.float32), init_statistics(1))
    normalizer, scaled = normalize_rewards(
        normalizer, jnp.asarray(rewards, jnp.float32), jnp.asarray(dones, jnp.float32), discount
    )
    np.testing.assert_allclose(scaled, expected, rtol=1e-4)
    np.testing.assert_allclose(normalizer.discounted_return, running, rtol=1e-5)
    assert float(normalizer.statistics.count) == steps * envs


def test_reward_normalization_follows_each_environment_through_its_unrolls():
    """With 2 unrolls of 3 steps per batch, environment n's return runs through its columns
    2n (first unroll) then 2n + 1: the same numbers as one 6-step stream per environment."""
    rng = np.random.default_rng(1)
    streams = rng.normal(0.5, 1.5, size=(6, 3))  # (U * T, N)
    dones = np.zeros((6, 3))
    dones[3, 1] = 1.0
    columns = lambda x: x.reshape(2, 3, 3).transpose(1, 2, 0).reshape(3, 6)  # noqa: E731
    start = RewardNormalizer(jnp.zeros(3), init_statistics(1))
    stream_normalizer, stream_scaled = normalize_rewards(start, streams, dones, 0.9)
    normalizer, scaled = normalize_rewards(start, columns(streams), columns(dones), 0.9, 2)
    np.testing.assert_allclose(scaled, columns(np.asarray(stream_scaled)), rtol=1e-6)
    np.testing.assert_allclose(scaled[:, 2], np.asarray(stream_scaled)[:3, 1], rtol=1e-6)
    np.testing.assert_allclose(normalizer.discounted_return, stream_normalizer.discounted_return)


def test_softplus_scale_is_state_dependent_and_hand_computed():
    # No hidden layers: the network is one Dense layer, out = obs @ W + b.
    policy = GaussianPolicy(Body("mlp", ()), action_size=2, scale="softplus", min_std=0.001)
    obs = jnp.array([[0.5, -1.0, 2.0], [0.0, 1.0, 0.0]])
    params = policy.init(jax.random.PRNGKey(0), obs)
    dense = params["params"]["MLP_0"]["Dense_0"]
    out = np.asarray(obs) @ np.asarray(dense["kernel"]) + np.asarray(dense["bias"])
    distribution = policy.apply(params, obs)
    np.testing.assert_allclose(distribution.loc, out[:, :2], rtol=1e-5)
    np.testing.assert_allclose(distribution.scale, np.log1p(np.exp(out[:, 2:])) + 0.001, 1e-5)
    assert not np.allclose(distribution.scale[0], distribution.scale[1])
    assert "log_std" not in params["params"]


def test_lecun_uniform_init_on_every_layer():
    body = Body("mlp", (64, 64), kernel_init="lecun_uniform")
    policy = GaussianPolicy(body, action_size=3)
    params = policy.init(jax.random.PRNGKey(1), jnp.zeros((1, 5)))["params"]["MLP_0"]
    for name, fan_in in (("Dense_0", 5), ("Dense_1", 64), ("Dense_2", 64)):
        kernel = np.asarray(params[name]["kernel"])
        limit = np.sqrt(3.0 / fan_in)
        assert np.abs(kernel).max() <= limit
        # A uniform on [-limit, limit] has std limit / sqrt(3): the head is not shrunk.
        assert kernel.std() > 0.7 * limit / np.sqrt(3)
    orthogonal = GaussianPolicy(Body("mlp", (64, 64)), action_size=3)
    head = orthogonal.init(jax.random.PRNGKey(1), jnp.zeros((1, 5)))["params"]["MLP_0"]
    assert np.abs(np.asarray(head["Dense_2"]["kernel"])).max() < 0.05  # gain 0.01


def test_vmapped_orthogonal_init_has_no_batched_qr_and_keeps_jax_values():
    """A batched LAPACK QR can wedge XLA's CPU thread pool (seen: a vmapped seed sweep hung
    1 run in 6 on 2 cores), so a vmapped init must lower to unbatched QRs only, with the
    values of jax.nn.initializers.orthogonal."""
    policy = GaussianPolicy(Body("mlp", (64, 64)), action_size=3)
    keys = jax.random.split(jax.random.PRNGKey(3), 4)

    def init(key):
        return policy.init(key, jnp.zeros((1, 5)))["params"]["MLP_0"]

    hlo = jax.jit(jax.vmap(init)).lower(keys).as_text()
    qrs = [line for line in hlo.splitlines() if "geqrf" in line and "custom_call" in line]
    assert len(qrs) == 3  # one per layer, inside a lax.map
    assert all('num_batch_dims = "0"' in line for line in qrs)
    batched = jax.vmap(init)(keys)
    for index, key in enumerate(keys):
        single = init(key)
        for name in ("Dense_0", "Dense_1"):
            np.testing.assert_array_equal(batched[name]["kernel"][index], single[name]["kernel"])
    # The same draw as jax's initializer, gain included.
    dense_key = jax.random.split(jax.random.PRNGKey(0))[0]
    ours = nn.Dense(64, kernel_init=orthogonal(np.sqrt(2))).init(dense_key, jnp.zeros((1, 5)))
    theirs = nn.Dense(64, kernel_init=jax.nn.initializers.orthogonal(np.sqrt(2))).init(
        dense_key, jnp.zeros((1, 5))
    )
    np.testing.assert_array_equal(ours["params"]["kernel"], theirs["params"]["kernel"])


def agent_for(**ppo):
    config = Config(
        EnvConfig("point_reach", episode_length=8),
        TrainConfig(num_envs=4, unroll_length=10, total_env_steps=400, num_evals=1),
        PPOConfig(num_minibatches=2, policy_hidden_sizes=(8,), value_hidden_sizes=(8,), **ppo),
    )
    return Trainer(config)


@pytest.mark.parametrize("clip", [None, 0.5])
def test_gradient_clipping_off_or_on_and_adam_epsilon(clip):
    agent = agent_for(max_grad_norm=clip, adam_epsilon=1e-8).agent
    params = {"w": jnp.ones(3)}
    state = agent.optimizer.init(params)
    reference = optax.adam(3e-4, eps=1e-8)
    if clip is not None:
        reference = optax.chain(optax.clip_by_global_norm(clip), reference)
    reference_state = reference.init(params)
    # Two steps of very different size: Adam's second update depends on the ratio, which
    # clipping changes.
    for grad in ({"w": jnp.array([1.0, -2.0, 0.5])}, {"w": jnp.array([300.0, 10.0, -40.0])}):
        updates, state = agent.optimizer.update(grad, state, params)
        expected, reference_state = reference.update(grad, reference_state, params)
        np.testing.assert_allclose(updates["w"], expected["w"], rtol=1e-6)
    unclipped = optax.adam(3e-4, eps=1e-8)
    unclipped_state = unclipped.init(params)
    for grad in ({"w": jnp.array([1.0, -2.0, 0.5])}, {"w": jnp.array([300.0, 10.0, -40.0])}):
        plain, unclipped_state = unclipped.update(grad, unclipped_state, params)
    assert np.allclose(updates["w"], plain["w"]) == (clip is None)


def test_raveled_optimizer_steps_as_the_tree_and_gives_its_state_back():
    """purerl.optim.raveled: clip + Adam on a schedule, stepped on one vector, equal to the same
    steps on the tree, and the state back in the tree's layout (checkpoints keep it)."""
    from purerl.optim import raveled

    params = {"a": {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}, "c": jnp.arange(4.0)}
    optimizer = optax.chain(
        optax.clip_by_global_norm(0.5), optax.adam(optax.linear_schedule(1e-3, 0.0, 10))
    )
    tree_params, tree_state = params, optimizer.init(params)
    flat, flat_state, unravel, back = raveled(params, tree_state)
    assert flat.shape == (12,)
    for scale in (1.0, 30.0):
        grads = jax.tree.map(
            lambda x, s=scale: s * jnp.cos(jnp.arange(x.size)).reshape(x.shape), params
        )
        updates, tree_state = optimizer.update(grads, tree_state, tree_params)
        tree_params = optax.apply_updates(tree_params, updates)
        flat_grads = jax.flatten_util.ravel_pytree(grads)[0]
        updates, flat_state = optimizer.update(flat_grads, flat_state, flat)
        flat = optax.apply_updates(flat, updates)
    got = back(flat, flat_state)
    assert jax.tree.structure(got) == jax.tree.structure((tree_params, tree_state))
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves((tree_params, tree_state)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_array_equal(unravel(flat)["c"], got[0]["c"])
    assert not np.allclose(got[0]["c"], params["c"])


def trajectory_of(trainer, seed=0):
    state = trainer.init(jax.random.PRNGKey(seed))
    _, trajectory, _ = jax.jit(trainer.collect)(state.agent, state.env, jax.random.PRNGKey(9))
    return state.agent, trajectory


def test_update_equals_a_python_loop_over_epochs_and_minibatches():
    """Two agent.update calls against the same steps taken one at a time in Python on the
    parameter tree, leaf by leaf (the agent steps them raveled into one vector, its optimizer
    state too): the parameters, the optimizer state and every reported metric (the mean over
    all num_epochs x num_minibatches steps of a call)."""
    trainer = agent_for(num_epochs=2, max_grad_norm=0.5)
    agent = trainer.agent
    updated, trajectory = trajectory_of(trainer)
    params, optimizer_state = updated.params, updated.optimizer_state
    for key in jax.random.split(jax.random.PRNGKey(5)):
        state, batch = agent.prepare_batch(updated.replace(params=params), trajectory)
        updated, metrics = jax.jit(agent.update)(updated, trajectory, key)
        steps = []
        for epoch_key in jax.random.split(key, 2):
            shuffle_key, loss_key = jax.random.split(epoch_key)
            minibatches = shuffled_minibatches(batch, shuffle_key, 2)
            for i, loss_key_i in enumerate(jax.random.split(loss_key, 2)):
                minibatch = jax.tree.map(lambda x, i=i: x[i], minibatches)
                grads, step = jax.grad(agent.loss, has_aux=True)(params, minibatch, loss_key_i)
                step["optimizer/grad_norm"] = optax.global_norm(grads)
                updates, optimizer_state = agent.optimizer.update(grads, optimizer_state, params)
                params = optax.apply_updates(params, updates)
                steps.append(step)

        assert set(metrics) == set(steps[0]) and len(metrics) >= 7
        for name in metrics:
            expected = np.mean([float(step[name]) for step in steps])
            np.testing.assert_allclose(metrics[name], expected, rtol=1e-5, atol=1e-7, err_msg=name)
        assert jax.tree.structure(updated.optimizer_state) == jax.tree.structure(optimizer_state)
        ours = jax.tree.leaves((updated.params, updated.optimizer_state))
        for a, b in zip(ours, jax.tree.leaves((params, optimizer_state)), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_observation_statistics_updated_or_as_acted():
    """With "updated" the batch is normalised with statistics that have absorbed it; with
    "as_acted" with those the policy acted with, so at a learning rate of 1e-12 every ratio is
    1 (no KL, nothing clipped). Either way the state leaves with the statistics that absorbed
    the batch."""
    trainers = {
        mode: agent_for(
            observation_statistics=mode,
            observation_clip=None,
            learning_rate=1e-12,
            kernel_init="lecun_uniform",
        )
        for mode in ("updated", "as_acted")
    }
    # One whole iteration first, so the policy acts with statistics that are not the identity.
    first = trainers["updated"]
    state, _ = jax.jit(first.iteration)(first.init(jax.random.PRNGKey(0)))
    acted = state.agent.normalizer
    seen = first.config.train.num_envs * first.config.train.unroll_length  # one batch: 40
    assert float(acted.count) == seen == 40
    _, trajectory, _ = jax.jit(first.collect)(state.agent, state.env, state.key)
    obs = np.asarray(trajectory.obs, np.float64)
    mean, variance = np.asarray(acted.mean), np.asarray(acted.variance)
    # The statistics after the batch, merged by hand from the earlier ones and the batch's.
    flat = obs.reshape(-1, obs.shape[-1])
    count = seen + len(flat)
    merged_mean = (seen * mean + flat.sum(0)) / count
    merged_m2 = (
        seen * variance
        + ((flat - flat.mean(0)) ** 2).sum(0)
        + (flat.mean(0) - mean) ** 2 * seen * len(flat) / count
    )
    merged_variance = merged_m2 / count
    kls = {}
    for mode, trainer in trainers.items():
        prepared, batch = trainer.agent.prepare_batch(state.agent, trajectory)
        stats = (mean, variance) if mode == "as_acted" else (merged_mean, merged_variance)
        expected = (obs - stats[0]) / np.sqrt(stats[1] + 1e-8)
        np.testing.assert_allclose(
            np.asarray(batch.obs), expected.reshape(-1, obs.shape[-1]), rtol=1e-4, atol=1e-4
        )
        assert float(prepared.normalizer.count) == count
        np.testing.assert_allclose(prepared.normalizer.mean, merged_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(prepared.normalizer.variance, merged_variance, rtol=1e-4)
        _, metrics = jax.jit(trainer.agent.update)(state.agent, trajectory, jax.random.PRNGKey(3))
        kls[mode] = float(metrics["policy/approx_kl"])
        if mode == "as_acted":
            assert float(metrics["policy/clip_fraction"]) == 0.0
    assert abs(kls["as_acted"]) < 1e-7 and kls["updated"] > 1e-4, kls


def test_timeouts_bootstrap_or_are_masked():
    """episode_length 8 and unroll 10: every environment hits the time limit once."""
    for bootstrap in (True, False):
        trainer = agent_for(bootstrap_on_timeout=bootstrap, normalize_advantages=False)
        agent_state, trajectory = trajectory_of(trainer)
        truncated = np.asarray(trajectory.truncation) > 0
        assert truncated.any()
        prepared, batch = trainer.agent.prepare_batch(agent_state, trajectory)
        advantages = np.asarray(batch.advantage).reshape(truncated.shape)
        targets = np.asarray(batch.value_target).reshape(truncated.shape)
        values = np.asarray(batch.old_value).reshape(truncated.shape)
        if bootstrap:
            # The episode ends there, so the advantage is that step's TD error, bootstrapped
            # from the value of the observation the time limit stopped at (not the reset's).
            agent = trainer.agent
            final_values = agent.value.apply(
                prepared.params["value"],
                agent.normalize(prepared.normalizer, trajectory.next_obs),
            )
            expected = (
                np.asarray(trajectory.reward)
                + agent.config.discount * np.asarray(final_values)
                - values
            )
            np.testing.assert_allclose(advantages[truncated], expected[truncated], rtol=1e-4)
        else:
            np.testing.assert_allclose(advantages[truncated], 0.0)
            np.testing.assert_allclose(targets[truncated], values[truncated], rtol=1e-6)
            # Masked, the final observations at time limits are not valued at all; valuing
            # them (one slot, as when bootstrapping) changes no number.
            assert trainer.agent.truncation_slots == 0
            trainer.agent.truncation_slots = 1
            _, valued = trainer.agent.prepare_batch(agent_state, trajectory)
            jax.tree.map(np.testing.assert_array_equal, batch, valued)


def test_per_minibatch_loss_equals_per_batch_loss_on_the_whole_batch():
    """With one minibatch at the collection parameters, re-estimating advantages inside the
    loss (Brax) gives the loss and gradients of estimating them before (PureJaxRL)."""
    common = dict(action_distribution="clipped_normal", clip_value_loss=True)
    per_batch = agent_for(**common)
    per_minibatch = agent_for(advantage_estimation="per_minibatch", **common)
    agent_state, trajectory = trajectory_of(per_batch)
    _, flat = per_batch.agent.prepare_batch(agent_state, trajectory)
    _, whole = per_minibatch.agent.prepare_batch(agent_state, trajectory)
    assert isinstance(flat, PPOBatch) and isinstance(whole, PPOTrajectoryBatch)
    key = jax.random.PRNGKey(3)
    (loss_a, metrics_a), grads_a = jax.value_and_grad(per_batch.agent.loss, has_aux=True)(
        agent_state.params, flat, key
    )
    (loss_b, metrics_b), grads_b = jax.value_and_grad(per_minibatch.agent.loss, has_aux=True)(
        agent_state.params, whole, key
    )
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-5)
    for name in metrics_a:
        np.testing.assert_allclose(metrics_a[name], metrics_b[name], rtol=1e-4, atol=1e-6)
    for a, b in zip(jax.tree.leaves(grads_a), jax.tree.leaves(grads_b), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_per_minibatch_minibatches_hold_whole_trajectories():
    trainer = agent_for(advantage_estimation="per_minibatch")
    agent_state, trajectory = trajectory_of(trainer)
    _, batch = trainer.agent.prepare_batch(agent_state, trajectory)
    minibatches = shuffled_minibatches(batch, jax.random.PRNGKey(4), 2)
    assert minibatches.obs.shape == (2, 10, 2) + batch.obs.shape[2:]
    seen = []
    for m in range(2):
        for column in range(2):
            obs = np.asarray(minibatches.obs[m, :, column])
            env = [e for e in range(4) if np.array_equal(obs, np.asarray(batch.obs[:, e]))]
            assert len(env) == 1, "a minibatch column is one environment's whole trajectory"
            env = env[0]
            seen.append(env)
            # Every per-environment leaf moved with it.
            np.testing.assert_array_equal(
                minibatches.next_obs.last[m, column], batch.next_obs.last[env]
            )
            np.testing.assert_array_equal(
                minibatches.next_obs.truncated_step[m, :, column],
                batch.next_obs.truncated_step[:, env],
            )
            np.testing.assert_array_equal(minibatches.reward[m, :, column], batch.reward[:, env])
    assert sorted(seen) == [0, 1, 2, 3]


def test_one_step_advantage_is_wired():
    gae = agent_for(normalize_advantages=False)
    brax = agent_for(normalize_advantages=False, advantage="one_step_lambda_return")
    agent_state, trajectory = trajectory_of(gae)
    _, a = gae.agent.prepare_batch(agent_state, trajectory)
    _, b = brax.agent.prepare_batch(agent_state, trajectory)
    np.testing.assert_allclose(a.value_target, b.value_target, rtol=1e-6)  # targets agree
    shape = trajectory.reward.shape
    dones = jnp.maximum(trajectory.termination, trajectory.truncation)
    expected = one_step_lambda_advantages(
        a.advantage.reshape(shape), dones, gae.agent.config.discount, gae.agent.config.gae_lambda
    )
    np.testing.assert_allclose(b.advantage, expected.reshape(-1), rtol=1e-5, atol=1e-6)
    assert not np.allclose(a.advantage, b.advantage)


def test_stochastic_evaluation_samples_and_is_reproducible():
    config = Config(
        EnvConfig("point_reach", episode_length=20),
        TrainConfig(num_envs=4, unroll_length=5, total_env_steps=20, num_evals=1),
        PPOConfig(init_log_std=0.5),
    )
    deterministic = Trainer(config)
    stochastic = Trainer(
        dataclasses.replace(
            config, train=dataclasses.replace(config.train, deterministic_eval=False)
        )
    )
    state = deterministic.init(jax.random.PRNGKey(0))
    mode = jax.jit(deterministic.evaluate)(state)[1]["eval/episode_return"]
    sampled = jax.jit(stochastic.evaluate)(state)[1]["eval/episode_return"]
    again = jax.jit(stochastic.evaluate)(state)[1]["eval/episode_return"]
    assert float(sampled) == float(again)
    assert float(sampled) != float(mode)


# The PPOConfig fields that make purerl's PPO Brax's algorithm and parameterisation; the test
# below checks them against brax's own loss, and presets named for Brax must carry them all.
BRAX_ALGORITHM = {
    "advantage_estimation": "per_minibatch",
    "advantage": "one_step_lambda_return",
    "policy_scale": "softplus",
    "kernel_init": "lecun_uniform",
    "activation": "swish",
    "observation_clip": None,
    "max_grad_norm": None,
    "adam_epsilon": 1e-8,
}


def test_presets_named_for_brax_use_brax_algorithm():
    from experiments.presets import PRESETS

    named = [name for name in PRESETS if "brax" in name]
    assert len(named) >= 3
    for name in named:
        agent = PRESETS[name].config.agent
        assert {field: getattr(agent, field) for field in BRAX_ALGORITHM} == BRAX_ALGORITHM, name


def test_brax_form_loss_equals_brax_own_loss():
    """purerl's Brax-form PPO (per-minibatch advantages, one-step form, masked time limits,
    softplus scale) against brax.training's own compute_ppo_loss, called on the same
    trajectory (time limits included), parameters and normaliser: loss and every gradient."""
    import functools

    from brax.training import types as brax_types
    from brax.training.agents.ppo import losses as brax_losses

    trainer = agent_for(
        **BRAX_ALGORITHM,
        bootstrap_on_timeout=False,
        entropy_coef=0.0,  # brax samples its entropy estimate differently
        reward_scale=3.0,
        discount=0.9,
        clip_epsilon=0.25,
    )
    agent_state, trajectory = trajectory_of(trainer)
    assert np.asarray(trajectory.truncation).any()
    agent_state, batch = trainer.agent.prepare_batch(agent_state, trajectory)
    params = agent_state.params
    (loss, _), grads = jax.value_and_grad(trainer.agent.loss, has_aux=True)(
        params, batch, jax.random.PRNGKey(2)
    )

    obs_size, action_size = trajectory.obs.shape[-1], trajectory.policy.raw_action.shape[-1]
    networks = brax_networks_for(obs_size, action_size, (8,), (8,))
    brax_params = brax_losses.PPONetworkParams(
        brax_params_of(params["policy"]), brax_params_of(params["value"])
    )
    brax_normalizer = brax_normalizer_of(agent_state.normalizer)

    def batch_major(x):
        return jnp.swapaxes(x, 0, 1)

    done = jnp.maximum(trajectory.termination, trajectory.truncation)
    data = brax_types.Transition(
        observation=batch_major(trajectory.obs),
        action=batch_major(jnp.tanh(trajectory.policy.raw_action)),
        reward=batch_major(trajectory.reward),
        discount=batch_major(1.0 - done),
        next_observation=batch_major(trajectory.next_obs),
        extras={
            "state_extras": {"truncation": batch_major(trajectory.truncation)},
            "policy_extras": {
                "raw_action": batch_major(trajectory.policy.raw_action),
                "log_prob": batch_major(trajectory.policy.log_prob),
                "distribution_params": networks.policy_network.apply(
                    brax_normalizer, brax_params.policy, batch_major(trajectory.obs)
                ),
            },
        },
    )
    brax_loss = functools.partial(
        brax_losses.compute_ppo_loss,
        ppo_network=networks,
        entropy_cost=0.0,
        discounting=0.9,
        reward_scaling=3.0,
        gae_lambda=0.95,
        clipping_epsilon=0.25,
        normalize_advantage=True,
        vf_coefficient=0.5,
    )
    (expected, _), expected_grads = jax.value_and_grad(brax_loss, has_aux=True)(
        brax_params, brax_normalizer, data, jax.random.PRNGKey(2)
    )
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    for ours, theirs in (
        (grads["policy"], expected_grads.policy),
        (grads["value"], expected_grads.value),
    ):
        for a, b in zip(
            jax.tree.leaves(brax_params_of(ours)), jax.tree.leaves(theirs), strict=True
        ):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def brax_normalizer_of(statistics):
    """purerl's observation statistics as brax's normaliser: the same mean, and the standard
    deviation purerl divides by."""
    from brax.training.acme import running_statistics

    return running_statistics.init_state(jnp.zeros_like(statistics.mean)).replace(
        mean=statistics.mean, std=jnp.sqrt(statistics.variance + 1e-8)
    )


def brax_mode_config(
    num_envs, iterations, num_evals, num_eval_envs, num_minibatches=8, num_epochs=4
) -> Config:
    """purerl's Brax mode with Brax's reset on spring inverted pendulums, unroll 10, Brax's
    hyperparameters and small networks (32x2 policy, 64x2 value): `iterations` in all."""
    steps = 10
    return Config(
        EnvConfig(
            "inverted_pendulum", backend="spring", episode_length=1000, reset_to_first_state=True
        ),
        TrainConfig(
            num_envs=num_envs,
            unroll_length=steps,
            total_env_steps=iterations * num_envs * steps,
            num_evals=num_evals,
            num_eval_envs=num_eval_envs,
        ),
        PPOConfig(
            **BRAX_ALGORITHM,
            num_minibatches=num_minibatches,
            num_epochs=num_epochs,
            learning_rate=3e-4,
            entropy_coef=1e-2,
            discount=0.97,
            clip_epsilon=0.3,
            reward_scale=10.0,
            bootstrap_on_timeout=False,
            policy_hidden_sizes=(32,) * 2,
            value_hidden_sizes=(64,) * 2,
        ),
    )


@pytest.fixture(scope="module")
def brax_mode():
    """purerl's Brax mode with Brax's reset, on 64 spring inverted pendulums with small
    networks: the trainer, its initial state for seed 0 and the state after one iteration
    (compiled with XLA's default code, as the Brax side it is compared with)."""
    from tests.compiling import OPTIMISED

    config = brax_mode_config(num_envs=64, iterations=1, num_evals=1, num_eval_envs=128)
    trainer = Trainer(config)
    start = trainer.init(jax.random.PRNGKey(0))
    return trainer, start, jax.jit(trainer.iteration, compiler_options=OPTIMISED)(start)[0]


def test_one_iteration_equals_brax_training_step_on_the_same_random_numbers(brax_mode):
    """A whole iteration of purerl's Brax mode (with Brax's reset) against Brax's training step
    rebuilt from brax.training's own pieces (`BraxPieces`: the training-environment wrappers,
    `actor_step` with Brax's policy, `running_statistics.update`, `compute_ppo_loss` with its
    entropy bonus, optax's Adam), driven by the keys purerl uses: the same actions, the same
    normaliser and the same parameters. Adam divides by the root of tiny second moments, which
    turns float rounding into differences of a few elements, so the parameter updates are
    compared in norm."""
    from tests.compiling import OPTIMISED

    trainer, start, ours = brax_mode
    pieces = BraxPieces(trainer)
    before = pieces.init(jax.random.PRNGKey(0), start)
    after, data = jax.jit(pieces.step, compiler_options=OPTIMISED)(before, start.key)
    assert float((1.0 - data.discount).sum()) > 0  # some episodes ended and restarted
    normalizer = after.normalizer
    np.testing.assert_allclose(ours.agent.normalizer.mean, normalizer.mean, rtol=1e-5, atol=1e-7)
    ours_std = jnp.sqrt(ours.agent.normalizer.variance)
    np.testing.assert_allclose(ours_std, normalizer.std, rtol=1e-5)
    for name in ("policy", "value"):
        for a, b, b0 in zip(
            jax.tree.leaves(brax_params_of(ours.agent.params[name])),
            jax.tree.leaves(getattr(after.params, name)),
            jax.tree.leaves(getattr(before.params, name)),
            strict=True,
        ):
            change = float(jnp.linalg.norm(b - b0))
            assert change > 0
            assert float(jnp.linalg.norm(a - b)) < 1e-3 * change, name


def test_deterministic_evaluation_equals_brax_evaluator(brax_mode):
    """purerl's evaluation against brax.training's Evaluator (what Brax's trainer reports) for
    the policy after one iteration, with the Evaluator given the trainer's key: both restart
    the same 128 pendulums (each splits its reset keys from its key the same way), act with
    tanh of the policy's mean, and sum the rewards of each first episode, so their mean
    return and length agree to the bit."""
    trainer, _, state = brax_mode
    theirs = (
        BraxPieces(trainer)
        .evaluator(state.key)
        .run_evaluation(
            (
                brax_normalizer_of(state.agent.normalizer),
                brax_params_of(state.agent.params["policy"]),
                brax_params_of(state.agent.params["value"]),
            ),
            {},
        )
    )
    _, ours = jax.jit(trainer.evaluate)(state)
    assert theirs["eval/std_episode_length"] > 0  # the restarts differ, so their keys matter
    assert float(ours["eval/episode_return"]) == theirs["eval/episode_reward"]
    assert float(ours["eval/episode_length"]) == theirs["eval/avg_episode_length"]


def test_lockstep_gives_brax_pieces_the_keys_purerl_uses(brax_mode):
    """The lockstep benchmark's loop: the same step-0 evaluation, and after one iteration on
    the key purerl's took, parameters a float rounding apart (6e-6 of a leaf's norm at most;
    the key after it instead leaves them 0.75 apart) and the same evaluation."""
    trainer, _, _ = brax_mode
    run = Lockstep(BraxPieces(trainer)).run_seed(0)
    assert len(run["purerl"]) == len(run["brax"]) == 2
    assert run["purerl"][0] == run["brax"][0]
    assert run["distance"][0] == {"policy": 0.0, "value": 0.0}
    assert max(run["distance"][1].values()) < 1e-4, run["distance"]
    assert run["purerl"][1] == pytest.approx(run["brax"][1], rel=1e-2)


def test_brax_pieces_on_brax_keys_are_brax_trainer(monkeypatch):
    """Brax's trainer itself (brax 0.14.2's `ppo.train`, in this environment through the
    anchor's device_put_replicated shim) against Brax's pieces driven by the keys that trainer
    draws (`brax_trainer_run`): the same evaluations and, after 4 training steps in 2
    epochs, parameters and normaliser a float rounding apart. With the pieces tested equal to
    purerl's iteration on purerl's keys (above), purerl's Brax mode is Brax's trainer up to
    which keys it draws. One key taken wrongly (each step's action key carried on instead of
    used) moves the policy by 2.3 of its norm and changes the evaluations (checked)."""
    from brax import envs as brax_envs
    from brax.training.agents.ppo import networks as brax_networks
    from brax.training.agents.ppo import train as brax_ppo

    from experiments.benchmarks import replicated_shim

    if not hasattr(jax, "device_put_replicated"):  # jax >= 0.10, as in purerl's environment
        shim = replicated_shim.device_put_replicated
        monkeypatch.setattr(jax, "device_put_replicated", shim, raising=False)
    config = brax_mode_config(
        num_envs=32, iterations=4, num_evals=2, num_eval_envs=16, num_minibatches=4, num_epochs=2
    )
    train, agent = config.train, config.agent
    seed = 3
    curve, params = brax_trainer_run(BraxPieces(Trainer(config)), seed)
    calls = []
    _, theirs, _ = brax_ppo.train(
        environment=brax_envs.get_environment("inverted_pendulum", backend="spring"),
        num_timesteps=train.total_env_steps,
        episode_length=config.env.episode_length,
        num_envs=train.num_envs,
        unroll_length=train.unroll_length,
        batch_size=train.num_envs // agent.num_minibatches,
        num_minibatches=agent.num_minibatches,
        num_updates_per_batch=agent.num_epochs,
        learning_rate=agent.learning_rate,
        discounting=agent.discount,
        entropy_cost=agent.entropy_coef,
        reward_scaling=agent.reward_scale,
        clipping_epsilon=agent.clip_epsilon,
        gae_lambda=agent.gae_lambda,
        deterministic_eval=True,
        normalize_observations=True,
        network_factory=functools.partial(
            brax_networks.make_ppo_networks,
            policy_hidden_layer_sizes=agent.policy_hidden_sizes,
            value_hidden_layer_sizes=agent.value_hidden_sizes,
        ),
        num_evals=train.num_evals + 1,
        num_eval_envs=train.num_eval_envs,
        seed=seed,
        progress_fn=lambda step, metrics: calls.append(float(metrics["eval/episode_reward"])),
    )
    assert calls == curve
    assert len(set(curve)) == len(curve)  # the policy changes what it scores
    for name, ours, brax in zip(("policy", "value"), params[1:], theirs[1:], strict=True):
        assert relative_distance(ours, brax) < 1e-5, name
    np.testing.assert_allclose(params[0].mean, theirs[0].mean, atol=1e-6)
    np.testing.assert_allclose(params[0].std, theirs[0].std, rtol=1e-5)


def agent_for_sized(estimation, **sizing):
    """agent_for's geometry (40 steps per batch) with the minibatches sized by `sizing`, and
    the learning rate annealed so the decay horizon enters the update."""
    config = Config(
        EnvConfig("point_reach", episode_length=8),
        TrainConfig(num_envs=4, unroll_length=10, total_env_steps=400, num_evals=1),
        PPOConfig(
            advantage_estimation=estimation,
            anneal_learning_rate=True,
            num_epochs=2,
            policy_hidden_sizes=(8,),
            value_hidden_sizes=(8,),
            **sizing,
        ),
    )
    return Trainer(config)


@functools.cache
def sized_trajectory():
    """One initial agent state and trajectory for every sizing and advantage mode (neither
    depends on them), so each test case compiles only its updates."""
    return trajectory_of(agent_for_sized("per_batch", num_minibatches=2))


@pytest.mark.parametrize("estimation", ["per_batch", "per_minibatch"])
def test_minibatch_size_of_batch_over_count_updates_bit_identically(estimation):
    """minibatch_size = batch / num_minibatches is the same split (40 steps / 2 = 20; with
    per_minibatch, 2 trajectories of 10): the same update, bit for bit, with the learning
    rate's decay horizon (iterations x epochs x minibatches) the same too."""

    agent_state, trajectory = sized_trajectory()

    def update(**sizing):
        agent = agent_for_sized(estimation, **sizing).agent
        return jax.device_get(jax.jit(agent.update)(agent_state, trajectory, jax.random.PRNGKey(5)))

    (by_count, count_metrics), (by_size, size_metrics) = (
        update(num_minibatches=2),
        update(minibatch_size=20),
    )
    assert set(count_metrics) == set(size_metrics) and "loss/total" in count_metrics
    for name in count_metrics:
        np.testing.assert_array_equal(count_metrics[name], size_metrics[name], err_msg=name)
    for a, b in zip(jax.tree.leaves(by_count), jax.tree.leaves(by_size), strict=True):
        np.testing.assert_array_equal(a, b)
    if estimation == "per_batch":  # and the split matters: one minibatch of all 40 steps
        whole, _ = update(minibatch_size=40)
        pairs = zip(jax.tree.leaves(whole.params), jax.tree.leaves(by_count.params), strict=True)
        assert not all(np.array_equal(a, b) for a, b in pairs)


@pytest.mark.parametrize("estimation", ["per_batch", "per_minibatch"])
def test_value_pass_in_passes_changes_no_number(estimation):
    """A batch larger than value_pass_rows is evaluated a few time steps at a time (so its
    hidden activations never exist for the whole batch at once); the update's parameters and
    metrics are those of one pass. Not bit for bit: a matrix product of fewer rows may sum in
    another order (here 2e-9 in the policy loss), which is why passes start only above
    VALUE_PASS_ROWS, beyond every batch measured before."""
    trainer = agent_for(advantage_estimation=estimation, clip_value_loss=True)
    agent, key = trainer.agent, jax.random.PRNGKey(5)
    agent_state, trajectory = trajectory_of(trainer)
    seen = []  # the shapes the value network is applied to in prepare_batch
    value_apply = agent.value.apply
    agent.value = dataclasses.replace(agent.value)  # a module of its own for the spy
    object.__setattr__(agent.value, "apply", lambda p, x: seen.append(x.shape) or value_apply(p, x))
    results = {}
    for rows in (None, 12):  # one pass; 3 of the 10 steps of 4 environments per pass, then 1
        agent.value_pass_rows, seen[:] = rows, []
        results[rows] = jax.jit(agent.update)(agent_state, trajectory, key)
        assert ((10, 4, 4) in seen) == (rows is None), seen
    (whole_params, whole), (passes_params, passes) = results[None], results[12]
    assert whole.keys() == passes.keys()
    for name in whole:
        np.testing.assert_allclose(whole[name], passes[name], rtol=1e-5, atol=1e-8, err_msg=name)
    for a, b in zip(jax.tree.leaves(whole_params), jax.tree.leaves(passes_params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8)


def test_minibatches_are_gathered_one_at_a_time():
    """update gathers each minibatch from the prepared batch by index; no shuffled copy of the
    whole batch (the size of the prepared batch) is built per epoch."""
    trainer = agent_for(num_epochs=2)
    agent, key = trainer.agent, jax.random.PRNGKey(5)
    agent_state, trajectory = trajectory_of(trainer)
    _, batch = agent.prepare_batch(agent_state, trajectory)
    text = jax.jit(agent.update).lower(agent_state, trajectory, key).as_text()
    whole = "tensor<2x20x4xf32>"  # num_minibatches x (T x N / num_minibatches) x obs
    assert batch.obs.shape == (40, 4) and whole not in text
