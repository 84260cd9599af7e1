"""Train a preset: `python -m experiments.run PRESET [--field value ...]`.

Writes a run directory with config.json, metrics.jsonl (one line per evaluation) and
summary.json. `python -m experiments.run --help` lists the presets; `PRESET --help` documents
every field.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import importlib.util
import json
import os
import re
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from experiments.atomic import write_text_atomic
from experiments.presets import DEFAULT_PRESET, PRESETS
from purerl import Config, ConfigError, validate


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
    sinks: tuple[Literal["tensorboard", "wandb"], ...] = ()
    """Metric sinks besides RUN_DIR/metrics.jsonl: tensorboard (RUN_DIR/tensorboard), wandb
    (offline, RUN_DIR/wandb; `wandb sync` uploads it later)."""


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


def parse(argv: list[str]) -> tuple[str, RunSpec]:
    """Returns (preset name, validated run spec); raises UsageError on bad input."""
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        raise SystemExit(0 if argv else 2)
    name, rest = argv[0], argv[1:]
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    spec = tyro.cli(
        RunSpec,
        default=RunSpec(PRESETS[name].config),
        args=rest,
        prog=f"python -m experiments.run {name}",
        description=PRESETS[name].description,
        # The preset decides the agent's config type; its fields become flags.
        config=(tyro.conf.AvoidSubcommands,),
    )
    with config_errors():
        validate(spec.config)
    packages = {"tensorboard": ("tensorboardX", "tensorboard"), "wandb": ("wandb", "wandb")}
    for sink in spec.sinks:
        module, extra = packages[sink]
        if importlib.util.find_spec(module) is None:
            raise UsageError(
                f"--sinks {sink} needs {module}: pip install 'purerl[{extra}]' (or drop it)"
            )
    if spec.checkpoint_every < 0 or spec.keep_checkpoints < 1:
        raise UsageError(
            "--checkpoint-every must be >= 0 and --keep-checkpoints >= 1, got "
            f"{spec.checkpoint_every} and {spec.keep_checkpoints}"
        )
    return name, spec


@contextlib.contextmanager
def config_errors():
    """Turns a ConfigError into a UsageError naming the field and its flag."""
    try:
        yield
    except ConfigError as error:
        flag = as_flags(error.field)
        where = error.field if flag == error.field else f"{error.field} ({flag})"
        raise UsageError(f"invalid config {where}: {as_flags(error.args[0])}") from None


_FIELD = re.compile(r"\b(?:env|train|agent)\.([a-z_]+)(?:=(\S+?))?(?=[\s,;)]|\.?$)")


def as_flags(text: str) -> str:
    """The library names fields (`train.num_envs=4096`, `env.single_goal=False`); the CLI
    says the same with its flags (`--num-envs 4096`, `--no-single-goal`)."""

    def flag(match: re.Match) -> str:
        name, value = match.group(1).replace("_", "-"), match.group(2)
        if value == "False":
            return f"--no-{name}"
        return f"--{name}" if value in (None, "True") else f"--{name} {value}"

    return _FIELD.sub(flag, text)


def make_run_dir(spec: RunSpec, preset: str) -> Path:
    if spec.run_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path("runs") / preset / f"{stamp}-seed{spec.config.train.seed}"
    else:
        path = Path(spec.run_dir)
    # A directory holding only a lock file is what a run killed before writing anything
    # leaves behind: it is still empty.
    if path.exists() and (not path.is_dir() or any(p.name != ".lock" for p in path.iterdir())):
        raise UsageError(
            f"run directory {path} already exists and is not empty; pass a new "
            f"--run-dir so earlier results are never overwritten"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json_atomic(path: Path, value: object) -> None:
    """Writes `value` as JSON so readers never see half a file (see experiments.atomic)."""
    write_text_atomic(path, json.dumps(value, indent=2) + "\n")


class TrainingStopped(Exception):
    """Training could not go on (a non-finite update); the message says where and why."""


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Holds an exclusive lock on RUN_DIR/.lock for a run's lifetime, so two processes never
    write one run directory. The kernel drops the lock when its process dies, however it
    dies, so a killed run's directory is free for --resume (on any host or pid namespace)."""
    with open(run_dir / ".lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise UsageError(
                f"run directory {run_dir} is in use by {holder}; wait for it or pass a new "
                f"--run-dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"process {os.getpid()} on {socket.gethostname()}")
        lock.flush()
        yield


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
    """
    # Deferred: `--help` and bad input should answer without loading JAX.
    from purerl import Trainer
    from purerl.config import to_dict

    config = spec.config
    with config_errors():  # the environment's interface is checked against the agent here
        trainer = Trainer(config)
    run_dir = Path(spec.run_dir) if resume else make_run_dir(spec, preset)
    with run_lock(run_dir):
        if not resume and any(p.name != ".lock" for p in run_dir.iterdir()):
            # Another process wrote here between our emptiness check and taking the lock.
            raise UsageError(f"run directory {run_dir} is no longer empty; pass a new --run-dir")
        trained, asked = config.train.trained_env_steps, config.train.total_env_steps
        if not resume and trained != asked:
            interval = config.train.iterations_per_eval * config.train.steps_per_iteration
            print(
                f"training {trained:,} env steps: total_env_steps {asked:,} rounded down to "
                f"{config.train.num_evals} evaluation intervals of {interval:,} "
                f"(whole iterations of num_envs x unroll_length x unrolls_per_iteration = "
                f"{config.train.steps_per_iteration:,})",
                file=sys.stderr,
            )
        if not resume:
            run_options = {k: v for k, v in dataclasses.asdict(spec).items() if k != "config"}
            write_json_atomic(
                run_dir / "config.json", {"preset": preset, "run": run_options, **to_dict(config)}
            )
        return _train(trainer, preset, spec, run_dir, resume)


def _train(trainer, preset: str, spec: RunSpec, run_dir: Path, resume: bool) -> dict:
    """The training loop of `train`, inside the run directory's lock."""
    import jax

    import envs
    from experiments.checkpoint import Checkpoints
    from experiments.progress import Progress
    from experiments.sinks import make_sinks, truncate_jsonl
    from purerl import parallel

    config = trainer.config
    start = time.perf_counter()
    key = jax.random.PRNGKey(config.train.seed)
    mesh = parallel.make_mesh(config.train.num_devices)
    shardings = parallel.state_shardings(jax.eval_shape(trainer.init, key), mesh, config.agent)
    out = (shardings, parallel.replicated(mesh))
    state = jax.jit(trainer.init, out_shardings=shardings)(key)
    iterations = config.train.iterations_per_eval
    # Donating the state lets XLA update it in place (a CRL replay buffer is most of it)
    # instead of holding an input and an output copy.
    run = jax.jit(trainer.run_iterations, static_argnums=1, donate_argnums=0, out_shardings=out)
    run = run.lower(state, iterations).compile()
    evaluate = jax.jit(trainer.evaluate, donate_argnums=0, out_shardings=out)
    evaluate = evaluate.lower(state).compile()
    compile_time = time.perf_counter() - start

    checkpoints = Checkpoints(run_dir / "checkpoints", spec.keep_checkpoints)
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
        truncate_jsonl(run_dir / "metrics.jsonl", done["env_steps"])
        print(f"resuming {run_dir} from env step {done['env_steps']}", file=sys.stderr)

    steps_per_iteration = config.train.steps_per_iteration
    total_steps = config.train.num_iterations * steps_per_iteration
    progress = Progress(total_steps, enabled=not spec.quiet)
    train_time, eval_time = done["train_time_s"], done.get("eval_time_s", 0.0)
    wall_start = time.perf_counter() - done["wall_time_s"]
    record: dict = {}
    # Goal-conditioned runs are judged by success, others by return.
    headline = (
        "eval/success_rate" if envs.is_goal_conditioned(config.env.name) else "eval/episode_return"
    )
    sinks = make_sinks(
        run_dir,
        spec.sinks,
        {"preset": preset, **dataclasses.asdict(config)},
        append=resume,
        resume_env_steps=done["env_steps"] if resume else None,
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
                    "evaluations": evaluation + 1,
                    "env_steps": env_steps,
                    "train_time_s": train_time,
                    "eval_time_s": eval_time,
                    "wall_time_s": time.perf_counter() - wall_start,
                }
                checkpoints.save(state, progress_record)
    progress.close()
    if not record:  # resumed a run whose every evaluation was already checkpointed
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        record = json.loads(lines[-1])

    summary = summary_of(preset, record, compile_time, train_time, eval_time)
    write_json_atomic(run_dir / "summary.json", summary)
    print(
        f"done: {summary['env_steps']} env steps, {headline.removeprefix('eval/')} "
        f"{summary[headline]:.2f}, {summary['env_steps_per_second']:.0f} steps/s "
        f"(compile {compile_time:.1f}s); results in {run_dir}"
    )
    return summary


def parse_resume(argv: list[str]) -> tuple[str, RunSpec]:
    """`--resume RUN_DIR [--quiet]`: the preset and run spec recorded in RUN_DIR/config.json."""
    from purerl.config import from_dict

    if len(argv) < 2 or argv[1].startswith("-") or set(argv[2:]) - {"--quiet"}:
        raise UsageError("usage: python -m experiments.run --resume RUN_DIR [--quiet]")
    run_dir = Path(argv[1])
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise UsageError(f"{config_path} not found; --resume takes the directory of a run")
    if (run_dir / "summary.json").exists():
        raise UsageError(f"{run_dir} already finished (it has summary.json); nothing to resume")
    recorded = json.loads(config_path.read_text())
    options = recorded.get("run", {})
    with config_errors():
        config = validate(from_dict(recorded))
    spec = RunSpec(
        config,
        run_dir=str(run_dir),
        quiet="--quiet" in argv[2:] or options.get("quiet", False),
        checkpoint_every=options.get("checkpoint_every", 1),
        keep_checkpoints=options.get("keep_checkpoints", 3),
        sinks=tuple(options.get("sinks", ())),
    )
    return recorded.get("preset", "resumed"), spec


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] == "--resume":
            preset, spec = parse_resume(argv)
            train(preset, spec, resume=True)
        else:
            preset, spec = parse(argv)
            train(preset, spec)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TrainingStopped as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
