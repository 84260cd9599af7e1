"""Train a preset: `python -m experiments.run PRESET [--field value ...]`.

Writes a run directory with config.json, metrics.jsonl (one line per evaluation) and
summary.json. `python -m experiments.run --help` lists the presets; `PRESET --help` documents
every field.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from experiments.presets import DEFAULT_PRESET, PRESETS
from purerl import Config, ConfigError, validate


@dataclass(frozen=True)
class RunSpec:
    config: Annotated[Config, tyro.conf.OmitArgPrefixes]
    run_dir: str | None = None
    """Where results go; default runs/PRESET/TIMESTAMP-seedSEED. Must be new or empty."""
    quiet: bool = False
    """No progress bar (for batch jobs); the summary line is still printed."""


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
    return name, spec


@contextlib.contextmanager
def config_errors():
    """Turns a ConfigError into a UsageError naming the field and its flag."""
    try:
        yield
    except ConfigError as error:
        flag = "--" + error.field.split(".")[-1].replace("_", "-")
        raise UsageError(f"invalid config {error.field} ({flag}): {error.args[0]}") from None


def make_run_dir(spec: RunSpec, preset: str) -> Path:
    if spec.run_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path("runs") / preset / f"{stamp}-seed{spec.config.train.seed}"
    else:
        path = Path(spec.run_dir)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(
            f"run directory {path} already exists and is not empty; pass a new "
            f"--run-dir so earlier results are never overwritten"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json_atomic(path: Path, value: object) -> None:
    """Writes through a temporary file and a rename, so readers never see half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(tmp, path)


def train(preset: str, spec: RunSpec) -> dict:
    """Runs training, streaming metrics into the run directory; returns the summary."""
    import jax  # deferred: `--help` and bad input should answer without loading JAX

    import envs
    from experiments.progress import Progress
    from purerl import Trainer

    config = spec.config
    with config_errors():  # the environment's interface is checked against the agent here
        trainer = Trainer(config)
    run_dir = make_run_dir(spec, preset)
    write_json_atomic(run_dir / "config.json", {"preset": preset, **dataclasses.asdict(config)})

    start = time.perf_counter()
    state = jax.jit(trainer.init)(jax.random.PRNGKey(config.train.seed))
    iterations = config.train.iterations_per_eval
    # Donating the state lets XLA update it in place (a CRL replay buffer is most of it)
    # instead of holding an input and an output copy.
    run = jax.jit(trainer.run_iterations, static_argnums=1, donate_argnums=0)
    run = run.lower(state, iterations).compile()
    evaluate = jax.jit(trainer.evaluate, donate_argnums=0).lower(state).compile()
    compile_time = time.perf_counter() - start

    steps_per_iteration = config.train.steps_per_iteration
    total_steps = config.train.num_iterations * steps_per_iteration
    progress = Progress(total_steps, enabled=not spec.quiet)
    train_time, wall_start = 0.0, time.perf_counter()
    record: dict = {}
    # Goal-conditioned runs are judged by success, others by return.
    headline = "eval/success_rate" if config.env.name in envs.GOAL_NAMES else "eval/episode_return"
    with open(run_dir / "metrics.jsonl", "w") as metrics_file:
        for _ in range(config.train.num_evals):
            chunk_start = time.perf_counter()
            state, train_metrics = run(state)
            state, eval_metrics = evaluate(state)
            metrics = jax.device_get({**train_metrics, **eval_metrics})
            train_time += time.perf_counter() - chunk_start
            env_steps = int(state.iteration) * steps_per_iteration
            record = {
                "env_steps": env_steps,
                "wall_time_s": round(time.perf_counter() - wall_start, 3),
                **{k: float(v) for k, v in metrics.items()},
            }
            metrics_file.write(json.dumps(record) + "\n")
            metrics_file.flush()
            progress.update(env_steps, env_steps / train_time, headline, record[headline])
    progress.close()

    summary = {
        "preset": preset,
        "env_steps": record["env_steps"],
        "compile_time_s": round(compile_time, 3),
        "train_time_s": round(train_time, 3),
        "env_steps_per_second": round(record["env_steps"] / train_time, 1),
        **{k: v for k, v in record.items() if k.startswith(("eval/", "train/"))},
    }
    write_json_atomic(run_dir / "summary.json", summary)
    print(
        f"done: {summary['env_steps']} env steps, {headline.removeprefix('eval/')} "
        f"{summary[headline]:.2f}, {summary['env_steps_per_second']:.0f} steps/s "
        f"(compile {compile_time:.1f}s); results in {run_dir}"
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    try:
        preset, spec = parse(sys.argv[1:] if argv is None else argv)
        train(preset, spec)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
