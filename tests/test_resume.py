"""Checkpoints and exact resume: a run killed at a random point and resumed ends with the
same numbers as an uninterrupted one; corrupt checkpoints are skipped; non-finite stops."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_cli import ROOT, run_cli

# ~0.1-0.3 s per evaluation chunk on a 2-core CPU, so a kill lands mid-run.
ARGS = ["ppo-cartpole", "--total-env-steps", "81920", "--num-envs", "64", "--unroll-length"]
ARGS += ["16", "--num-evals", "8", "--seed", "5", "--keep-checkpoints", "2", "--quiet"]


def lines(run_dir: Path) -> list[dict]:
    text = (run_dir / "metrics.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def without_times(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in records]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("resume") / "whole"
    result = run_cli(*ARGS, "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    return run_dir


def kill_after(run_dir: Path, evaluations: int, *extra: str) -> None:
    """Starts the run (ARGS, then `extra`) and SIGKILLs it once `evaluations` lines are in
    metrics.jsonl."""
    process = subprocess.Popen(
        [sys.executable, "-m", "experiments.run", *ARGS, *extra, "--run-dir", str(run_dir)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics = run_dir / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if metrics.exists() and metrics.read_text().count("\n") >= evaluations:
            break
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (run_dir / "summary.json").exists(), "the run finished before the kill"


def newest_saved(run_dir: Path) -> Path:
    """The newest checkpoint whose save orbax finished. A kill can land during the next save,
    which leaves its `<step>.orbax-checkpoint-tmp` folder behind, sorted after it."""
    return sorted(p for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())[-1]


def test_killed_run_resumes_to_identical_metrics(uninterrupted, tmp_path):
    point = random.Random().randint(1, 6)  # a different kill point each CI run
    run_dir = tmp_path / "killed"
    kill_after(run_dir, point)
    result = run_cli("--resume", str(run_dir), "--quiet")
    assert result.returncode == 0, (point, result.stderr)
    assert "resuming" in result.stderr
    assert without_times(lines(run_dir)) == without_times(lines(uninterrupted)), point
    final = json.loads((run_dir / "summary.json").read_text())
    expected = json.loads((uninterrupted / "summary.json").read_text())
    for key in expected:
        if key.startswith(("eval/", "train/")) or key == "env_steps":
            assert final[key] == expected[key], key
    # Only the newest --keep-checkpoints survive.
    assert len(list((run_dir / "checkpoints").iterdir())) == 2


def test_corrupt_checkpoint_is_reported_and_the_previous_one_used(uninterrupted, tmp_path):
    run_dir = tmp_path / "corrupt"
    kill_after(run_dir, 5)
    newest = newest_saved(run_dir)
    victim = max(
        (p for p in newest.rglob("*") if p.is_file() and p.name != "purerl.json"),
        key=lambda p: p.stat().st_size,
    )
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    result = run_cli("--resume", str(run_dir), "--quiet")
    assert result.returncode == 0, result.stderr
    assert f"skipping checkpoint {newest.name}" in result.stderr
    assert victim.name in result.stderr
    assert (newest.parent / (newest.name + ".invalid")).is_dir()  # kept aside, not pruned
    assert without_times(lines(run_dir)) == without_times(lines(uninterrupted))


def test_partial_checkpoint_is_skipped(uninterrupted, tmp_path):
    run_dir = tmp_path / "partial"
    kill_after(run_dir, 4)
    newest = newest_saved(run_dir)
    (newest / "purerl.json").unlink()  # as if killed between orbax's write and ours
    result = run_cli("--resume", str(run_dir), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "save did not finish" in result.stderr
    assert without_times(lines(run_dir)) == without_times(lines(uninterrupted))


def test_resume_keeps_the_fresh_starts_the_run_was_trained_with(uninterrupted, tmp_path):
    """A run started with env.fresh_starts "auto" on an accelerator trains with per-step starts;
    resumed on a CPU, where "auto" means per unroll, it goes on with per-step starts, which
    its checkpoints record, and ends as its uninterrupted self."""
    per_step = tmp_path / "per-step"
    result = run_cli(*ARGS, "--fresh-starts", "per_step", "--run-dir", str(per_step))
    assert result.returncode == 0, result.stderr
    # The two modes draw starts from other keys: resuming in the wrong one would show.
    assert without_times(lines(per_step)) != without_times(lines(uninterrupted))

    run_dir = tmp_path / "accelerator"
    kill_after(run_dir, 3, "--fresh-starts", "per_step")
    config = json.loads((run_dir / "config.json").read_text())
    config["env"]["fresh_starts"] = "auto"  # as a run started with the default records it
    (run_dir / "config.json").write_text(json.dumps(config))
    result = run_cli("--resume", str(run_dir), "--quiet")
    assert result.returncode == 0, result.stderr
    assert without_times(lines(run_dir)) == without_times(lines(per_step))


def test_resumed_fresh_starts_come_from_the_checkpoints(tmp_path):
    """`trained_starts`: "auto" takes the newest checkpoint's mode; a checkpoint written
    before the mode was recorded means per unroll (every run built starts so then); an
    explicit mode, or a run with no checkpoint yet, is left as it is."""
    from experiments.run import trained_starts
    from experiments.rundir import RunDir
    from purerl import Config, EnvConfig

    run_dir = RunDir(tmp_path / "run")
    auto = Config(env=EnvConfig("cartpole"))
    assert trained_starts(auto, run_dir) == auto

    def save(iteration: int, **progress) -> None:
        path = run_dir.checkpoints_path / f"{iteration:012d}"
        path.mkdir(parents=True)
        manifest = {"progress": {"env_steps": iteration * 10, **progress}, "files": {}}
        (path / "purerl.json").write_text(json.dumps(manifest))

    save(1)
    assert trained_starts(auto, run_dir).env.fresh_starts == "per_unroll"
    save(2, fresh_starts="per_step")
    assert trained_starts(auto, run_dir).env.fresh_starts == "per_step"
    (run_dir.checkpoints_path / f"{3:012d}").mkdir()  # partial: no manifest yet
    assert trained_starts(auto, run_dir).env.fresh_starts == "per_step"
    explicit = Config(env=EnvConfig("cartpole", fresh_starts="per_unroll"))
    assert trained_starts(explicit, run_dir) == explicit


def test_non_finite_update_stops_with_env_step_and_metric(tmp_path):
    run_dir = tmp_path / "diverged"
    result = run_cli(
        "ppo-cartpole",
        "--reward-scale",
        "1e38",
        "--total-env-steps",
        "20480",
        "--num-evals",
        "2",
        "--run-dir",
        str(run_dir),
        "--quiet",
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "non-finite" in result.stderr and "train/loss/value" in result.stderr
    assert "at env step 2048 (update 1)" in result.stderr
    assert not (run_dir / "summary.json").exists()
    assert lines(run_dir) == []


def test_resume_refuses_finished_or_missing_runs(uninterrupted, tmp_path):
    result = run_cli("--resume", str(uninterrupted))
    assert result.returncode == 2 and "already finished" in result.stderr
    result = run_cli("--resume", str(tmp_path / "nothing"))
    assert result.returncode == 2 and "config.json not found" in result.stderr


def test_a_live_run_directory_is_not_shared(tmp_path):
    """The lock is held while a run lives and released by the kernel when it dies."""
    from experiments.run import UsageError, run_lock

    run_dir = tmp_path / "busy"
    run_dir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE
    )
    assert holder.stdout.readline().strip() == b"locked"
    with pytest.raises(UsageError, match=f"in use by process {holder.pid}"):
        with run_lock(run_dir):
            pass
    holder.kill()  # SIGKILL: no cleanup runs, the kernel drops the lock
    holder.wait()
    with run_lock(run_dir):
        assert str(os.getpid()) in (run_dir / ".lock").read_text()


HOLD_LOCK = """
import sys, time
from pathlib import Path
from experiments.run import run_lock
with run_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_crl_state_with_replay_buffer_round_trips(tmp_path):
    """The checkpoint holds the whole CRL state: networks, optimisers and the replay buffer."""
    import jax
    import numpy as np

    from experiments.checkpoint import Checkpoints
    from purerl import Trainer
    from tests.test_crl import SMALL

    trainer = Trainer(SMALL)
    state, _ = jax.jit(trainer.iteration)(trainer.init(jax.random.PRNGKey(0)))
    assert int(state.agent.buffer.size) > 0
    checkpoints = Checkpoints(tmp_path / "checkpoints", keep=2)
    checkpoints.save(state, {"evaluations": 1, "env_steps": 80})
    restored, progress = checkpoints.restore_latest(
        jax.eval_shape(trainer.init, jax.random.PRNGKey(0))
    )
    assert progress == {"evaluations": 1, "env_steps": 80}
    leaves = jax.tree.leaves(state)
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for saved, loaded in zip(leaves, jax.tree.leaves(restored), strict=True):
        assert saved.dtype == loaded.dtype
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(loaded))


