"""The run-directory contract and bad-input handling of `python -m experiments.run`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "experiments.run", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "cartpole"
    result = run_cli(
        "ppo-cartpole",
        "--total-env-steps",
        "8192",
        "--num-envs",
        "16",
        "--unroll-length",
        "16",
        "--num-evals",
        "4",
        "--seed",
        "3",
        "--run-dir",
        str(run_dir),
        "--quiet",
        "--sinks",
        "tensorboard",
        "wandb",
    )
    assert result.returncode == 0, result.stderr
    return run_dir, result


def test_run_directory_contract(finished_run):
    run_dir, result = finished_run
    assert str(run_dir) in result.stdout
    config = json.loads((run_dir / "config.json").read_text())
    assert config["preset"] == "ppo-cartpole" and config["train"]["seed"] == 3
    assert config["train"]["num_envs"] == 16
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["env_steps"] for line in lines] == [2048, 4096, 6144, 8192]
    for line in lines:
        assert {
            "wall_time_s",
            "eval/episode_return",
            "eval/episode_length",
            "train/episode_return",
            "train/loss/total",
        } <= set(line)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] == 8192
    assert summary["compile_time_s"] > 0 and summary["train_time_s"] > 0
    assert summary["env_steps_per_second"] == pytest.approx(
        8192 / summary["train_time_s"], rel=0.01
    )
    assert summary["eval/episode_return"] == lines[-1]["eval/episode_return"]
    assert summary["eval/episode_length"] == lines[-1]["eval/episode_length"]
    # Asked-for sinks write next to the JSONL (their contents are tested in test_sinks).
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))


def test_existing_run_directory_is_never_overwritten(finished_run):
    run_dir, _ = finished_run
    before = (run_dir / "summary.json").read_text()
    result = run_cli("ppo-cartpole", "--run-dir", str(run_dir))
    assert result.returncode == 2
    assert "already exists" in result.stderr and "Traceback" not in result.stderr
    assert (run_dir / "summary.json").read_text() == before


@pytest.mark.parametrize(
    "statement", ["from purerl import Trainer", "from purerl import parallel", "import envs"]
)
def test_importing_the_library_prints_nothing(statement):
    """mujoco prints a message on import; whichever module loads brax first, stdout stays
    clean (scripts print JSON or tables there)."""
    result = subprocess.run(
        [sys.executable, "-c", statement], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_library_field_names_become_flags():
    from experiments.run import as_flags

    text = "use train.num_envs=64 (agent.buffer_size too), env.single_goal=False; train.seed."
    assert as_flags(text) == "use --num-envs 64 (--buffer-size too), --no-single-goal; --seed."
    assert as_flags("agent.learning_rate=0.5.") == "--learning-rate 0.5."
    assert as_flags("XLA_FLAGS=--xla_force_host_platform_device_count=N") == (
        "XLA_FLAGS=--xla_force_host_platform_device_count=N"
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["ppo-nope"], "unknown preset 'ppo-nope'"),
        (["ppo-cartpole", "--num-envs", "0"], "train.num_envs (--num-envs): must be positive"),
        (["ppo-cartpole", "--num-minibatches", "7"], "--num-minibatches 8"),
        (
            ["ppo-cartpole", "--num-minibatches", "4", "--minibatch-size", "512"],
            "--num-minibatches 4 and --minibatch-size 512 are both set; set only one",
        ),
        (["ppo-cartpole", "--minibatch-size", "1000"], "--minibatch-size 1024"),
        (["ppo-cartpole", "--name", "nope"], "unknown environment 'nope'"),
        (["ppo-cartpole", "--num-envs", "many"], "many"),
        (["ppo-cartpole", "--no-such-field", "1"], "--no-such-field"),
        (["crl-point-umaze", "--depth", "6"], "agent.depth (--depth): must be a positive multiple"),
        (["crl-point-umaze", "--buffer-size", "640"], "--buffer-size 6400 or more"),
        (["crl-point-umaze", "--normalize-observations"], "--normalize-observations"),
        (["crl-point-umaze", "--future-goal-discount", "1.5"], "must be in (0, 1)"),
        (["crl-point-umaze", "--name", "cartpole"], "CRL needs a goal-conditioned environment"),
        (["ppo-cartpole", "--single-goal"], "not goal-conditioned; use --no-single-goal"),
    ],
)
def test_bad_input_exits_2_without_traceback_or_run_dir(tmp_path, args, message):
    run_dir = tmp_path / "run"
    result = run_cli(*args, "--run-dir", str(run_dir))
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert message in " ".join(output.split())
    assert "Traceback" not in output
    assert not run_dir.exists()


def test_help_lists_presets():
    result = run_cli("--help")
    assert result.returncode == 0
    for preset in ("ppo-cartpole", "ppo-inverted-pendulum", "ppo-ant", "ppo-humanoid"):
        assert preset in result.stdout


@pytest.mark.parametrize("args", [["--help"], ["ppo-ant", "--help"]])
def test_help_imports_no_jax_brax_or_mujoco(args):
    """--help builds configs and the parser only: the heavy libraries load when training."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "experiments.run", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "usage" in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "experiments.presets" in imported  # the import log is what we think it is
    for heavy in ("jax", "brax", "mujoco", "flax", "optax", "orbax"):
        assert heavy not in imported, f"--help imported {heavy}"


