"""Data parallelism over environments: simulated CPU devices, one process or several through
jax.distributed (gloo collectives on localhost), run the same program."""

import json
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.compiling import environ_with_xla_flags
from tests.test_cli import ROOT, run_cli


def devices_env(count):
    return environ_with_xla_flags(f"--xla_force_host_platform_device_count={count}")


TWO_DEVICES = devices_env(2)
PPO = ["ppo-cartpole", "--total-env-steps", "16384", "--num-evals", "2", "--quiet"]
# Three evaluations (checkpointed after each), so a run can be stopped in the middle.
PPO_3 = ["ppo-cartpole", "--num-envs", "32", "--unroll-length", "32", "--num-evals", "3"]
PPO_3 += ["--total-env-steps", str(32 * 32 * 2 * 3), "--quiet"]
CRL = ["crl-point-umaze", "--num-envs", "16", "--total-env-steps", "3200", "--num-evals", "2"]
CRL += ["--warmup-env-steps", "1600", "--updates-per-iteration", "2", "--depth", "8"]
CRL += ["--width", "16", "--actor-width", "32", "--num-eval-envs", "4", "--quiet"]


def run_devices(count, *args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "experiments.run", *args],
        cwd=ROOT,
        env=devices_env(count),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_two_devices(*args):
    return run_devices(2, *args)


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_same_numbers(reference, other):
    """Equal up to the order in which cross-device reductions sum."""
    assert [r["env_steps"] for r in reference] == [r["env_steps"] for r in other]
    for a, b in zip(reference, other, strict=True):
        assert set(a) == set(b)
        for name in a:
            if not name.endswith("time_s"):
                assert b[name] == pytest.approx(a[name], rel=1e-4, abs=1e-6), name


@pytest.fixture(scope="module")
def four_device_ppo(tmp_path_factory):
    """PPO_3 on one process with 4 devices: the reference of the multi-process tests."""
    run_dir = tmp_path_factory.mktemp("four") / "run"
    result = run_devices(4, *PPO_3, "--num-devices", "0", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    return run_dir


# Fresh starts built for every step are the default on accelerators, where devices are many.
PPO_PER_STEP = [*PPO, "--fresh-starts", "per_step"]


@pytest.mark.parametrize("args", [PPO, PPO_PER_STEP, CRL], ids=["ppo", "ppo-per-step", "crl"])
def test_four_devices_give_the_same_numbers_as_one(tmp_path, args):
    one, four = tmp_path / "one", tmp_path / "four"
    assert run_cli(*args, "--run-dir", str(one)).returncode == 0
    result = run_devices(4, *args, "--num-devices", "4", "--run-dir", str(four))
    assert result.returncode == 0, result.stderr
    assert_same_numbers(metrics(one), metrics(four))
    if args is PPO_PER_STEP:  # the mode reached the trainers (the numbers alone cannot tell)
        from experiments.rundir import RunDir

        for run_dir in (one, four):
            progress = list(RunDir(run_dir).checkpoint_progress().values())
            assert progress and all(p["fresh_starts"] == "per_step" for p in progress)


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


# Several processes on localhost, 2 simulated devices each.


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_processes(*args, num_processes=2, devices=2, extra=None, via_environment=False):
    """Starts `experiments.run ARGS` as processes 0 .. num_processes - 1 of one run, told so
    by flags or (`via_environment`, as a launcher would) by PURERL_* variables; `extra` maps
    a process id to more flags for it alone."""
    address = f"127.0.0.1:{free_port()}"
    processes = []
    for process_id in range(num_processes):
        settings = {"coordinator-address": address, "num-processes": num_processes}
        settings["process-id"] = process_id
        env, flags = devices_env(devices), []
        for name, value in settings.items():
            if via_environment:
                env[f"PURERL_{name.replace('-', '_').upper()}"] = str(value)
            else:
                flags += [f"--{name}", str(value)]
        flags += (extra or {}).get(process_id, [])
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "experiments.run", *args, *flags],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return processes


# What gloo prints (from several threads at once) as its processes connect.
GLOO = re.compile(r"\[Gloo\] Rank |\d+ is connected to \d+ peer ranks\. Expected number of "
                  r"connected peer ranks is : \d+")  # fmt: skip
# Its threads can also cut each other's sentences ("32 is connected to  is connected to 3
# peer ranks..."): lines left holding such a piece go too.
GLOO_PIECES = ("[Gloo]", "is connected to", "peer ranks")


def without_gloo(text: str) -> str:
    lines = GLOO.sub("", text).splitlines()
    return "\n".join(ln for ln in lines if not any(p in ln for p in GLOO_PIECES)).strip()


def finish(processes, timeout=300):
    """(return code, stdout, stderr), without gloo's connection chatter, of each process."""
    results = []
    for process in processes:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            raise
        results.append((process.returncode, without_gloo(out), without_gloo(err)))
    return results


def test_two_processes_give_the_four_device_numbers_and_only_process_0_writes(
    tmp_path, four_device_ppo
):
    run_dir = tmp_path / "run"
    args = [*PPO_3, "--num-devices", "0", "--run-dir", str(run_dir)]
    processes = start_processes(*args, via_environment=True)
    (code0, out0, err0), (code1, out1, err1) = finish(processes)
    assert code0 == 0 and code1 == 0, err0 + err1
    assert "done:" in out0 and out1 == "" and err1 == ""  # process 1 says nothing
    records = metrics(run_dir)
    assert len(records) == 3  # one line per evaluation: nobody else appended
    assert_same_numbers(metrics(four_device_ppo), records)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] == records[-1]["env_steps"]
    # Each process wrote its own shards of every checkpoint; process 0 the manifest.
    for checkpoint in (run_dir / "checkpoints").iterdir():
        names = {p.name for p in checkpoint.iterdir()}
        assert {"ocdbt.process_0", "ocdbt.process_1", "purerl.json"} <= names


