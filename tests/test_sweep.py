"""Sweeps: spec checking, the vmapped, local and submitit executors, continuing a sweep."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.compiling import environ_with_xla_flags
from tests.test_cli import ROOT

SPEC = """
preset = "ppo-cartpole"
seeds = {seeds}
[overrides]
total_env_steps = 4096
num_envs = 16
unroll_length = 16
num_evals = 2
[grid]
learning_rate = [0.001, 0.0003]
"""


def sweep(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "experiments.sweep", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def write_spec(path: Path, seeds="[0]", text=SPEC) -> Path:
    path.write_text(text.format(seeds=seeds))
    return path


def summaries(sweep_dir: Path) -> dict[str, dict]:
    return {
        str(p.parent.relative_to(sweep_dir)): json.loads(p.read_text())
        for p in sorted(sweep_dir.glob("*/seed*/summary.json"))
    }


@pytest.fixture(scope="module")
def vmapped(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    spec = write_spec(root / "spec.toml", seeds="[0, 1]")
    result = sweep(spec, "--executor", "vmap", "--sweep-dir", root / "vmap")
    assert result.returncode == 0, result.stderr
    return root, result


def test_vmapped_sweep_writes_every_run_and_the_table(vmapped):
    root, result = vmapped
    sweep_dir = root / "vmap"
    runs = summaries(sweep_dir)
    assert sorted(runs) == [
        "000-learning_rate=0.001/seed0",
        "000-learning_rate=0.001/seed1",
        "001-learning_rate=0.0003/seed0",
        "001-learning_rate=0.0003/seed1",
    ]
    for run in runs.values():
        assert run["env_steps"] == 4096 and "eval/episode_return" in run
    config = json.loads((sweep_dir / "000-learning_rate=0.001/seed1/config.json").read_text())
    assert config["agent"]["learning_rate"] == 0.001 and config["train"]["seed"] == 1
    assert "vmapped 4 runs (learning_rate)" in result.stdout
    rows = list(csv.DictReader((sweep_dir / "results.csv").open()))
    assert [row["seeds"] for row in rows] == ["2", "2"]  # grouped over seeds
    for row in rows:
        label = row["group"].split("=")[-1]
        returns = [
            run["eval/episode_return"]
            for name, run in runs.items()
            if name.split("/")[0].endswith("=" + label)
        ]
        assert float(row["final_mean"]) == pytest.approx(np.mean(returns))
    assert "learning_rate=0.001" in result.stdout


def test_vmapped_runs_are_whole_run_directories(vmapped):
    """Written through RunDir like any run: readable records, the last in the summary, and
    nothing left over from the atomic writes."""
    from experiments.rundir import RunDir

    root, _ = vmapped
    for summary in (root / "vmap").glob("*/seed*/summary.json"):
        run = RunDir(summary.parent)
        records = run.read_metrics()
        assert [r["env_steps"] for r in records] == [2048, 4096]
        assert run.read_summary()["eval/episode_return"] == records[-1]["eval/episode_return"]
        assert run.read_config()["sweep"] == {"executor": "vmap", "group_size": 4}
        names = {p.name for p in run.path.iterdir()}
        assert names == {".lock", "config.json", "metrics.jsonl", "summary.json"}


def test_rerun_continues_and_a_different_spec_is_refused(vmapped):
    root, _ = vmapped
    spec = write_spec(root / "spec.toml", seeds="[0, 1]")
    result = sweep(spec, "--executor", "vmap", "--sweep-dir", root / "vmap")
    assert result.returncode == 0 and "4 runs, 0 to do" in result.stdout
    other = write_spec(root / "other.toml", seeds="[7]")
    result = sweep(other, "--sweep-dir", root / "vmap")
    assert result.returncode == 2 and "holds a different sweep" in result.stderr


@pytest.mark.parametrize("executor", ["local", "submitit"])
def test_process_executors_match_the_vmapped_runs(vmapped, executor, tmp_path):
    root, _ = vmapped
    spec = write_spec(tmp_path / "spec.toml", seeds="[0]")
    extra = ["--cluster", "local"] if executor == "submitit" else ["--max-parallel", "2"]
    result = sweep(spec, "--executor", executor, "--sweep-dir", tmp_path / "s", *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    separate = summaries(tmp_path / "s")
    assert sorted(separate) == ["000-learning_rate=0.001/seed0", "001-learning_rate=0.0003/seed0"]
    batched = summaries(root / "vmap")
    # The same computation; vmapped learning rates change float rounding only. Losses and
    # training returns agree to ~1e-4; the deterministic evaluation (32 argmax episodes of up
    # to 500 steps) amplifies rounding most: 465 vs 458 measured, where the two learning
    # rates give 458 and 117.
    tolerance = {
        "train/loss/total": 1e-2,
        "train/episode_return": 1e-2,
        "eval/episode_return": 5e-2,
    }
    for name, run in separate.items():
        for metric, rel in tolerance.items():
            assert run[metric] == pytest.approx(batched[name][metric], rel=rel), (name, metric)


@pytest.mark.parametrize(
    "text, message",
    [
        ('preset = "ppo-cartpole"\nbogus = 1', "unknown key(s) bogus"),
        ('preset = "ppo-cartpole"\n[grid]\nnum_envs = 8', "grid.num_envs must be a non-empty"),
        ('preset = "ppo-cartpole"\nseeds = "all"', "`seeds` must be a non-empty list"),
        ('preset = "ppo-nope"', "unknown preset 'ppo-nope'"),
        ("preset = [", "is not valid TOML"),
        ('preset = "ppo-cartpole"\n[overrides]\nnum_envs = 0', "num_envs (--num-envs)"),
        ('preset = "ppo-cartpole"\n[overrides]\nnot_a_field = 1', "bad field or value"),
        ('preset = "ppo-cartpole"\n[overrides]\nnum_envs = "many"', "bad field or value"),
        ('preset = "ppo-cartpole"\n[grid]\nnum_envs = [8, "x"]', "train.num_envs takes int"),
        ('preset = "ppo-cartpole"\n[overrides]\n"train.depth" = 4', "depth is in agent"),
    ],
)
def test_malformed_specs_exit_2_and_write_nothing(tmp_path, text, message):
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    result = sweep(spec, "--sweep-dir", tmp_path / "out")
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_overrides_replace_fields_by_name_and_type():
    from experiments.run import RunSpec, preset_config
    from experiments.sweep import override

    base = RunSpec(preset_config("ppo-cartpole"))
    spec = override(
        base,
        {
            "num_envs": 16,  # bare: whichever section has it
            "agent.learning_rate": 1,  # section.field; TOML's int for a float field
            "policy_hidden_sizes": [32, 32],  # a TOML list for a tuple
            "max_grad_norm": "None",  # the command line's spelling of None
            "checkpoint_every": 2,  # run options too
            "sinks": ["tensorboard"],
        },
    )
    assert spec.config.train.num_envs == 16
    assert spec.config.agent.learning_rate == 1.0
    assert isinstance(spec.config.agent.learning_rate, float)
    assert spec.config.agent.policy_hidden_sizes == (32, 32)
    assert spec.config.agent.max_grad_norm is None
    assert (spec.checkpoint_every, spec.sinks) == (2, ("tensorboard",))
    assert spec.config.env == base.config.env  # nothing else changed
    assert base == RunSpec(preset_config("ppo-cartpole"))  # the preset is untouched


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"num_env": 8}, "'num_env' is no field of this preset's config; did you mean 'num_envs'?"),
        ({"bogus.num_envs": 8}, "no section 'bogus' (env, train, agent)"),
        ({"train.bogus": 8}, "train has no field 'bogus'"),
        ({"num_envs": 8.0}, "train.num_envs takes int, got 8.0"),
        ({"single_goal": 1}, "env.single_goal takes bool, got 1"),
        ({"activation": "gelu"}, "agent.activation takes one of 'tanh', 'relu'"),
        ({"policy_hidden_sizes": [64, "x"]}, "takes tuple[int, ...], got [64, 'x']"),
        ({"sinks": ["tensorbord"]}, "sinks takes tuple"),
    ],
)
def test_bad_overrides_name_the_field(overrides, message):
    from experiments.run import RunSpec, preset_config
    from experiments.sweep import OverrideError, override

    with pytest.raises(OverrideError) as error:
        override(RunSpec(preset_config("ppo-cartpole")), overrides)
    assert message in str(error.value)


CRL_SPEC = """
preset = "crl-point-umaze"
seeds = [0, 1]
[overrides]
total_env_steps = 3200
num_evals = 1
warmup_env_steps = 1600
updates_per_iteration = 2
width = 16
num_eval_envs = 4
[grid]
critic_learning_rate = [0.001, 0.0003]
future_goal_discount = [0.9, 0.99]
"""


def test_vmapped_crl_sweep_applies_each_value(tmp_path):
    """Learning rates and the relabelling discount are traced values inside one program."""
    spec = write_spec(tmp_path / "crl.toml", text=CRL_SPEC)
    result = sweep(spec, "--executor", "vmap", "--sweep-dir", tmp_path / "s")
    assert result.returncode == 0, result.stderr
    assert "vmapped 8 runs (critic_learning_rate, future_goal_discount)" in result.stdout
    runs = summaries(tmp_path / "s")
    assert len(runs) == 8 and all("eval/success_rate" in run for run in runs.values())
    losses = {name: run["train/critic/loss"] for name, run in runs.items() if "seed0" in name}
    assert len(set(losses.values())) == 4  # every configuration trained differently


def test_slurm_tasks_requeue_themselves_on_timeout():
    """submitit calls checkpoint() before a time limit; the task resubmits the same call,
    which resumes the run from its checkpoints."""
    from experiments.sweep import SlurmTask

    argv = ["ppo-cartpole", "--run-dir", "runs/x", "--quiet"]
    task = SlurmTask()
    delayed = task.checkpoint(argv)
    assert delayed.function is task and delayed.args == (argv,)


def test_vmapped_runs_that_go_non_finite_are_reported_not_recorded(tmp_path):
    text = SPEC.replace("learning_rate = [0.001, 0.0003]", "reward_scale = [1.0, 1e38]")
    spec = write_spec(tmp_path / "nf.toml", text=text)
    result = sweep(spec, "--executor", "vmap", "--sweep-dir", tmp_path / "s")
    assert result.returncode == 1
    assert "reward_scale=1e+38/seed0: non-finite update at env step 256" in result.stderr
    assert sorted(summaries(tmp_path / "s")) == ["000-reward_scale=1.0/seed0"]


MULTI_TASK_SPEC = """
preset = "ppo-cartpole"
seeds = [0]
[overrides]
total_env_steps = 4096
num_envs = 16
unroll_length = 16
num_evals = 2
num_devices = 0
[slurm]
tasks_per_node = 2
timeout_min = 10
"""


def test_a_job_of_several_tasks_is_one_run_over_all_of_them(tmp_path):
    """`tasks_per_node = 2` (submitit's local cluster standing in for Slurm): both tasks join
    one run, each with 2 simulated devices; one writer, both processes' checkpoint shards."""
    spec = write_spec(tmp_path / "spec.toml", text=MULTI_TASK_SPEC)
    result = subprocess.run(
        [sys.executable, "-m", "experiments.sweep", str(spec), "--executor", "submitit"]
        + ["--cluster", "local", "--sweep-dir", str(tmp_path / "s")],
        cwd=ROOT,
        env=environ_with_xla_flags("--xla_force_host_platform_device_count=2"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (run_dir,) = (tmp_path / "s").glob("*/seed0")
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2
    assert json.loads((run_dir / "summary.json").read_text())["env_steps"] == 4096
    last = sorted((run_dir / "checkpoints").iterdir())[-1]
    assert {"ocdbt.process_0", "ocdbt.process_1"} <= {p.name for p in last.iterdir()}


def test_tasks_of_one_job_agree_on_their_coordinator():
    from experiments.sweep import joining_variables

    tasks = [joining_variables("4242_3", 4, rank, "node-a") for rank in range(4)]
    assert {t["PURERL_COORDINATOR_ADDRESS"] for t in tasks} == {
        tasks[0]["PURERL_COORDINATOR_ADDRESS"]
    }
    assert tasks[0]["PURERL_COORDINATOR_ADDRESS"].startswith("node-a:")
    assert [t["PURERL_PROCESS_ID"] for t in tasks] == ["0", "1", "2", "3"]
    other = joining_variables("4243_0", 4, 0, "node-a")["PURERL_COORDINATOR_ADDRESS"]
    assert other != tasks[0]["PURERL_COORDINATOR_ADDRESS"]  # another job, another port


def test_coscaling_spec_crosses_num_envs_with_both_sizings():
    """The shipped co-scaling sweep: 7 num_envs x (4 minibatches, minibatches of 512 steps) x
    3 seeds at one budget; the two coincide at 256 envs, and only the recipe's count grows."""
    from experiments.sweep import expand, load_spec

    spec = load_spec(ROOT / "experiments" / "sweeps" / "coscaling.toml")
    jobs = expand(spec, Path("unused"))
    assert len(jobs) == 7 * 2 * 3
    counts: dict[str, dict[int, int]] = {}
    for job in jobs:
        train, agent = job.spec.config.train, job.spec.config.agent
        assert train.trained_env_steps == 2**19 and train.iterations_per_eval >= 1
        mode = "naive" if agent.minibatch_size is None else "recipe"
        counts.setdefault(mode, {})[train.num_envs] = agent.minibatches(train)
    envs = [2**k for k in range(8, 15)]
    assert counts["naive"] == {n: 4 for n in envs}
    assert counts["recipe"] == {n: n * 8 // 512 for n in envs}
    assert counts["recipe"][256] == counts["naive"][256]