def test_crl_run_sets_all_networks_and_reports_goal_metrics(tmp_path):
    run_dir = tmp_path / "crl"
    args = ["--total-env-steps", "3200", "--num-evals", "2", "--warmup-env-steps", "1600"]
    args += ["--updates-per-iteration", "2", "--depth", "8", "--width", "16"]
    args += ["--actor-width", "32", "--num-eval-envs", "4"]
    result = run_cli("crl-point-umaze", *args, "--run-dir", str(run_dir), "--quiet")
    assert result.returncode == 0, result.stderr
    agent = json.loads((run_dir / "config.json").read_text())["agent"]
    assert (agent["depth"], agent["width"], agent["actor_width"]) == (8, 16, 32)
    summary = json.loads((run_dir / "summary.json").read_text())
    for name in ("eval/success_rate", "eval/time_at_goal", "eval/final_distance"):
        assert name in summary
    assert "success_rate" in result.stdout


def test_summary_times_training_without_evaluation(tmp_path, monkeypatch, capsys):
    """Each evaluation is made to take 3 s more; the summary's training time and speed must
    not see it, and the rounded-down budget is announced."""
    import time

    import jax

    from experiments import run
    from purerl import Trainer

    evaluate = Trainer.evaluate

    def slow_evaluate(self, state):
        state, metrics = evaluate(self, state)
        jax.debug.callback(lambda: time.sleep(3.0))
        return state, metrics

    monkeypatch.setattr(Trainer, "evaluate", slow_evaluate)
    preset, spec = run.parse(
        ["ppo-cartpole", "--total-env-steps", "7000", "--num-envs", "16", "--unroll-length"]
        + ["16", "--num-evals", "3", "--run-dir", str(tmp_path / "r"), "--quiet"]
        + ["--checkpoint-every", "0"]
    )
    summary = run.train(preset, spec)
    assert "training 6,912 env steps: total_env_steps 7,000 rounded down" in capsys.readouterr().err
    assert summary["env_steps"] == 6912
    assert summary["eval_time_s"] >= 3 * 3.0
    # 27 iterations of 256 cart-pole steps take far less than the 9 s of sleeps.
    assert summary["train_time_s"] < 3 * 3.0
    # train_time_s is rounded to the millisecond, the speed comes from the unrounded time.
    assert 6912 / summary["env_steps_per_second"] == pytest.approx(
        summary["train_time_s"], abs=5e-4 + 1e-6
    )
