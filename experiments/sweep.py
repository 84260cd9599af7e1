"""Config sweeps: `python -m experiments.sweep SPEC [--executor vmap|local|submitit] ...`.

A spec (TOML, or JSON with the same keys) names a preset, the seeds, fixed overrides, and a
grid and/or a list of configurations over any config fields:

    preset = "crl-point-umaze"
    seeds = [0, 1, 2]
    executor = "local"                  # default; the command line may override it
    [overrides]                         # applied to every configuration
    total_env_steps = 64000
    [grid]                              # cartesian product of these values
    depth = [4, 8]
    critic_learning_rate = [1e-4, 3e-4]
    [[configs]]                         # and/or explicit configurations (crossed with grid)
    width = 64

A field is named bare (`depth`, in whichever config section has it; run options such as
`checkpoint_every` too) or as `section.field` (`agent.depth`). Each configuration is the
preset's config with those fields replaced, their values checked against the fields' types.
Every (configuration, seed) becomes one run directory under the sweep directory, with the
same contract as `experiments.run` (experiments.rundir), so `experiments.plot` reads a sweep
directly. Three executors run the jobs:
  vmap      one program per group of configurations that differ only in seeds and numeric
            (float) hyperparameters: those are vmapped, so a group trains at once on one device;
  local     one `experiments.run` process per job (`--max-parallel` at a time);
  submitit  a Slurm job array through submitit, one run directory per job (`--cluster local`
            runs the same code path on this machine).
For local and submitit, the sweep writes each run's config.json first; the process then
trains it with `experiments.run --resume RUN_DIR`, so it needs nothing but the directory.
Running a sweep again with the same spec and --sweep-dir continues it: finished runs are kept,
killed ones resume from their last checkpoint (local, submitit) or rerun (vmap). At the end a
table aggregated over seeds is printed and written to SWEEP_DIR/results.csv.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import difflib
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import time
import tomllib
import types
import typing
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from experiments import run
from experiments.atomic import write_json_atomic
from experiments.run import RunSpec, UsageError
from experiments.rundir import RunDir, RunDirError

try:
    from submitit.helpers import Checkpointable
except ImportError:  # submitit is optional ([slurm]); only the submitit executor needs it
    Checkpointable = object

EXECUTORS = ("vmap", "local", "submitit")
SPEC_KEYS = {"preset", "seeds", "executor", "overrides", "grid", "configs", "name", "slurm"}


@dataclass(frozen=True)
class Job:
    """One (configuration, seed): its validated run spec, which names its run directory."""

    label: str
    seed: int
    spec: RunSpec

    @property
    def run_dir(self) -> RunDir:
        assert self.spec.run_dir is not None  # `expand` always sets it
        return RunDir(self.spec.run_dir)

    @property
    def finished(self) -> bool:
        return self.run_dir.finished

    @property
    def started(self) -> bool:
        return self.run_dir.started


def load_spec(path: Path) -> dict:
    """Reads and checks the spec's structure; raises UsageError naming what is wrong."""
    if not path.is_file():
        raise UsageError(f"sweep spec {path} not found")
    try:
        text = path.read_text()
        spec = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        raise UsageError(
            f"{path} is not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {error}"
        ) from None
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise UsageError(
            f"{path}: unknown key(s) {', '.join(sorted(unknown))}; a spec has "
            f"{', '.join(sorted(SPEC_KEYS))}"
        )
    if not isinstance(spec.get("preset"), str):
        raise UsageError(f"{path}: `preset` (a preset name) is required")
    seeds = spec.get("seeds", [0])
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) for s in seeds)):
        raise UsageError(f"{path}: `seeds` must be a non-empty list of integers, got {seeds!r}")
    for key in ("overrides", "grid", "slurm"):
        if not isinstance(spec.get(key, {}), dict):
            raise UsageError(f"{path}: `{key}` must be a table of field = value")
    for field, values in spec.get("grid", {}).items():
        if not (isinstance(values, list) and values):
            raise UsageError(f"{path}: grid.{field} must be a non-empty list of values")
    configs = spec.get("configs", [{}])
    if not (isinstance(configs, list) and configs and all(isinstance(c, dict) for c in configs)):
        raise UsageError(f"{path}: `configs` must be a list of tables ([[configs]] in TOML)")
    if spec.get("executor", "local") not in EXECUTORS:
        raise UsageError(f"{path}: executor must be one of {', '.join(EXECUTORS)}")
    return spec


