"""Metric sinks: JSONL durability and truncation, TensorBoard and offline W&B read-back."""

from __future__ import annotations

import json
import struct
import sys
import time
from pathlib import Path

import pytest

from experiments.rundir import JsonlSink, truncate_jsonl
from experiments.sinks import (
    SINK_NAMES,
    SINK_PACKAGES,
    MultiSink,
    Sink,
    TensorBoardSink,
    make_sinks,
)

RECORDS = [
    {"env_steps": 1000, "wall_time_s": 1.5, "eval/episode_return": -3.25, "train/loss": 0.5},
    {"env_steps": 2000, "wall_time_s": 2.75, "eval/episode_return": 7.0, "train/loss": 0.25},
    {"env_steps": 3000, "wall_time_s": 4.0, "eval/episode_return": 12.5, "train/loss": 0.125},
]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_jsonl_round_trips_and_appends(tmp_path):
    path = tmp_path / "metrics.jsonl"
    sink = JsonlSink(path)
    assert isinstance(sink, Sink)
    sink.write(RECORDS[0])
    # Each line is on disk as soon as write returns, before close (a killed run keeps it).
    assert read_jsonl(path) == RECORDS[:1]
    sink.write(RECORDS[1])
    sink.close()
    assert read_jsonl(path) == RECORDS[:2]

    resumed = JsonlSink(path, append=True)
    resumed.write(RECORDS[2])
    resumed.close()
    assert read_jsonl(path) == RECORDS

    fresh = JsonlSink(path)  # append=False starts over
    fresh.close()
    assert path.read_text() == ""


def test_jsonl_keeps_numpy_steps_as_ints(tmp_path):
    np = pytest.importorskip("numpy")
    path = tmp_path / "metrics.jsonl"
    with MultiSink([JsonlSink(path)]) as sink:
        sink.write({"env_steps": np.int64(5), "eval/x": np.float32(0.5)})
    assert path.read_text() == '{"env_steps": 5, "eval/x": 0.5}\n'


def test_truncate_keeps_steps_up_to_max_and_drops_torn_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps(record) for record in RECORDS]
    path.write_text("\n".join(lines) + '\n{"env_steps": 4000, "eval/episode_ret')
    assert truncate_jsonl(path, 2000) == 2
    assert read_jsonl(path) == RECORDS[:2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]  # no tmp file left

    # A resumed run appends after truncating; the file stays one record per line.
    with MultiSink([JsonlSink(path, append=True)]) as sink:
        sink.write(RECORDS[2])
    assert read_jsonl(path) == RECORDS


def test_truncate_torn_line_alone_and_complete_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"env_st')
    assert truncate_jsonl(path, 10**9) == 0
    assert path.read_text() == ""
    # A complete record that only lacks its newline is kept, and gets one.
    path.write_text(json.dumps(RECORDS[0]))
    assert truncate_jsonl(path, 10**9) == 1
    assert path.read_text() == json.dumps(RECORDS[0]) + "\n"


def test_truncate_missing_file_and_corrupt_middle_line(tmp_path):
    assert truncate_jsonl(tmp_path / "absent.jsonl", 10) == 0
    assert not (tmp_path / "absent.jsonl").exists()
    path = tmp_path / "metrics.jsonl"
    original = "garbage\n" + json.dumps(RECORDS[0]) + "\n"
    path.write_text(original)
    with pytest.raises(ValueError, match="metrics.jsonl:1"):
        truncate_jsonl(path, 10)
    assert path.read_text() == original  # untouched on error


def test_truncate_is_atomic(tmp_path, monkeypatch):
    """A failure before the rename leaves the old file intact and no temporary file."""
    import experiments.atomic as atomic

    path = tmp_path / "metrics.jsonl"
    original = "".join(json.dumps(record) + "\n" for record in RECORDS)
    path.write_text(original)

    def failing_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk gone"):
        truncate_jsonl(path, 1000)
    assert path.read_text() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]


