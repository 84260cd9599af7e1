"""Train a preset: `python -m experiments.run PRESET [--field value ...]`.

Writes a run directory with config.json, metrics.jsonl (one line per evaluation) and
summary.json (experiments.rundir knows the layout). `python -m experiments.run --help` lists
the presets; `PRESET --help` documents every field.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from experiments.presets import DEFAULT_PRESET, PRESETS
from experiments.rundir import InUse, NotEmpty, RunDir
from experiments.sinks import SINK_PACKAGES, SinkName
from purerl import Config, ConfigError, validate
from purerl.distributed import DistributedConfig


@dataclass(frozen=True)
class RunSpec:
    config: Annotated[Config, tyro.conf.OmitArgPrefixes]
    run_dir: str | None = None
    """Where results go; default runs/PRESET/TIMESTAMP-seedSEED. Must be new or empty."""
    quiet: bool = False
    """No progress bar (for batch jobs); the summary line is still printed."""
    checkpoint_every: int = 1
    """Checkpoint the whole training state after every N evaluations (0: never)."""
    keep_checkpoints: int = 3
    """How many of the newest checkpoints to keep."""
    sinks: tuple[SinkName, ...] = ()
    """Metric sinks besides RUN_DIR/metrics.jsonl: tensorboard (RUN_DIR/tensorboard), wandb
    (offline, RUN_DIR/wandb; `wandb sync` uploads it later)."""
    distributed: Annotated[DistributedConfig, tyro.conf.OmitArgPrefixes] = DistributedConfig()
    """How this process joins a run of several processes (purerl.distributed); not part of
    the run's recorded config: a run may resume on another number of processes."""


class UsageError(Exception):
    """Bad input: reported in one line, exit code 2, nothing written."""


def usage() -> str:
    lines = ["usage: python -m experiments.run PRESET [--field value ...]", "", "presets:"]
    for name, preset in PRESETS.items():
        lines.append(f"  {name:24s} {preset.description}")
    lines += [
        "",
        f"default for `make run`: {DEFAULT_PRESET}",
        "`python -m experiments.run PRESET --help` documents every field.",
    ]
    return "\n".join(lines)


def preset_config(name: str) -> Config:
    """The preset's config; UsageError listing the presets for an unknown name."""
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name].config


def parse(argv: list[str]) -> tuple[str, RunSpec]:
    """Returns (preset name, run spec), not yet validated (`check` does that, after `join`:
    validation may ask JAX for the devices, which a multi-process run must join first);
    raises UsageError on bad input."""
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        raise SystemExit(0 if argv else 2)
    name, rest = argv[0], argv[1:]
    spec = tyro.cli(
        RunSpec,
        default=RunSpec(preset_config(name)),
        args=rest,
        prog=f"python -m experiments.run {name}",
        description=PRESETS[name].description,
        # The preset decides the agent's config type; its fields become flags.
        config=(tyro.conf.AvoidSubcommands,),
    )
    return name, spec


def join(spec: RunSpec) -> int:
    """Joins the multi-process run `spec.distributed` (or the environment, or Slurm)
    describes, before anything else touches JAX; returns the number of processes."""
    from purerl import distributed

    with config_errors():
        try:
            return distributed.initialize(spec.distributed)
        except distributed.DistributedError as error:
            raise UsageError(str(error)) from None


def check(spec: RunSpec) -> RunSpec:
    """Validates the config and the run options (UsageError naming the flag); returns `spec`.

    Shared by the command line and sweeps, whose specs are built by replacing fields."""
    with config_errors():
        validate(spec.config)
    for sink in spec.sinks:
        module, extra = SINK_PACKAGES[sink]
        if importlib.util.find_spec(module) is None:
            raise UsageError(
                f"--sinks {sink} needs {module}: pip install 'purerl[{extra}]' (or drop it)"
            )
    if spec.checkpoint_every < 0 or spec.keep_checkpoints < 1:
        raise UsageError(
            "--checkpoint-every must be >= 0 and --keep-checkpoints >= 1, got "
            f"{spec.checkpoint_every} and {spec.keep_checkpoints}"
        )
    return spec


