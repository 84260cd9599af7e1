"""Many environments: the million-environment presets at 2^17 environments through the CLI,
their memory per environment, and metrics that stay O(1) in num_envs (docs/SCALING.md)."""

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import jax
import pytest

from experiments.presets import PRESETS
from purerl import Trainer
from purerl.config import replace
from tests.compiling import OPTIMISED

ROOT = Path(__file__).resolve().parents[1]
N = 2**17


def run_cli(*args):
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "experiments.run", *args, "--quiet", "--checkpoint-every", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return time.perf_counter() - start


def finite_summary(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    numbers = {k: v for k, v in summary.items() if isinstance(v, (int, float))}
    assert numbers and all(math.isfinite(v) for v in numbers.values()), summary
    return summary


@pytest.mark.slow
def test_ppo_million_preset_at_2_17_environments(tmp_path, optimised_subprocesses):
    """One iteration of 2^17 x 8 = 1,048,576 env steps and an evaluation, through the CLI."""
    run_dir = tmp_path / "ppo"
    args = ["--num-envs", str(N), "--total-env-steps", str(N * 8), "--num-evals", "1"]
    seconds = run_cli("ppo-cartpole-million", *args, "--run-dir", str(run_dir))
    summary = finite_summary(run_dir)
    assert summary["env_steps"] == N * 8
    assert summary["eval/episode_length"] >= 1
    print(f"2^17-environment PPO run: {seconds:.1f} s")


@pytest.mark.slow
def test_crl_million_preset_collects_at_2_17_environments(tmp_path, optimised_subprocesses):
    """CRL's collection path: two collects of 2^17 x 10 steps into a buffer of 50 steps per
    environment, a few gradient steps after the first."""
    run_dir = tmp_path / "crl"
    args = ["--num-envs", str(N), "--total-env-steps", str(N * 20), "--num-evals", "1"]
    args += ["--buffer-size", str(N * 50), "--warmup-env-steps", str(N * 10)]
    args += ["--updates-per-iteration", "2", "--batch-size", "256"]
    seconds = run_cli("crl-point-umaze-million", *args, "--run-dir", str(run_dir))
    summary = finite_summary(run_dir)
    assert summary["env_steps"] == N * 20
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["train/trained_fraction"] > 0  # the gradient steps ran
    print(f"2^17-environment CRL run: {seconds:.1f} s")


def test_ppo_memory_per_environment_at_2_17():
    """XLA's memory analysis of the compiled chunk: the TrainState is under 100 bytes per
    environment and the temporary buffers under 3.5 KB (5.3 KB before the value pass ran in
    passes and minibatches were gathered by index; docs/SCALING.md)."""
    config = replace(PRESETS["ppo-cartpole-million"].config, num_envs=N, num_evals=1)
    config = replace(config, total_env_steps=N * 8 * 2)
    trainer = Trainer(config)
    state = jax.eval_shape(trainer.init, jax.random.PRNGKey(0))
    # XLA's default code, which the byte limits were measured on (tests/compiling.py).
    run = jax.jit(
        trainer.run_iterations, static_argnums=1, donate_argnums=0, compiler_options=OPTIMISED
    )
    memory = run.lower(state, 2).compile().memory_analysis()
    if memory is None:
        pytest.skip("this backend gives no memory analysis")
    assert memory.argument_size_in_bytes / N < 100
    assert memory.temp_size_in_bytes / N < 3500, memory.temp_size_in_bytes / N


def sac_config(num_envs):
    config = PRESETS["sac-her-point-umaze"].config
    return replace(
        config,
        num_envs=num_envs,
        buffer_size=num_envs * 100,
        warmup_env_steps=num_envs * 25,
        total_env_steps=num_envs * 25 * 20,
    )


def million(name):
    return lambda num_envs: replace(PRESETS[name].config, num_envs=num_envs)


@pytest.mark.parametrize(
    "make",
    [million("ppo-cartpole-million"), million("crl-point-umaze-million"), sac_config],
    ids=["ppo", "crl", "sac"],
)
def test_metrics_leaving_the_loop_are_scalars_at_any_num_envs(make):
    """run_iterations and evaluate return the same metric names at 64 and 2^20 environments,
    every one a scalar: nothing per environment or per step leaves the program."""
    shapes = {}
    for num_envs in (64, 2**20):
        config = make(num_envs)
        if config.agent.__class__.__name__ != "PPOConfig":
            config = replace(config, buffer_size=num_envs * config.env.episode_length)
            config = replace(config, warmup_env_steps=num_envs * config.train.unroll_length)
        trainer = Trainer(config)
        state = jax.eval_shape(trainer.init, jax.random.PRNGKey(0))
        _, train = jax.eval_shape(lambda s, t=trainer: t.run_iterations(s, 3), state)
        _, evaluation = jax.eval_shape(trainer.evaluate, state)
        shapes[num_envs] = {k: v.shape for k, v in {**train, **evaluation}.items()}
    assert shapes[64] == shapes[2**20]
    assert all(shape == () for shape in shapes[64].values()), shapes[64]
    assert any(k.startswith("train/loss") or k.startswith("train/critic") for k in shapes[64])