def read_tfrecords(path: Path) -> list[bytes]:
    """The payloads of a TFRecord file: uint64 length, uint32 CRC, payload, uint32 CRC each."""
    from tensorboardX.record_writer import masked_crc32c

    data, offset, payloads = path.read_bytes(), 0, []
    while offset < len(data):
        header = data[offset : offset + 8]
        (length,) = struct.unpack("<Q", header)
        payload = data[offset + 12 : offset + 12 + length]
        # Checked as TensorBoard does, so a corrupt or torn record fails here too.
        (header_crc,) = struct.unpack_from("<I", data, offset + 8)
        (payload_crc,) = struct.unpack_from("<I", data, offset + 12 + length)
        assert header_crc == masked_crc32c(header) and payload_crc == masked_crc32c(payload)
        payloads.append(payload)
        offset += 12 + length + 4
    assert offset == len(data), f"{path} ends in a partial record"
    return payloads


def read_tfevents_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Parses TFRecord event files (the `tensorboard` package is not a dependency)."""
    from tensorboardX.proto import event_pb2

    scalars: dict[str, list[tuple[int, float]]] = {}
    files = sorted(log_dir.glob("events.out.tfevents.*"))
    assert files, f"no event file in {log_dir}"
    events = [event_pb2.Event.FromString(r) for file in files for r in read_tfrecords(file)]
    for event in sorted(events, key=lambda event: event.step):
        for value in event.summary.value:
            scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_tensorboard_scalars_read_back(tmp_path):
    pytest.importorskip("tensorboardX")
    sink = TensorBoardSink(tmp_path / "tb")
    for record in RECORDS[:2]:
        sink.write(record)
    # Flushed on every write: readable before close.
    assert read_tfevents_scalars(tmp_path / "tb")["eval/episode_return"] == [
        (1000, -3.25),
        (2000, 7.0),
    ]
    sink.write({**RECORDS[2], "note": "not a number"})
    sink.close()

    scalars = read_tfevents_scalars(tmp_path / "tb")
    assert set(scalars) == {"wall_time_s", "eval/episode_return", "train/loss"}
    for name in scalars:
        assert scalars[name] == [(r["env_steps"], pytest.approx(r[name])) for r in RECORDS]


def test_tensorboard_purge_step_marks_a_restart(tmp_path):
    pytest.importorskip("tensorboardX")
    from tensorboardX.proto import event_pb2

    first = TensorBoardSink(tmp_path)
    first.write(RECORDS[0])
    first.close()
    resumed = TensorBoardSink(tmp_path, purge_step=1001)  # a second file, same second
    resumed.write(RECORDS[1])
    resumed.close()
    files = sorted(tmp_path.glob("events.out.tfevents.*"))
    assert len(files) == 2
    assert read_tfevents_scalars(tmp_path)["train/loss"] == [(1000, 0.5), (2000, 0.25)]
    starts = [
        event.step
        for file in files
        for event in map(event_pb2.Event.FromString, read_tfrecords(file))
        if event.session_log.status == event_pb2.SessionLog.START
    ]
    assert starts == [1001]


def test_missing_package_gives_install_hint(tmp_path, monkeypatch):
    from experiments.sinks import WandbSink

    # A None entry makes `import` raise ImportError; already-imported submodules need one too.
    for package in ("tensorboardX", "wandb"):
        for module in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            monkeypatch.setitem(sys.modules, module, None)
        monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(ImportError, match=r"pip install 'purerl\[tensorboard\]'"):
        TensorBoardSink(tmp_path / "tb")
    with pytest.raises(ImportError, match=r"pip install 'purerl\[wandb\]'"):
        WandbSink(tmp_path, "purerl", {})


def read_wandb_records(path: Path) -> list:
    """Decodes a W&B transaction log (.wandb): a LevelDB-style log of protobuf Records."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a W&B transaction log"
    block, offset, records, pending = 32768, 7, [], b""
    while offset + 7 <= len(data):
        if block - offset % block < 7:  # too little room for a header: the block is padded
            offset += block - offset % block
            continue
        length, kind = struct.unpack_from("<HB", data, offset + 4)
        chunk = data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind == 0:  # zero padding at the end of a block
            continue
        pending = chunk if kind in (1, 2) else pending + chunk  # FULL/FIRST vs MIDDLE/LAST
        if kind in (1, 4):
            records.append(wandb_internal_pb2.Record.FromString(pending))
    return records