def test_zero_size_arrays_round_trip(tmp_path):
    """An MJX physics state holds zero-size arrays (`act` of a model without activations),
    which orbax refuses to write: they are left out and rebuilt with their shape, dtype and
    sharding."""
    from typing import NamedTuple

    import jax
    import jax.numpy as jnp
    import numpy as np

    from experiments.checkpoint import Checkpoints

    class Tiny(NamedTuple):
        iteration: jax.Array
        act: jax.Array
        q: jax.Array
        nested: tuple

    state = Tiny(
        jnp.asarray(3, jnp.int32),
        jnp.zeros((4, 0), jnp.float32),
        jnp.arange(8.0).reshape(4, 2),
        (jnp.ones(3, jnp.int32), jnp.zeros((0,), jnp.int32)),
    )
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    path = checkpoints.save(state, {"evaluations": 1})
    for restored, progress in (
        checkpoints.restore_latest(jax.eval_shape(lambda: state)),
        checkpoints.restore(path, state),
    ):
        assert progress == {"evaluations": 1}
        assert jax.tree.structure(restored) == jax.tree.structure(state)
        for saved, loaded in zip(jax.tree.leaves(state), jax.tree.leaves(restored), strict=True):
            assert saved.shape == loaded.shape and saved.dtype == loaded.dtype
            np.testing.assert_array_equal(np.asarray(saved), np.asarray(loaded))
