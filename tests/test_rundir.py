"""The run-directory module: layout, claiming, locking, and durable writes read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import experiments.atomic as atomic
from experiments.rundir import CorruptMetrics, InUse, NotEmpty, RunDir
from tests.test_cli import ROOT

RECORDS = [
    {"env_steps": 1000, "wall_time_s": 1.5, "eval/episode_return": -3.25},
    {"env_steps": 2000, "wall_time_s": 2.75, "eval/episode_return": 7.0},
    {"env_steps": 3000, "wall_time_s": 4.0, "eval/episode_return": 12.5},
]


def test_layout_names_the_files_every_tool_reads(tmp_path):
    run = RunDir(tmp_path / "r")
    assert (run.config_path.name, run.metrics_path.name, run.summary_path.name) == (
        "config.json",
        "metrics.jsonl",
        "summary.json",
    )
    assert run.checkpoints_path == tmp_path / "r" / "checkpoints"
    assert run.lock_path.name == ".lock"
    assert str(run) == os.fspath(run) == str(tmp_path / "r")
    assert RunDir(run).path == run.path  # a RunDir is a path-like too


def test_create_makes_a_new_directory_and_accepts_one_holding_only_the_lock(tmp_path):
    run = RunDir(tmp_path / "a" / "b").create()
    assert run.path.is_dir() and run.is_empty()
    run.lock_path.write_text("process 1 on gone")  # what a run killed at once leaves
    assert RunDir(run.path).create().path == run.path


@pytest.mark.parametrize("leftover", ["metrics.jsonl", "notes.txt", "checkpoints/"])
def test_create_refuses_a_directory_that_holds_anything(tmp_path, leftover):
    run = RunDir(tmp_path)
    target = tmp_path / leftover.rstrip("/")
    target.mkdir() if leftover.endswith("/") else target.write_text("old")
    with pytest.raises(NotEmpty, match=f"run directory {tmp_path} already exists"):
        run.create()
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # nothing touched


def test_create_refuses_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(NotEmpty):
        RunDir(tmp_path / "file").create()


def test_lock_names_its_holder_and_is_free_after(tmp_path):
    run = RunDir(tmp_path)
    with run.lock():
        holder = run.lock_path.read_text()
        assert holder.startswith(f"process {os.getpid()} on ")
        # flock is per open file, so a second open in the same process is refused too.
        with pytest.raises(InUse, match=f"in use by {holder}"), run.lock():
            pass
    with run.lock():
        pass


def test_config_and_summary_round_trip_and_mark_the_run(tmp_path):
    run = RunDir(tmp_path).create()
    assert not run.started and not run.finished
    config = {"preset": "p", "train": {"seed": 3}, "agent": {"hidden_sizes": [64, 64]}}
    run.write_config(config)
    assert run.started and run.read_config() == config
    assert run.config_path.read_text().startswith("{\n  ")  # indented, as before
    run.write_summary({"env_steps": 3000})
    assert run.finished and run.read_summary() == {"env_steps": 3000}


def test_read_config_refuses_a_json_value_that_is_not_an_object(tmp_path):
    run = RunDir(tmp_path)
    run.config_path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a JSON object"):
        run.read_config()


def test_a_run_without_metrics_has_no_records(tmp_path):
    run = RunDir(tmp_path).create()
    assert run.read_metrics() == [] and not run.has_records() and not run.is_run()
    assert run.truncate_metrics(100) == 0 and not run.metrics_path.exists()
    run.write_config({"preset": "p"})
    run.metrics_writer().close()  # started, no evaluation yet
    assert run.is_run() and run.read_metrics() == [] and not run.has_records()


def test_streamed_metrics_are_on_disk_at_once_and_append_on_resume(tmp_path):
    np = pytest.importorskip("numpy")
    run = RunDir(tmp_path)
    writer = run.metrics_writer()
    writer.write(RECORDS[0])
    assert run.read_metrics() == RECORDS[:1] and run.has_records()  # before close
    # NumPy scalars, as device_get returns them; the step stays an int.
    writer.write({"env_steps": np.int64(2000), "wall_time_s": np.float32(2.75)})
    writer.close()
    assert run.metrics_path.read_text().splitlines()[1] == (
        '{"env_steps": 2000, "wall_time_s": 2.75}'
    )
    resumed = run.metrics_writer(append=True)
    resumed.write(RECORDS[2])
    resumed.close()
    assert [r["env_steps"] for r in run.read_metrics()] == [1000, 2000, 3000]


def test_whole_metrics_file_round_trips(tmp_path):
    run = RunDir(tmp_path)
    run.write_metrics(RECORDS)
    assert run.read_metrics() == RECORDS
    assert run.metrics_path.read_text() == "".join(json.dumps(r) + "\n" for r in RECORDS)


def test_readers_skip_a_torn_last_line_and_refuse_a_bad_one_elsewhere(tmp_path):
    run = RunDir(tmp_path)
    good = "".join(json.dumps(r) + "\n" for r in RECORDS[:2])
    run.metrics_path.write_text(good + '{"env_steps": 3000, "eval/ep')  # a kill mid-write
    assert run.read_metrics() == RECORDS[:2]
    run.metrics_path.write_text(good + '{"no_steps": 1}')  # not a record: as good as torn
    assert run.read_metrics() == RECORDS[:2]
    run.metrics_path.write_text('{"env_st\n' + good)
    with pytest.raises(CorruptMetrics, match=r"metrics.jsonl:1: not a metrics record"):
        run.read_metrics()


def test_truncate_keeps_the_records_up_to_a_checkpoint(tmp_path):
    run = RunDir(tmp_path)
    run.write_metrics(RECORDS)
    assert run.truncate_metrics(2000) == 2
    assert run.read_metrics() == RECORDS[:2]


@pytest.mark.parametrize(
    "write",
    [
        lambda run: run.write_config({"new": True}),
        lambda run: run.write_summary({"new": True}),
        lambda run: run.write_metrics([{"env_steps": 9}]),
        lambda run: run.truncate_metrics(0),
    ],
    ids=["config", "summary", "metrics", "truncate"],
)
def test_a_failed_write_leaves_the_old_file_whole(tmp_path, monkeypatch, write):
    """A crash before the rename: the old file stays as it was, and no temporary file."""
    run = RunDir(tmp_path)
    old = {
        run.config_path: '{"old": true}\n',
        run.summary_path: '{"old": true}\n',
        run.metrics_path: "".join(json.dumps(r) + "\n" for r in RECORDS),
    }
    for path, text in old.items():
        path.write_text(text)

    def crash(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        write(run)
    assert {path: path.read_text() for path in old} == old
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in old)


def test_importing_rundir_loads_no_jax():
    """run.py imports it at the top, and `--help` must answer without JAX."""
    code = (
        "import sys, experiments.rundir; "
        "print(sorted(m for m in sys.modules if m.startswith(('jax', 'orbax', 'purerl'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
