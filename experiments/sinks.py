"""Metric sinks: where a run's evaluation records go, behind one interface.

Every sink takes the same record, one per evaluation:
`{"env_steps": int, "wall_time_s": float, "<name>": float, ...}`. The training loop writes
each record to a `MultiSink` built by `make_sinks`, so no algorithm knows which loggers are on.
JSONL (`run_dir/metrics.jsonl`, experiments.rundir's `JsonlSink`) is always written;
TensorBoard and Weights & Biases are opt-in and import their packages only when asked for, so
the core CLI does not depend on them.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol, get_args, runtime_checkable

from experiments.rundir import STEP_KEY, RunDir

#: Optional sinks `make_sinks` accepts by name (the run options' type: the one list of names);
#: JSONL needs no name because it is always on.
SinkName = Literal["tensorboard", "wandb"]
SINK_NAMES: tuple[str, ...] = get_args(SinkName)
#: The module each optional sink imports, and the pip extra of purerl that installs it.
SINK_PACKAGES: dict[str, tuple[str, str]] = {
    "tensorboard": ("tensorboardX", "tensorboard"),
    "wandb": ("wandb", "wandb"),
}


@runtime_checkable
class Sink(Protocol):
    """Receives one record per evaluation and releases its resources on close."""

    def write(self, record: dict) -> None:
        """Stores `record` ({"env_steps": int, "wall_time_s": float, name: float, ...})."""
        ...

    def close(self) -> None:
        """Flushes and releases the sink; no writes follow."""
        ...


def _metrics(record: dict) -> dict[str, float]:
    """The numeric entries of a record other than the step, as floats."""
    # __float__ admits Python, NumPy and JAX scalars alike; strings (notes, tags) are skipped.
    return {
        key: float(value)
        for key, value in record.items()
        if key != STEP_KEY and hasattr(value, "__float__")
    }


class TensorBoardSink:
    """Each numeric metric as a TensorBoard scalar at global step env_steps (tensorboardX).

    Events go through tensorboardX's synchronous `EventsWriter` (the file writer beneath its
    `SummaryWriter`) rather than `SummaryWriter` itself: `SummaryWriter.flush()` does not wait
    for its background queue, so points "flushed" just before a kill could still be lost. The
    event file format is the same.
    """

    def __init__(self, log_dir: str | os.PathLike, purge_step: int | None = None):
        """Writes an event file under `log_dir` (created if missing).

        `purge_step`: on a resumed run, the first step not covered by the checkpoint;
        TensorBoard then hides the points the killed run logged at or after it.
        """
        try:
            from tensorboardX.event_file_writer import EventsWriter
            from tensorboardX.proto.event_pb2 import Event, SessionLog
            from tensorboardX.proto.summary_pb2 import Summary
        except ImportError as error:
            raise ImportError(
                "TensorBoard logging needs tensorboardX: pip install 'purerl[tensorboard]'"
            ) from error
        self._event, self._summary = Event, Summary
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # The default file name has one-second resolution; a run resumed within the same
        # second (or a second sink) would truncate the first file without a unique suffix.
        suffix = f".{os.getpid()}.{uuid.uuid4().hex[:8]}"
        self._writer = EventsWriter(str(self.log_dir / "events"), filename_suffix=suffix)
        if purge_step is not None:
            # What SummaryWriter(purge_step=...) writes: a session restart at that step.
            restart = SessionLog(status=SessionLog.START)
            self._writer.write_event(
                Event(wall_time=time.time(), step=purge_step, session_log=restart)
            )
        self._writer.flush()

    def write(self, record: dict) -> None:
        """Adds every numeric metric (names as-is, e.g. "eval/episode_return") and flushes."""
        values = [
            self._summary.Value(tag=name, simple_value=value)
            for name, value in _metrics(record).items()
        ]
        event = self._event(
            wall_time=time.time(), step=int(record[STEP_KEY]), summary=self._summary(value=values)
        )
        self._writer.write_event(event)
        self._writer.flush()  # flushes and fsyncs

    def close(self) -> None:
        """Flushes and closes the event file."""
        self._writer.close()


class WandbSink:
    """Logs records to a Weights & Biases run; offline by default, so no account is needed."""

    def __init__(
        self,
        run_dir: str | os.PathLike,
        project: str,
        config: dict,
        mode: str = "offline",
        name: str | None = None,
    ):
        """Starts a W&B run whose files go under `run_dir/wandb`.

        `mode` is W&B's: "offline" (default; `wandb sync` uploads it later), "online" (needs
        `wandb login` or WANDB_API_KEY) or "disabled". A resumed run starts a new W&B run.
        """
        try:
            import wandb
        except ImportError as error:
            raise ImportError(
                "Weights & Biases logging needs wandb: pip install 'purerl[wandb]'"
            ) from error
        self.run_dir = Path(run_dir)
        if os.environ.get("WANDB_MODE") == "":  # W&B rejects an empty mode; unset means default
            del os.environ["WANDB_MODE"]
        self._run = wandb.init(
            project=project,
            dir=str(self.run_dir),
            mode=mode,
            config=config,
            name=name,
            # create_new: several sinks (or a test suite) in one process must not finish each
            # other's runs. silent: W&B's banner lines would break up the progress bar.
            reinit="create_new",
            settings=wandb.Settings(silent=True),
        )

    def write(self, record: dict) -> None:
        """Logs the metrics at step env_steps (W&B requires steps to increase)."""
        self._run.log(_metrics(record), step=int(record[STEP_KEY]))

    def close(self) -> None:
        """Finishes the run, writing its remaining data."""
        self._run.finish()


class MultiSink:
    """Fans every record out to several sinks; usable as a context manager."""

    def __init__(self, sinks: Sequence[Sink]):
        self.sinks = list(sinks)

    def write(self, record: dict) -> None:
        """Writes `record` to every sink, in order."""
        for sink in self.sinks:
            sink.write(record)

    def close(self) -> None:
        """Closes every sink, even if one fails; re-raises the first failure afterwards."""
        first_error: BaseException | None = None
        for sink in self.sinks:
            try:
                sink.close()
            except BaseException as error:  # the other sinks must still be closed
                first_error = first_error or error
        if first_error is not None:
            raise first_error

    def __enter__(self) -> MultiSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def make_sinks(
    run_dir: str | os.PathLike[str],
    names: Sequence[str],
    config: dict,
    append: bool,
    *,
    resume_env_steps: int | None = None,
) -> MultiSink:
    """The sinks for a run: JSONL always, plus the optional `names` (⊆ SINK_NAMES).

    JSONL goes to run_dir/metrics.jsonl (appended to when `append`), TensorBoard to
    run_dir/tensorboard, W&B (offline, project "purerl", named after the run directory) to
    run_dir/wandb. `resume_env_steps`, the env steps of the checkpoint a run resumes from,
    hides the TensorBoard points logged after it. Unknown names raise ValueError before
    anything is created.
    """
    run = RunDir(run_dir)
    unknown = [name for name in names if name not in SINK_NAMES]
    if unknown:
        raise ValueError(
            f"unknown metric sink(s) {', '.join(map(repr, unknown))}; "
            f"valid choices: {', '.join(SINK_NAMES)} (JSONL is always written)"
        )
    sinks: list[Sink] = [run.metrics_writer(append)]
    try:
        for name in dict.fromkeys(names):  # de-duplicates, keeping order
            if name == "tensorboard":
                purge = None if resume_env_steps is None else resume_env_steps + 1
                sinks.append(TensorBoardSink(run.tensorboard_path, purge_step=purge))
            elif name == "wandb":
                sinks.append(WandbSink(run.path, "purerl", config, name=run.path.name))
    except BaseException:
        # A missing package must not leave the already-open sinks dangling.
        MultiSink(sinks).close()
        raise
    return MultiSink(sinks)
