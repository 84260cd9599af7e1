"""Data parallelism over environments: a simulated 2-device CPU runs the same program."""

import json
import os
import subprocess
import sys

import pytest

from tests.test_cli import ROOT, run_cli

TWO_DEVICES = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
PPO = ["ppo-cartpole", "--total-env-steps", "16384", "--num-evals", "2", "--quiet"]


def run_two_devices(*args):
    return subprocess.run(
        [sys.executable, "-m", "experiments.run", *args],
        cwd=ROOT,
        env=TWO_DEVICES,
        capture_output=True,
        text=True,
        timeout=300,
    )


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_two_devices_give_the_same_numbers_as_one(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert run_cli(*PPO, "--run-dir", str(one)).returncode == 0
    result = run_two_devices(*PPO, "--num-devices", "2", "--run-dir", str(two))
    assert result.returncode == 0, result.stderr
    for a, b in zip(metrics(one), metrics(two), strict=True):
        assert a["eval/episode_return"] == b["eval/episode_return"]
        for name in ("train/loss/total", "train/episode_return"):
            # Cross-device reductions may sum in another order.
            assert b[name] == pytest.approx(a[name], rel=1e-5), name


def test_state_is_split_over_devices():
    """Environment states and replay-buffer columns are sharded; parameters replicated."""
    code = """
import jax
from purerl import parallel, Trainer
from tests.test_crl import SMALL
trainer = Trainer(SMALL)
key = jax.random.PRNGKey(0)
mesh = parallel.make_mesh(2)
shardings = parallel.state_shardings(jax.eval_shape(trainer.init, key), mesh, SMALL.agent)
state = jax.jit(trainer.init, out_shardings=shardings)(key)
state, _ = jax.jit(trainer.iteration, out_shardings=(shardings, parallel.replicated(mesh)))(state)
print(state.env.obs.sharding.shard_shape(state.env.obs.shape))
print(state.agent.buffer.data["obs"].sharding.shard_shape(state.agent.buffer.data["obs"].shape))
kernel = state.agent.params["actor"]["params"]["trunk"]["output"]["kernel"]
print(kernel.sharding.is_fully_replicated)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=TWO_DEVICES, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["(4, 4)", "(40, 4, 4)", "True"]


def test_devices_must_divide_envs_and_exist(tmp_path):
    result = run_two_devices(*PPO, "--num-devices", "2", "--num-envs", "63", "--run-dir", "x")
    assert result.returncode == 2 and "--num-envs 64" in result.stderr
    result = run_cli(*PPO, "--num-devices", "4", "--run-dir", str(tmp_path / "r"))
    assert result.returncode == 2 and "4 devices asked for, 1 available" in result.stderr
    assert not (tmp_path / "r").exists()
