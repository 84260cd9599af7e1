"""A run directory: the one module that knows its layout, and how each file is written and read.

    RUN_DIR/
      config.json     the preset, how the run was driven and the whole config; written first
      metrics.jsonl   one JSON record per evaluation ({"env_steps": int, "wall_time_s": ...})
      summary.json    written last: a run that has one is finished
      checkpoints/    the training state (experiments.checkpoint), one directory per
                      checkpoint, named by iteration, its progress in purerl.json
      evaluations/    <env_steps>.json: `experiments.evaluate` of that checkpoint
      render-<env_steps>.gif / .html   `experiments.render` of that checkpoint
      tensorboard/    event files, when that sink is on (W&B puts its own `wandb/` here)
      .lock           flock'd by the one process writing the run

`experiments.run` writes runs, `experiments.sweep` writes them too (its vmap executor all at
once), `experiments.plot` reads them, `experiments.evaluate` and `experiments.render` read
their checkpoints and add files of their own; all of them go through `RunDir`. Nothing here leaves a
half-written file for a reader or a resumed run: JSON files are replaced atomically, metric
lines are appended with one write and an fsync each, so a kill leaves at most a torn last
line, which every reader skips. Only the standard library is imported (`--help` stays fast).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments.atomic import write_json_atomic, write_text_atomic

if TYPE_CHECKING:
    from experiments.checkpoint import Checkpoints

CONFIG = "config.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
EVALUATIONS = "evaluations"
#: In each checkpoint directory: its progress record and checksums (experiments.checkpoint).
CHECKPOINT_MANIFEST = "purerl.json"
LOCK = ".lock"

#: The record key holding the step; every other numeric key (wall_time_s too) is a metric.
STEP_KEY = "env_steps"


class RunDirError(Exception):
    """A run directory that cannot be used as asked; the message names it and says why."""


class NotEmpty(RunDirError):
    """A new run was asked for in a directory that already holds something."""


class InUse(RunDirError):
    """Another live process holds the directory's lock."""


class CorruptMetrics(ValueError):
    """A metrics line other than the last is not a record: not a torn write, so not skipped."""


class RunDir:
    """One run directory (it need not exist yet): its files, and writing and reading them."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY

    @property
    def checkpoints_path(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def tensorboard_path(self) -> Path:
        return self.path / TENSORBOARD

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK

    @property
    def evaluations_path(self) -> Path:
        return self.path / EVALUATIONS

    def evaluation_path(self, env_steps: int) -> Path:
        """Where `experiments.evaluate` writes its record of the checkpoint at `env_steps`."""
        return self.evaluations_path / f"{env_steps}.json"

    def render_path(self, env_steps: int, suffix: str) -> Path:
        """Where `experiments.render` writes its rollout of that checkpoint by default."""
        return self.path / f"render-{env_steps}{suffix}"

    # State: what a reader or a sweep can tell from the files alone.

    def is_empty(self) -> bool:
        """Missing, or a directory holding at most the lock file: what a run killed before
        writing anything leaves behind, so still free for a new run."""
        if not self.path.exists():
            return True
        return self.path.is_dir() and all(p.name == LOCK for p in self.path.iterdir())

    @property
    def started(self) -> bool:
        """config.json is there: the run was created (it may not have trained yet)."""
        return self.config_path.is_file()

    @property
    def finished(self) -> bool:
        """summary.json is there: the run completed (it is written last)."""
        return self.summary_path.exists()

    def is_run(self) -> bool:
        """Holds config.json and metrics.jsonl: what plots and tables read."""
        return self.config_path.is_file() and self.metrics_path.is_file()

    def has_records(self) -> bool:
        """Whether anything was reported to metrics.jsonl (a torn line counts): a checkpoint
        is only ever written after its evaluation's record, so without one nothing trained."""
        return self.metrics_path.is_file() and self.metrics_path.stat().st_size > 0

    # Claiming.

    def create(self) -> RunDir:
        """Makes the directory for a new run; raises NotEmpty rather than mix two runs' files.

        Check again under `lock` that it is still empty: another process may get there first.
        """
        if not self.is_empty():
            raise NotEmpty(f"run directory {self.path} already exists and is not empty")
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Holds an exclusive lock on RUN_DIR/.lock, so two processes never write one run.

        The kernel drops the lock when its process dies, however it dies, so a killed run's
        directory is free again (on any host or pid namespace). Raises InUse, naming the
        holder, if another process has it; the directory must exist.
        """
        with open(self.lock_path, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                holder = lock.read().strip() or "another process"
                raise InUse(f"run directory {self.path} is in use by {holder}") from None
            lock.seek(0)
            lock.truncate()
            lock.write(f"process {os.getpid()} on {socket.gethostname()}")
            lock.flush()
            yield

    # config.json and summary.json: written whole, atomically.

    def write_config(self, config: dict) -> None:
        write_json_atomic(self.config_path, config)

    def read_config(self) -> dict:
        """config.json; OSError if unreadable, ValueError if it is not a JSON object."""
        config = json.loads(self.config_path.read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
        return config

    def write_summary(self, summary: dict) -> None:
        write_json_atomic(self.summary_path, summary)

    def read_summary(self) -> dict:
        return json.loads(self.summary_path.read_text(encoding="utf-8"))

    # metrics.jsonl.

    def metrics_writer(self, append: bool = False) -> JsonlSink:
        """Streams records to metrics.jsonl; `append` continues it (a resumed run)."""
        return JsonlSink(self.metrics_path, append=append)

    def write_metrics(self, records: Iterable[dict]) -> None:
        """Replaces metrics.jsonl with `records` at once (a run trained in one program)."""
        write_text_atomic(self.metrics_path, "".join(map(encode_record, records)))

    def read_metrics(self) -> list[dict]:
        """The records so far ([] before the first evaluation); see `read_jsonl`."""
        return read_jsonl(self.metrics_path)

    def truncate_metrics(self, max_env_steps: int) -> int:
        """Drops records after `max_env_steps`, for a resumed run; see `truncate_jsonl`."""
        return truncate_jsonl(self.metrics_path, max_env_steps)

    # checkpoints/.

    def checkpoint_progress(self) -> dict[Path, dict]:
        """{checkpoint directory: its progress record} of the complete checkpoints (those with
        a manifest), oldest first, read from their manifests without loading JAX. Checksums
        are not verified here (`Checkpoints.restore` does that)."""
        found = {}
        if not self.checkpoints_path.is_dir():
            return found
        for path in sorted(self.checkpoints_path.iterdir()):
            if not (path.is_dir() and path.name.isdigit()):
                continue
            try:
                manifest = json.loads((path / CHECKPOINT_MANIFEST).read_text(encoding="utf-8"))
                progress = manifest["progress"]
                int(progress["env_steps"])  # a record without its step is not a checkpoint's
            except (OSError, ValueError, KeyError, TypeError):
                continue  # partial (no manifest yet) or unreadable: not offered
            found[path] = progress
        return found

    def checkpoint_env_steps(self) -> dict[int, Path]:
        """{env steps: checkpoint directory} of the complete checkpoints, oldest first (see
        `checkpoint_progress`)."""
        return {int(p["env_steps"]): path for path, p in self.checkpoint_progress().items()}

    def checkpoints(self, keep: int = 3) -> Checkpoints:
        """The run's checkpoints, keeping the newest `keep` (loads JAX and orbax)."""
        from experiments.checkpoint import Checkpoints

        return Checkpoints(self.checkpoints_path, keep)


