"""The command-line pieces the PPO benchmarks share with their anchors, declared once: the
batch geometry, layer sizes written as a comma-separated list, and where PureJaxRL is.

Standard library only: the anchor scripts run as files (the Brax one in another virtual
environment) and import this as a sibling module; the in-package benchmarks import it as
`experiments.benchmarks.args`.
"""

from __future__ import annotations

import argparse

GEOMETRY = {
    "env": "inverted_pendulum",
    "backend": "spring",
    "num_envs": 1024,
    "unroll_length": 10,
    "unrolls_per_iteration": 1,
    "num_minibatches": 8,
    "num_epochs": 4,
}


def add_geometry(parser: argparse.ArgumentParser, **defaults: object) -> None:
    """Adds --env, --backend, --num-envs, --unroll-length, --unrolls-per-iteration (Brax:
    batch_size * num_minibatches / num_envs), --num-minibatches, --num-epochs
    (num_updates_per_batch in Brax), with GEOMETRY's defaults unless given here."""
    for name, default in {**GEOMETRY, **defaults}.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)


def add_purejaxrl(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """Adds --purejaxrl-dir (a checkout of luchris429/purejaxrl) and --pythonpath (folders its
    dependencies import from, for the anchor's subprocess)."""
    parser.add_argument(
        "--purejaxrl-dir", required=required, help="a checkout of luchris429/purejaxrl"
    )
    parser.add_argument("--pythonpath", nargs="*", default=[], help="where its dependencies are")


def hidden_sizes(text: str) -> tuple[int, ...]:
    """'32,32,32' -> (32, 32, 32): layer sizes as the throughput benchmark and Brax's anchor
    take them on the command line (one argument, so it passes through unchanged)."""
    return tuple(int(s) for s in text.split(",") if s.strip())


def geometry_flags(args: argparse.Namespace) -> list[str]:
    """The same geometry as command-line flags, for a benchmark's subprocess."""
    flags = []
    for name in GEOMETRY:
        flags += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return flags