class OverrideError(Exception):
    """A sweep override that names no field or does not fit the field's type."""


def _fields(obj: Any) -> dict[str, Any]:
    """A dataclass instance's field names and their resolved types."""
    hints = typing.get_type_hints(type(obj))
    return {f.name: hints[f.name] for f in dataclasses.fields(obj)}


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def _typed(value: Any, hint: Any) -> Any:
    """`value` as a field of type `hint` takes it; TypeError if it does not fit.

    What TOML cannot say exactly is converted: an int where a float is wanted, a list for a
    tuple, and the string "None" for None (the command line's spelling, which specs used).
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or value == "None"):
            return None
        for arm in args:
            with contextlib.suppress(TypeError):
                return _typed(value, arm)
    elif origin is Literal:
        if any(value == choice and type(value) is type(choice) for choice in args):
            return value
    elif origin is tuple and isinstance(value, list | tuple):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_typed(item, args[0]) for item in value)
        if len(args) == len(value):
            return tuple(_typed(item, arm) for item, arm in zip(value, args, strict=True))
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(hint, type) and isinstance(value, hint):
        return value
    raise TypeError(value)


def _locate(name: str, options: dict[str, Any], sections: dict[str, dict[str, Any]]) -> str:
    """The config section holding field `name` ("" for a run option); OverrideError if none
    or more than one does."""
    section, _, field = name.rpartition(".")
    if section:
        if section not in sections:
            raise OverrideError(
                f"{name!r}: the config has no section {section!r} ({', '.join(sections)})"
            )
        if field not in sections[section]:
            owners = [s for s, fields in sections.items() if field in fields]
            elsewhere = f"; {field} is in {owners[0]}" if owners else ""
            raise OverrideError(f"{name!r}: {section} has no field {field!r}{elsewhere}")
        return section
    if name in options:
        return ""
    owners = [s for s, fields in sections.items() if name in fields]
    if len(owners) > 1:
        raise OverrideError(
            f"{name!r} is a field of {' and '.join(owners)}; write {owners[0]}.{name}"
        )
    if not owners:
        known = [*options, *(f for fields in sections.values() for f in fields)]
        close = difflib.get_close_matches(name, known, n=1)
        suggestion = f"; did you mean {close[0]!r}?" if close else ""
        raise OverrideError(f"{name!r} is no field of this preset's config{suggestion}")
    return owners[0]


def override(spec: RunSpec, overrides: Mapping[str, Any]) -> RunSpec:
    """`spec` with fields replaced by name, as a sweep spec writes them; OverrideError if not.

    A name is a run option (`checkpoint_every`, `sinks`), a config field (`depth`), found in
    whichever section of the preset's config has it, or `section.field` (`agent.depth`).
    Values are checked against the field's type, so a typo fails here, naming the field,
    before any run starts.
    """
    options = _fields(spec)
    del options["config"]
    sections = {f.name: getattr(spec.config, f.name) for f in dataclasses.fields(spec.config)}
    section_fields = {name: _fields(section) for name, section in sections.items()}
    changes: dict[str, dict[str, Any]] = {"": {}, **{name: {} for name in sections}}
    for name, value in overrides.items():
        section = _locate(name, options, section_fields)
        field = name.rpartition(".")[2]
        hint = section_fields[section][field] if section else options[field]
        try:
            changes[section][field] = _typed(value, hint)
        except TypeError:
            where = f"{section}.{field}" if section else field
            raise OverrideError(f"{where} takes {_type_name(hint)}, got {value!r}") from None
    config = dataclasses.replace(
        spec.config,
        **{name: dataclasses.replace(sections[name], **changes[name]) for name in sections},
    )
    return dataclasses.replace(spec, config=config, **changes[""])


def expand(spec: dict, sweep_dir: Path) -> list[Job]:
    """All jobs of the spec, each validated like `experiments.run` would (UsageError if not).

    Each job's spec is the preset's, with the spec's overrides, its grid point and its seed
    replaced by field name."""
    base = RunSpec(run.preset_config(spec["preset"]))
    grid = spec.get("grid", {})
    points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    jobs = []
    for number, (config, point) in enumerate(itertools.product(spec.get("configs", [{}]), points)):
        overrides = {**spec.get("overrides", {}), **config, **point}
        varying = {**config, **point}
        label = ",".join(f"{k}={v}" for k, v in varying.items()) or "base"
        for seed in spec.get("seeds", [0]):
            run_dir = sweep_dir / f"{number:03d}-{label}" / f"seed{seed}"
            ours = {"seed": seed, "run_dir": str(run_dir), "quiet": True}
            try:
                run_spec = run.check(override(base, {**overrides, **ours}))
            except OverrideError as error:
                raise UsageError(f"configuration {label!r}: bad field or value: {error}") from None
            except UsageError as error:
                raise UsageError(f"configuration {label!r}: {error}") from None
            jobs.append(Job(label, seed, run_spec))
    return jobs


def prepare(jobs: list[Job], preset: str) -> tuple[list[Job], list[str]]:
    """Writes the run directory (config.json) of every job not yet started, so a process runs
    a job from its directory alone (`experiments.run --resume`); returns (the jobs ready to
    run, failure messages)."""
    ready, failures = [], []
    for job in jobs:
        try:
            if not job.started:
                run.prepare(preset, job.spec)
            ready.append(job)
        except UsageError as error:
            failures.append(f"{job.run_dir}: {error}")
    return ready, failures


def run_local(jobs: list[Job], max_parallel: int, logs: Path) -> list[str]:
    """One `experiments.run` process per job; returns failure messages."""
    logs.mkdir(parents=True, exist_ok=True)

    def launch(job: Job) -> str | None:
        argv = ["--resume", str(job.run_dir), "--quiet"]
        log = logs / f"{job.run_dir.path.parent.name}-seed{job.seed}.log"
        with open(log, "a") as out:
            result = subprocess.run(
                [sys.executable, "-m", "experiments.run", *argv], stdout=out, stderr=out
            )
        return None if result.returncode == 0 else f"{job.run_dir} failed; see {log}"

    with concurrent.futures.ThreadPoolExecutor(max_parallel) as pool:
        return [m for m in pool.map(launch, jobs) if m]


def run_job(run_dir: str) -> None:
    """Runs (or resumes) one prepared job in this process: what each Slurm array task
    executes."""
    if RunDir(run_dir).finished:
        return
    argv = ["--resume", run_dir, "--quiet"]
    code = run.main(argv)
    if code != 0:
        raise RuntimeError(f"experiments.run {' '.join(argv)} exited with {code}")


def joining_variables(job_id: str, num_tasks: int, rank: int, first_host: str) -> dict:
    """The PURERL_* variables (purerl.distributed) that make the `num_tasks` tasks of one job
    one run: task `rank` of it, with the coordinator on the job's first host, at a port every
    task derives from the job id."""
    port = 20_000 + zlib.crc32(job_id.encode()) % 20_000
    return {
        "PURERL_COORDINATOR_ADDRESS": f"{first_host}:{port}",
        "PURERL_NUM_PROCESSES": str(num_tasks),
        "PURERL_PROCESS_ID": str(rank),
    }


class SlurmTask(Checkpointable):
    """One array task: runs or resumes one job.

    On a Slurm time limit or preemption, submitit calls `checkpoint` (inherited), which
    requeues this same call; the run directory holds the training checkpoints, so the requeued
    task resumes where the interrupted one stopped and a long sweep loses nothing. A job of
    several tasks (`nodes`, `tasks_per_node` in the spec's `[slurm]` table) is one run over all
    of them: each task joins it as the process its rank says (use `num_devices = 0`).
    """

    def __call__(self, run_dir: str) -> None:
        import submitit

        job = submitit.JobEnvironment()
        if job.num_tasks > 1:
            os.environ.update(
                joining_variables(job.job_id, job.num_tasks, job.global_rank, job.hostnames[0])
            )
        run_job(run_dir)


def run_submitit(jobs: list[Job], sweep_dir: Path, slurm: dict, cluster: str | None) -> list[str]:
    """A job array (one task per job) through submitit; returns failure messages."""
    import submitit

    executor = submitit.AutoExecutor(folder=sweep_dir / "submitit", cluster=cluster)
    executor.update_parameters(**slurm)
    submitted = executor.map_array(SlurmTask(), [str(job.run_dir) for job in jobs])
    print(f"submitted {len(submitted)} jobs (array {submitted[0].job_id.split('_')[0]})")
    failures = []
    for job, handle in zip(jobs, submitted, strict=True):
        try:
            handle.results()  # every task's, for a job of several tasks
        except Exception as error:  # noqa: BLE001 - a failed task must not hide the others
            failures.append(f"{job.run_dir} failed: {str(error).strip().splitlines()[-1]}")
    return failures


def numeric_fields(config: Any) -> set[str]:
    """The agent's float-typed fields: values that can be vmapped within one program."""
    hints = typing.get_type_hints(type(config.agent))
    return {f.name for f in dataclasses.fields(config.agent) if hints[f.name] is float}


def vmap_groups(jobs: list[Job]) -> list[tuple[list[Job], list[str]]]:
    """Jobs grouped so each group differs only in seed and numeric fields; with those fields."""
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        config = job.spec.config
        static = dataclasses.replace(
            config,
            train=dataclasses.replace(config.train, seed=0),
            agent=dataclasses.replace(
                config.agent, **{name: 0.0 for name in numeric_fields(config)}
            ),
        )
        groups.setdefault(repr(static), []).append(job)
    result = []
    for group in groups.values():
        fields = sorted(
            name
            for name in numeric_fields(group[0].spec.config)
            if len({getattr(job.spec.config.agent, name) for job in group}) > 1
        )
        result.append((group, fields))
    return result


def run_vmap(jobs: list[Job], preset: str) -> list[str]:
    """Trains each group as one vmapped program and writes every job's run directory;
    returns failure messages (runs that went non-finite get no run directory)."""
    import jax
    import jax.numpy as jnp

    import envs
    from purerl import Trainer
    from purerl.config import to_dict

    failures: list[str] = []
    for group, fields in vmap_groups(jobs):
        if all(job.finished for job in group):
            continue
        config = group[0].spec.config

        def train(key, values, config=config):
            agent = dataclasses.replace(config.agent, **values)
            trainer = Trainer(dataclasses.replace(config, agent=agent), validate_config=False)
            return trainer.train(key)[1]

        keys = jnp.stack([jax.random.PRNGKey(job.seed) for job in group])
        values = {
            name: jnp.asarray([getattr(job.spec.config.agent, name) for job in group])
            for name in fields
        }
        start = time.perf_counter()
        options = envs.compiler_options(config.env.name)
        program = jax.jit(jax.vmap(train), compiler_options=options)
        compiled = program.lower(keys, values).compile()
        compile_time = time.perf_counter() - start
        start = time.perf_counter()
        metrics = jax.device_get(compiled(keys, values))
        train_time = time.perf_counter() - start
        steps = config.train.iterations_per_eval * config.train.steps_per_iteration
        num_evals = config.train.num_evals
        for index, job in enumerate(group):
            bad = metrics.get("health/nonfinite_iteration")
            if bad is not None and (bad[index] >= 0).any():
                iteration = int(bad[index][bad[index] >= 0][0])
                failures.append(
                    f"{job.run_dir}: non-finite update at env step "
                    f"{iteration * config.train.steps_per_iteration}; not recorded"
                )
                continue
            records = [
                {
                    "env_steps": (evaluation + 1) * steps,
                    # One program: its time is split evenly over the evaluations.
                    "wall_time_s": round(train_time * (evaluation + 1) / num_evals, 3),
                    **{
                        k: float(v[index][evaluation])
                        for k, v in metrics.items()
                        if k != "iteration" and not k.startswith("health/")
                    },
                }
                for evaluation in range(num_evals)
            ]
            summary = run.summary_of(preset, records[-1], compile_time, train_time, None)
            summary["vmapped_runs"] = len(group)
            recorded = {"preset": preset, "sweep": {"executor": "vmap", "group_size": len(group)}}
            # An earlier, killed sweep may have left this group's directories half written:
            # they are rewritten whole, config first and summary (which marks a run done) last.
            run_dir = job.run_dir
            run_dir.path.mkdir(parents=True, exist_ok=True)
            try:
                with run_dir.lock():
                    run_dir.write_config({**recorded, **to_dict(job.spec.config)})
                    run_dir.write_metrics(records)
                    run_dir.write_summary(summary)
            except RunDirError as error:
                failures.append(f"{run_dir}: {error}; not recorded")
        print(f"vmapped {len(group)} runs ({', '.join(fields) or 'seeds'}) in {train_time:.1f}s")
    return failures


def report(sweep_dir: Path, metric: str | None) -> str:
    """The table aggregated over seeds (also written to SWEEP_DIR/results.csv)."""
    from experiments import plot

    runs = [plot.load_run(path) for path in plot.find_runs([sweep_dir])]
    metric = plot.choose_metric(runs, metric)
    curves, _ = plot.group_curves(plot.group_runs(runs), metric)
    rows = plot.summary_rows(curves)
    plot.write_csv(rows, sweep_dir / "results.csv")
    return plot.format_table(rows, metric)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.sweep", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("spec", type=Path, help="sweep spec (.toml or .json)")
    parser.add_argument("--executor", choices=EXECUTORS, help="overrides the spec's executor")
    parser.add_argument("--sweep-dir", type=Path, help="default runs/sweeps/SPEC-TIMESTAMP")
    parser.add_argument("--max-parallel", type=int, default=1, help="local: processes at once")
    parser.add_argument("--cluster", choices=("slurm", "local"), help="submitit: where to run")
    parser.add_argument("--metric", help="metric of the final table (default: success or return)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        spec = load_spec(args.spec)
        executor = args.executor or spec.get("executor", "local")
        sweep_dir = args.sweep_dir or Path("runs/sweeps") / (
            f"{spec.get('name', args.spec.stem)}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        recorded = sweep_dir / "sweep.json"
        if recorded.exists() and json.loads(recorded.read_text()) != spec:
            raise UsageError(
                f"{sweep_dir} holds a different sweep; pass a new --sweep-dir (or the same spec "
                f"to continue it)"
            )
        jobs = expand(spec, sweep_dir)  # validates every configuration before writing anything
        if args.max_parallel < 1:
            raise UsageError("--max-parallel must be at least 1")
        if executor == "vmap" and any(job.spec.config.train.num_devices > 1 for job in jobs):
            raise UsageError(
                "the vmap executor runs on one device; drop num_devices or use --executor local"
            )
        if executor == "submitit" and importlib.util.find_spec("submitit") is None:
            raise UsageError("the submitit executor needs submitit: pip install 'purerl[slurm]'")
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(recorded, spec)
    todo = [job for job in jobs if not job.finished]
    print(f"sweep {sweep_dir}: {len(jobs)} runs, {len(todo)} to do, executor {executor}")
    if executor == "vmap":
        failures = run_vmap(todo, spec["preset"])
    else:
        ready, failures = prepare(todo, spec["preset"])
        if executor == "local":
            failures += run_local(ready, args.max_parallel, sweep_dir / "logs")
        elif ready:
            failures += run_submitit(ready, sweep_dir, spec.get("slurm", {}), args.cluster)
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    if any(job.finished for job in jobs):
        from experiments import plot

        try:
            print(report(sweep_dir, args.metric))
        except plot.UsageError as error:  # e.g. a --metric the runs do not log
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"table: {sweep_dir / 'results.csv'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