@contextlib.contextmanager
def config_errors():
    """Turns a ConfigError into a UsageError naming the field and its flag."""
    try:
        yield
    except ConfigError as error:
        flag = as_flags(error.field)
        where = error.field if flag == error.field else f"{error.field} ({flag})"
        raise UsageError(f"invalid config {where}: {as_flags(error.args[0])}") from None


_FIELD = re.compile(r"\b(?:env|train|agent|distributed)\.([a-z_]+)(?:=(\S+?))?(?=[\s,;)]|\.?$)")


def as_flags(text: str) -> str:
    """The library names fields (`train.num_envs=4096`, `env.single_goal=False`); the CLI
    says the same with its flags (`--num-envs 4096`, `--no-single-goal`)."""

    def flag(match: re.Match) -> str:
        name, value = match.group(1).replace("_", "-"), match.group(2)
        if value == "False":
            return f"--no-{name}"
        return f"--{name}" if value in (None, "True") else f"--{name} {value}"

    return _FIELD.sub(flag, text)


def make_run_dir(spec: RunSpec, preset: str) -> RunDir:
    """Creates the new run's directory (default runs/PRESET/TIMESTAMP-seedSEED)."""
    if spec.run_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path("runs") / preset / f"{stamp}-seed{spec.config.train.seed}"
    else:
        path = Path(spec.run_dir)
    try:
        return RunDir(path).create()
    except NotEmpty as error:
        raise UsageError(
            f"{error}; pass a new --run-dir so earlier results are never overwritten"
        ) from None


class TrainingStopped(Exception):
    """Training could not go on (a non-finite update); the message says where and why."""


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike[str]):
    """Holds the run directory's lock (`RunDir.lock`) for a run's lifetime; UsageError if
    another process holds it."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(RunDir(run_dir).lock())
        except InUse as error:
            raise UsageError(f"{error}; wait for it or pass a new --run-dir") from None
        yield


def record_config(run_dir: RunDir, preset: str, spec: RunSpec) -> None:
    """Writes a new run's config.json, its first file; call it holding the lock."""
    from purerl.config import to_dict

    if not run_dir.is_empty():
        # Another process wrote here between our emptiness check and taking the lock.
        raise UsageError(f"run directory {run_dir} is no longer empty; pass a new --run-dir")
    run_options = {
        k: v for k, v in dataclasses.asdict(spec).items() if k not in ("config", "distributed")
    }
    run_dir.write_config({"preset": preset, "run": run_options, **to_dict(spec.config)})


def prepare(preset: str, spec: RunSpec) -> RunDir:
    """Creates a new run's directory and config.json without training it; `--resume RUN_DIR`
    then trains it from the start. A sweep prepares its runs so that each process needs only
    the run directory."""
    run_dir = make_run_dir(spec, preset)
    with run_lock(run_dir):
        record_config(run_dir, preset, spec)
    return run_dir


def nonfinite_message(metrics: dict, steps_per_iteration: int) -> str | None:
    """Where and what went non-finite in a chunk's metrics, or None if nothing did."""
    iteration = int(metrics.get("health/nonfinite_iteration", -1))
    if iteration < 0:
        return None
    prefix = "health/nonfinite/"
    bad = [
        ("parameters" if k == prefix + "parameters" else "train/" + k[len(prefix) :])
        for k, v in metrics.items()
        if k.startswith(prefix) and v
    ]
    return (
        f"non-finite {', '.join(bad)} at env step {iteration * steps_per_iteration} "
        f"(update {iteration})"
    )


def summary_of(
    preset: str, record: dict, compile_time: float, train_time: float, eval_time: float | None
) -> dict:
    """summary.json: env steps, times, training speed and the last evaluation's metrics.

    train_time and env_steps_per_second cover training only; evaluations are eval_time. A
    vmapped sweep runs training and evaluations as one program and cannot time them apart:
    it passes eval_time None (its train_time includes evaluation)."""
    return {
        "preset": preset,
        "env_steps": record["env_steps"],
        "compile_time_s": round(compile_time, 3),
        "train_time_s": round(train_time, 3),
        "eval_time_s": None if eval_time is None else round(eval_time, 3),
        "env_steps_per_second": round(record["env_steps"] / train_time, 1),
        **{k: v for k, v in record.items() if k.startswith(("eval/", "train/"))},
    }


