"""Running an anchor (another project's trainer) from a benchmark: its command line and the
one JSON line it prints.

The anchors run as scripts, by file path, under a python that may not have purerl (Brax's in
the venv `anchor_venv.py` makes): this only builds their commands and reads their results,
so the benchmarks that call them (throughput, speed, curves) build them one way.
Standard library only, so importing it costs nothing.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from experiments.benchmarks.args import geometry_flags

HERE = Path(__file__).resolve().parent


def script(name: str) -> str:
    """The path of anchor `name` ('brax_anchor', 'purejaxrl_anchor'), which runs as a file."""
    return str(HERE / f"{name}.py")


def as_flags(**values: object) -> list[str]:
    """`--name value` for each keyword in order (underscores become dashes): True gives a bare
    `--name` and False none (a switch), a list or tuple its items joined by commas, anything
    else `str(value)`."""
    flags = []
    for name, value in values.items():
        flag = f"--{name.replace('_', '-')}"
        if isinstance(value, bool):
            flags += [flag] if value else []
        elif isinstance(value, Sequence) and not isinstance(value, str):
            flags += [flag, ",".join(map(str, value))]
        else:
            flags += [flag, str(value)]
    return flags


def command(python: str, name: str, geometry: argparse.Namespace, **values: object) -> list[str]:
    """Runs anchor `name` under `python` with the benchmark's batch geometry, then `values`."""
    return [python, script(name), *geometry_flags(geometry), *as_flags(**values)]


def result(stdout: str) -> dict:
    """The anchor's result: the last line of its output that is a JSON object (an anchor sends
    everything else to stderr, but a library may still print to stdout)."""
    lines = [line for line in stdout.splitlines() if line.strip().startswith("{")]
    return json.loads(lines[-1])