def read_finished_wandb_log(path: Path, timeout_s: float = 60.0) -> list:
    """The records of a W&B transaction log once it holds the run's last one ("exit"). W&B's
    own process writes the file, and on a loaded machine it may still be flushing it after
    `run.finish()` returns (a full test run once read only its header)."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = read_wandb_records(path)
        done = any(record.WhichOneof("record_type") == "exit" for record in records)
        if done or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def test_wandb_offline_run_logs_history(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    # No network, no account: offline mode must never prompt for a login.
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    for variable in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / "wandb-home"))  # keep ~ untouched
    run_dir = tmp_path / "my-run"
    run_dir.mkdir()

    sinks = make_sinks(run_dir, ["wandb"], {"lr": 3e-4}, append=False)
    for record in RECORDS:
        sinks.write(record)
    sinks.close()

    assert read_jsonl(run_dir / "metrics.jsonl") == RECORDS
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    logs = list(runs[0].glob("run-*.wandb"))
    assert len(logs) == 1

    history: dict[str, list[tuple[int, float]]] = {}
    run_names = []
    for record in read_finished_wandb_log(logs[0]):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run_names.append(record.run.display_name)
        elif kind == "history":
            step = record.history.step.num
            for item in record.history.item:
                # A flat key such as "eval/x" arrives as a one-element nested_key.
                key = item.key or ".".join(item.nested_key)
                if not key.startswith("_"):
                    history.setdefault(key, []).append((step, json.loads(item.value_json)))
    assert "my-run" in run_names
    assert history["eval/episode_return"] == [
        (r["env_steps"], r["eval/episode_return"]) for r in RECORDS
    ]
    assert history["wall_time_s"] == [(r["env_steps"], r["wall_time_s"]) for r in RECORDS]


def test_make_sinks_jsonl_always_and_tensorboard(tmp_path):
    pytest.importorskip("tensorboardX")
    with make_sinks(tmp_path, [], {}, append=False) as sinks:
        assert len(sinks.sinks) == 1
        sinks.write(RECORDS[0])
    with make_sinks(tmp_path, ["tensorboard", "tensorboard"], {}, append=True) as sinks:
        assert len(sinks.sinks) == 2  # duplicates collapse
        sinks.write(RECORDS[1])
    assert read_jsonl(tmp_path / "metrics.jsonl") == RECORDS[:2]
    assert read_tfevents_scalars(tmp_path / "tensorboard")["train/loss"] == [(2000, 0.25)]


def test_unknown_sink_name_is_rejected_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="'tensorbord'.*tensorboard, wandb"):
        make_sinks(tmp_path, ["tensorboard", "tensorbord"], {}, append=False)
    assert list(tmp_path.iterdir()) == []
    assert SINK_NAMES == ("tensorboard", "wandb") == tuple(SINK_PACKAGES)


def test_multisink_closes_every_sink_even_if_one_fails():
    closed = []

    class Recorder:
        def __init__(self, name: str, fail: bool = False):
            self.name, self.fail, self.records = name, fail, []

        def write(self, record: dict) -> None:
            self.records.append(record)

        def close(self) -> None:
            closed.append(self.name)
            if self.fail:
                raise RuntimeError(f"{self.name} failed")

    sinks = [Recorder("a", fail=True), Recorder("b")]
    multi = MultiSink(sinks)
    multi.write(RECORDS[0])
    assert all(sink.records == [RECORDS[0]] for sink in sinks)
    with pytest.raises(RuntimeError, match="a failed"):
        multi.close()
    assert closed == ["a", "b"]