def test_killed_process_stops_the_other_and_the_run_resumes_on_one_process(
    tmp_path, four_device_ppo
):
    """Process 1 is killed after the first checkpoint: process 0 exits with an error within
    the heartbeat timeout instead of waiting forever, and `--resume` on a single process
    with 2 devices finishes the run with the 4-device numbers."""
    run_dir = tmp_path / "run"
    heartbeat = 5
    args = [*PPO_3, "--num-devices", "0", "--run-dir", str(run_dir)]
    processes = start_processes(*args, "--heartbeat-timeout", str(heartbeat))
    first = run_dir / "checkpoints" / f"{2:012d}" / "purerl.json"
    deadline = time.monotonic() + 240
    while not first.exists():
        assert time.monotonic() < deadline and processes[0].poll() is None, "no checkpoint"
        time.sleep(0.05)
    processes[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    (code0, _, err0), _ = finish(processes, timeout=heartbeat + 60)
    assert code0 != 0, "process 0 finished although process 1 was killed"
    assert time.monotonic() - killed < heartbeat + 60
    assert not (run_dir / "summary.json").exists()

    # Where the environments cannot be split, the resume is refused; elsewhere re-sharded.
    result = run_devices(4, "--resume", str(run_dir), "--num-devices", "3")
    assert result.returncode == 2 and "do not split evenly over 3 devices" in result.stderr
    result = run_devices(2, "--resume", str(run_dir), "--num-devices", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    assert_same_numbers(metrics(four_device_ppo), metrics(run_dir))


def test_processes_refuse_bad_settings_without_hanging(tmp_path):
    run_dir = str(tmp_path / "run")
    # Out of range: refused before anything waits.
    start = time.monotonic()
    result = run_cli(*PPO, "--run-dir", run_dir, "--num-processes", "2", "--process-id", "2")
    assert result.returncode == 2
    assert "--process-id" in result.stderr and "0 .. 1" in result.stderr
    # Nobody at the coordinator's address: a one-line error within the stated timeout.
    address = f"127.0.0.1:{free_port()}"
    joining = ["--coordinator-address", address, "--num-processes", "2"]
    joining += ["--initialization-timeout", "3"]
    result = run_cli(*PPO, "--run-dir", run_dir, *joining, "--process-id", "1")
    assert result.returncode == 2, result.stderr
    assert f"could not join the coordinator at {address} within 3 s" in result.stderr
    # Process 0 alone: JAX's coordinator gives up on the others after the same timeout.
    result = run_cli(*PPO, "--run-dir", run_dir, *joining, "--process-id", "0")
    assert result.returncode != 0 and "DEADLINE_EXCEEDED" in result.stderr
    assert time.monotonic() - start < 90
    assert not (tmp_path / "run").exists()


def test_processes_with_different_configs_or_an_uneven_split_stop(tmp_path):
    run_dir = tmp_path / "run"
    args = [*PPO, "--num-devices", "0", "--run-dir", str(run_dir)]
    processes = start_processes(*args, extra={1: ["--seed", "7"]})
    for code, _, err in finish(processes, timeout=120):
        assert code == 2, err
        assert "process(es) 1 were started with another run than process 0" in err
    processes = start_processes(*args, "--num-envs", "66")  # 4 devices in all
    for code, _, err in finish(processes, timeout=120):
        assert code == 2, err
        assert "do not split evenly over 4 devices" in err and "--num-envs 68" in err
    # A multi-process run must use every device.
    processes = start_processes(*PPO, "--num-devices", "2", "--run-dir", str(run_dir))
    for code, _, err in finish(processes, timeout=120):
        assert code == 2, err
        assert "--num-devices 0" in err
    assert not run_dir.exists()


def test_zero_size_arrays_keep_their_sharding_through_a_checkpoint(tmp_path):
    """An MJX state sharded over devices holds zero-size arrays (`act` is (num_envs, 0)),
    which orbax refuses: they are left out on save and rebuilt on restore with the sharding
    the resumed run asks for, next to the sharded arrays orbax restores."""
    code = f"""
from typing import NamedTuple
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from experiments.checkpoint import Checkpoints
class State(NamedTuple):
    iteration: jax.Array
    act: jax.Array
    q: jax.Array
mesh = jax.make_mesh((2,), ("envs",))
split = NamedSharding(mesh, PartitionSpec("envs"))
state = State(jnp.asarray(3, jnp.int32), jax.device_put(jnp.zeros((4, 0)), split),
              jax.device_put(jnp.arange(8.0).reshape(4, 2), split))
checkpoints = Checkpoints({str(tmp_path / "checkpoints")!r})
checkpoints.save(state, {{"evaluations": 1}})
restored, progress = checkpoints.restore_latest(state)
act, q = restored.act, restored.q
print(act.shape, act.dtype, act.sharding == split, len(act.addressable_shards))
print(q.sharding == split, np.array_equal(np.asarray(q), np.arange(8.0).reshape(4, 2)))
print(progress["evaluations"])
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=TWO_DEVICES, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["(4, 0) float32 True 2", "True True", "1"]