def train(preset: str, spec: RunSpec, resume: bool = False) -> dict:
    """Runs (or, with `resume`, continues) training in the run directory; returns the summary.

    Metrics stream to the sinks after every evaluation; a checkpoint of the whole training
    state follows every `checkpoint_every` evaluations. A resumed run restores the newest valid
    checkpoint, drops metrics reported after it and recomputes from there, so its results
    equal an uninterrupted run's.

    In a run of several processes (`join` first) every process calls this with the same
    spec and runs the same JAX operations; only process 0 creates, locks and writes the run
    directory, prints and reports.
    """
    # Deferred: `--help` and bad input should answer without loading JAX.
    from purerl import Trainer, distributed, parallel

    config = spec.config
    with config_errors():  # the environment's interface is checked against the agent here
        trainer = Trainer(config)
        try:
            mesh = parallel.make_mesh(config.train.num_devices)
        except ValueError as error:
            raise ConfigError("train.num_devices", str(error)) from None
    same_everywhere(preset, spec, resume)
    primary = distributed.is_primary()
    with contextlib.ExitStack() as stack:
        failure = None
        if primary:
            try:
                run_dir = RunDir(spec.run_dir) if resume else make_run_dir(spec, preset)
                stack.enter_context(run_lock(run_dir))
                if not resume:
                    record_config(run_dir, preset, spec)
            except UsageError as error:
                failure = error
        # The other processes must not start computing while process 0 gives up: they would
        # wait for it in the first collective until the heartbeat timeout.
        if not distributed.all_agree(failure is None):
            raise failure or UsageError("process 0 could not start the run; its output says why")
        if not primary:
            run_dir = RunDir(spec.run_dir)
        trained, asked = config.train.trained_env_steps, config.train.total_env_steps
        # Said whenever training starts from zero, also in a prepared run (see `prepare`).
        if primary and trained != asked and not run_dir.has_records():
            interval = config.train.iterations_per_eval * config.train.steps_per_iteration
            print(
                f"training {trained:,} env steps: total_env_steps {asked:,} rounded down to "
                f"{config.train.num_evals} evaluation intervals of {interval:,} "
                f"(whole iterations of num_envs x unroll_length x unrolls_per_iteration = "
                f"{config.train.steps_per_iteration:,})",
                file=sys.stderr,
            )
        return _train(trainer, mesh, preset, spec, run_dir, resume)