def _json_default(value: Any) -> Any:
    # NumPy / JAX scalars are not JSON-serialisable; `.item()` keeps ints as ints, which
    # matters for env_steps (float() would turn it into 1000.0).
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_record(record: dict) -> str:
    """One metrics.jsonl line, newline included."""
    return json.dumps(record, default=_json_default) + "\n"


class JsonlSink:
    """One JSON line per record, flushed and fsync'd so a killed run keeps every reported line.

    The metrics sink every run has (see experiments.sinks for the optional ones)."""

    def __init__(self, path: str | os.PathLike[str], append: bool = False):
        """Opens `path` for writing; `append=True` continues an existing file (resumed runs)."""
        self.path = Path(path)
        # Held open for the whole run rather than reopened per record.
        self._file = open(self.path, "a" if append else "w", encoding="utf-8")

    def write(self, record: dict) -> None:
        """Appends `record` as one line and forces it to disk."""
        # One write call per line keeps a kill from interleaving partial records.
        self._file.write(encode_record(record))
        self._file.flush()
        # flush() only reaches the OS; fsync makes the line survive a machine crash too.
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Closes the file (idempotent)."""
        self._file.close()


def _records(path: Path) -> Iterator[tuple[str, dict]]:
    """(line, record) for each record of a JSONL metrics file, in order.

    Blank lines are skipped. A last line that is not a record is the torn tail of a killed
    (or still running) write and is skipped too; any other raises CorruptMetrics.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not (isinstance(record, dict) and STEP_KEY in record):
            if number == len(lines):
                return
            raise CorruptMetrics(f"{path}:{number}: not a metrics record: {line[:80]!r}")
        yield line, record


def read_jsonl(path: str | os.PathLike[str]) -> list[dict]:
    """The records of a metrics file; a missing file has none. Readers may run alongside the
    writer: its torn last line is skipped. Raises CorruptMetrics for a bad line elsewhere."""
    path = Path(path)
    if not path.exists():
        return []
    return [record for _, record in _records(path)]


def truncate_jsonl(path: str | os.PathLike[str], max_env_steps: int) -> int:
    """Keeps only the records of `path` with env_steps <= max_env_steps; returns how many.

    A resumed run calls this before appending, so evaluations reported after its last
    checkpoint are not duplicated, and a torn last line (partial JSON from a kill) is dropped.
    The file is replaced atomically (temporary file + rename): a crash mid-way leaves either
    the old or the new file, never a mix. A missing file is left missing (returns 0); a
    corrupt line other than the last raises CorruptMetrics (a ValueError) and changes nothing.
    """
    path = Path(path)
    if not path.exists():
        return 0
    kept = [line for line, record in _records(path) if record[STEP_KEY] <= max_env_steps]
    write_text_atomic(path, "".join(line + "\n" for line in kept))
    return len(kept)
