"""A trained run's policy, restored from one of its checkpoints: what `experiments.evaluate`
and `experiments.render` share.

`--checkpoint STEP` names a checkpoint by env steps (metrics.jsonl's `env_steps`, each
checkpoint manifest's `progress.env_steps`), not by its directory's name, which is the
iteration; without it, the newest complete checkpoint is used. The run is rebuilt from its
config.json on one device (a run trained on several restores onto one), its checkpoint is
verified against its checksums and restored read-only: nothing in the run directory changes
(unlike `--resume`, a corrupt checkpoint is reported, not renamed).

Bad input (not a run directory, no checkpoints, an unknown step, a corrupt checkpoint, bad
flags) is a UsageError: one line listing what exists, exit code 2, nothing written. The
choice of checkpoint is checked before JAX loads.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.run import UsageError, config_errors
from experiments.rundir import RunDir
from purerl import Config


def parser(
    prog: str, description: str, episodes: int | None, episodes_help: str
) -> argparse.ArgumentParser:
    """The flags both tools take (`episodes`: --episodes' default); each adds its own."""
    result = argparse.ArgumentParser(prog=prog, description=description, exit_on_error=False)
    # Optional to argparse, so that its absence is a one-line UsageError like the rest.
    result.add_argument("run_dir", nargs="?", help="a run directory written by experiments.run")
    result.add_argument(
        "--checkpoint",
        type=int,
        metavar="STEP",
        help="the checkpoint at this many env steps (as metrics.jsonl counts them); "
        "default: the newest",
    )
    result.add_argument("--episodes", type=int, default=episodes, metavar="N", help=episodes_help)
    result.add_argument(
        "--seed", type=int, default=0, help="seed of the episodes' starts and goals (0)"
    )
    return result


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """`parser.parse_args(argv)` with bad flags as one-line UsageErrors (`--help` still
    prints help and exits 0)."""
    try:
        args, unknown = parser.parse_known_args(argv)
    except argparse.ArgumentError as error:
        raise UsageError(f"{error}; see {parser.prog} --help") from None
    if unknown:
        raise UsageError(f"unrecognised arguments {' '.join(unknown)}; see {parser.prog} --help")
    if args.run_dir is None:
        raise UsageError(f"{parser.prog} needs RUN_DIR; see {parser.prog} --help")
    if args.episodes is not None and args.episodes < 1:
        raise UsageError(f"--episodes must be at least 1, got {args.episodes}")
    return args


@dataclass(frozen=True)
class Choice:
    """A run's checkpoint, chosen and checked without JAX."""

    run_dir: RunDir
    config: Config
    env_steps: int
    path: Path


def choose(run_dir: str | Path, env_steps: int | None = None) -> Choice:
    """The run's config and the checkpoint at `env_steps` (None: the newest complete one);
    UsageError listing the checkpoints there are otherwise."""
    from purerl.config import from_dict

    run = RunDir(run_dir)
    if not run.started:
        raise UsageError(f"{run.config_path} not found; pass the directory of a run")
    try:
        recorded = run.read_config()
    except (OSError, ValueError) as error:
        raise UsageError(f"{run.config_path} is unreadable ({error})") from None
    with config_errors():
        config = from_dict(recorded)
    available = run.checkpoint_env_steps()
    if not available:
        raise UsageError(
            f"{run} has no complete checkpoints (in {run.checkpoints_path}); train it with "
            "--checkpoint-every 1 or more"
        )
    if env_steps is None:
        env_steps = max(available)
    elif env_steps not in available:
        raise UsageError(
            f"{run} has no checkpoint at env step {env_steps}; it has {listing(available)}"
        )
    return Choice(run, config, env_steps, available[env_steps])


def listing(available: dict[int, Path]) -> str:
    """What a run has, for error messages: "checkpoints at env steps 512, 1024"."""
    return "checkpoints at env steps " + ", ".join(map(str, available))


@dataclass(frozen=True)
class Policy:
    """A restored run: its trainer (environment, agent, evaluation) and `TrainState`."""

    choice: Choice
    trainer: Any  # purerl.Trainer
    state: Any  # purerl.loop.TrainState, on one device


def load(choice: Choice, **overrides: object) -> Policy:
    """Rebuilds the run's trainer (config fields replaced by name with `overrides`, always
    on one device) and restores the chosen checkpoint into its state."""
    import jax

    from experiments.checkpoint import CorruptCheckpoint
    from purerl import Trainer
    from purerl.config import replace

    with config_errors():
        config = replace(choice.config, num_devices=1, **overrides)
        trainer = Trainer(config)
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    like = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device),
        jax.eval_shape(trainer.init, jax.random.PRNGKey(0)),
    )
    others = listing(choice.run_dir.checkpoint_env_steps())
    try:
        state, _ = choice.run_dir.checkpoints().restore(choice.path, like)
    except CorruptCheckpoint as error:
        raise UsageError(f"{error}; the run has {others}") from None
    except Exception as error:  # noqa: BLE001 - orbax raises many kinds; all mean unusable
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UsageError(
            f"checkpoint {choice.path} does not load into this run's state ({first}); the run "
            f"has {others}"
        ) from None
    return Policy(choice, trainer, state)