def same_everywhere(preset: str, spec: RunSpec, resume: bool) -> None:
    """In a run of several processes: UsageError in every process unless all were started
    with the same run (preset, config, run options, directory), compared by hash."""
    import jax

    from purerl import distributed
    from purerl.config import to_dict

    if jax.process_count() == 1:
        return
    if spec.run_dir is None:
        raise UsageError(
            f"a run of {jax.process_count()} processes needs --run-dir: every process must "
            "name the same directory"
        )
    run = {k: v for k, v in dataclasses.asdict(spec).items() if k not in ("config", "quiet")}
    run.pop("distributed")
    text = json.dumps([preset, resume, run, to_dict(spec.config)], sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") >> 1 for i in range(0, 16, 4)]
    hashes = distributed.gather(words)
    differ = [process for process, row in enumerate(hashes) if row != hashes[0]]
    if differ:
        raise UsageError(
            f"process(es) {', '.join(map(str, differ))} were started with another run than "
            f"process 0 (config hashes differ); start every process with the same preset, "
            "flags and --run-dir"
        )


def _train(trainer, mesh, preset: str, spec: RunSpec, run_dir: RunDir, resume: bool) -> dict:
    """The training loop of `train`, inside the run directory's lock (held by process 0)."""
    import jax

    import envs
    from experiments.progress import Progress
    from experiments.sinks import MultiSink, make_sinks
    from purerl import distributed, parallel

    primary = distributed.is_primary()
    config = trainer.config
    start = time.perf_counter()
    key = jax.random.PRNGKey(config.train.seed)
    shardings = parallel.state_shardings(jax.eval_shape(trainer.init, key), mesh, config.agent)
    out = (shardings, parallel.replicated(mesh))
    options = trainer.compiler_options
    state = jax.jit(trainer.init, out_shardings=shardings, compiler_options=options)(key)
    iterations = config.train.iterations_per_eval
    # Donating the state lets XLA update it in place (a replay buffer can be most of it)
    # instead of holding an input and an output copy.
    run = jax.jit(
        trainer.run_iterations,
        static_argnums=1,
        donate_argnums=0,
        out_shardings=out,
        compiler_options=options,
    )
    run = run.lower(state, iterations).compile()
    evaluate = jax.jit(
        trainer.evaluate, donate_argnums=0, out_shardings=out, compiler_options=options
    )
    evaluate = evaluate.lower(state).compile()
    compile_time = time.perf_counter() - start

    checkpoints = run_dir.checkpoints(spec.keep_checkpoints)
    done = {
        "evaluations": 0,
        "env_steps": 0,
        "train_time_s": 0.0,
        "eval_time_s": 0.0,
        "wall_time_s": 0.0,
    }
    if resume:
        restored = checkpoints.restore_latest(state)
        if restored is not None:
            state, done = restored
        if primary:
            run_dir.truncate_metrics(done["env_steps"])
            print(f"resuming {run_dir} from env step {done['env_steps']}", file=sys.stderr)

    steps_per_iteration = config.train.steps_per_iteration
    total_steps = config.train.num_iterations * steps_per_iteration
    progress = Progress(total_steps, enabled=primary and not spec.quiet)
    train_time, eval_time = done["train_time_s"], done.get("eval_time_s", 0.0)
    wall_start = time.perf_counter() - done["wall_time_s"]
    record: dict = {}
    # Goal-conditioned runs are judged by success, others by return.
    headline = (
        "eval/success_rate" if envs.is_goal_conditioned(config.env.name) else "eval/episode_return"
    )
    sinks = (
        make_sinks(
            run_dir,
            spec.sinks,
            {"preset": preset, **dataclasses.asdict(config)},
            append=resume,
            resume_env_steps=done["env_steps"] if resume else None,
        )
        if primary
        else MultiSink([])  # the others compute the same records and write none
    )
    with sinks:
        for evaluation in range(done["evaluations"], config.train.num_evals):
            chunk_start = time.perf_counter()
            state, train_metrics = run(state)
            # device_get waits for the chunk: its metrics are computed last.
            train_metrics = jax.device_get(train_metrics)
            train_time += time.perf_counter() - chunk_start
            problem = nonfinite_message(train_metrics, steps_per_iteration)
            if problem is not None:
                kept = checkpoints.steps()
                where = f"the last good checkpoint is {kept[-1]}" if kept else "no checkpoint"
                raise TrainingStopped(
                    f"{problem}; training stopped, {where}. (--no-check-finite turns the "
                    f"check off.)"
                )
            eval_start = time.perf_counter()
            state, eval_metrics = evaluate(state)
            metrics = {
                **{k: v for k, v in train_metrics.items() if not k.startswith("health/")},
                **jax.device_get(eval_metrics),
            }
            eval_time += time.perf_counter() - eval_start
            env_steps = int(state.iteration) * steps_per_iteration
            record = {
                "env_steps": env_steps,
                "wall_time_s": round(time.perf_counter() - wall_start, 3),
                **{k: float(v) for k, v in metrics.items()},
            }
            sinks.write(record)
            progress.update(env_steps, env_steps / train_time, headline, record[headline])
            last = evaluation + 1 == config.train.num_evals
            if spec.checkpoint_every and ((evaluation + 1) % spec.checkpoint_every == 0 or last):
                progress_record = {
                    "fresh_starts": "per_step" if trainer.fresh_per_step else "per_unroll",
                    "evaluations": evaluation + 1,
                    "env_steps": env_steps,
                    "train_time_s": train_time,
                    "eval_time_s": eval_time,
                    "wall_time_s": time.perf_counter() - wall_start,
                }
                checkpoints.save(state, progress_record)
    progress.close()
    if not record:  # resumed a run whose every evaluation was already checkpointed
        record = run_dir.read_metrics()[-1]

    summary = summary_of(preset, record, compile_time, train_time, eval_time)
    if not primary:
        return summary
    run_dir.write_summary(summary)
    print(
        f"done: {summary['env_steps']} env steps, {headline.removeprefix('eval/')} "
        f"{summary[headline]:.2f}, {summary['env_steps_per_second']:.0f} steps/s "
        f"(compile {compile_time:.1f}s); results in {run_dir}"
    )
    return summary


def parse_resume(argv: list[str]) -> tuple[str, RunSpec]:
    """`--resume RUN_DIR [--quiet] [--num-devices N] [distributed flags]`: the preset and run
    spec recorded in RUN_DIR/config.json (not yet validated; see `parse`).

    `--num-devices` and the distributed flags (`--num-processes` etc.) may differ from the
    interrupted run's: the checkpoint is re-sharded onto the devices at hand."""
    import argparse

    from purerl.config import from_dict, replace

    parser = argparse.ArgumentParser(
        prog="python -m experiments.run --resume", exit_on_error=False, add_help=False
    )
    parser.add_argument("run_dir")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--num-devices", type=int)
    for field in dataclasses.fields(DistributedConfig):
        kind = str if field.name == "coordinator_address" else int
        parser.add_argument("--" + field.name.replace("_", "-"), type=kind)
    try:
        args, unknown = parser.parse_known_args(argv[1:])
    except argparse.ArgumentError as error:
        raise UsageError(f"{error}; {RESUME_USAGE}") from None
    if unknown or args.run_dir.startswith("-"):
        raise UsageError(RESUME_USAGE)
    run_dir = RunDir(args.run_dir)
    if not run_dir.started:
        raise UsageError(f"{run_dir.config_path} not found; --resume takes the directory of a run")
    if run_dir.finished:
        raise UsageError(
            f"{run_dir} already finished (it has {run_dir.summary_path.name}); nothing to resume"
        )
    recorded = run_dir.read_config()
    options = recorded.get("run", {})
    with config_errors():
        config = trained_starts(from_dict(recorded), run_dir)
        if args.num_devices is not None:
            config = replace(config, num_devices=args.num_devices)
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(DistributedConfig)
        if getattr(args, f.name) is not None
    }
    spec = RunSpec(
        config,
        run_dir=str(run_dir),
        quiet=args.quiet or options.get("quiet", False),
        checkpoint_every=options.get("checkpoint_every", 1),
        keep_checkpoints=options.get("keep_checkpoints", 3),
        sinks=tuple(options.get("sinks", ())),
        distributed=DistributedConfig(**given),
    )
    return recorded.get("preset", "resumed"), spec


def trained_starts(config: Config, run_dir: RunDir) -> Config:
    """The config a run resumes with: its own, with the fresh starts it was trained with.

    `env.fresh_starts="auto"` resolves on the machine that trains (per step on an accelerator,
    per unroll on a CPU), so a run resumed on another kind of machine would change how its
    episodes start from the resumed iteration on. Every checkpoint records the mode it was
    trained with (`fresh_starts` in its progress); one without it predates the field, when
    every run built its starts per unroll. An explicit mode in config.json is kept, and a run
    with no checkpoint has trained nothing: "auto" resolves here."""
    from purerl.config import replace

    checkpoints = list(run_dir.checkpoint_progress().values())
    if config.env.fresh_starts != "auto" or not checkpoints:
        return config
    return replace(config, fresh_starts=checkpoints[-1].get("fresh_starts", "per_unroll"))


RESUME_USAGE = (
    "usage: python -m experiments.run --resume RUN_DIR [--quiet] [--num-devices N] "
    "[--coordinator-address HOST:PORT --num-processes N --process-id I]"
)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        resume = bool(argv) and argv[0] == "--resume"
        preset, spec = parse_resume(argv) if resume else parse(argv)
        join(spec)
        train(preset, check(spec), resume=resume)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TrainingStopped as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
