"""Create (idempotently) the separate virtual environment used by the Brax anchor benchmark.

The current PyPI brax (0.14.2) PPO trainer calls ``jax.device_put_replicated``,
which no longer exists in jax 0.10, so the anchor runs in its own venv pinned to
``jax==0.8.0 jaxlib==0.8.0 brax==0.14.2``.  This module is stdlib-only so it can
be imported/run from any interpreter.

Usage (shell)::

    python3 experiments/benchmarks/anchor_venv.py    # creates ./.bench-venv, prints its python
    python3 experiments/benchmarks/anchor_venv.py /some/path

Usage (Python)::

    from experiments.benchmarks.anchor_venv import ensure_anchor_venv
    py = ensure_anchor_venv()   # -> "<repo>/.bench-venv/bin/python"
"""

from __future__ import annotations

import argparse
import os
import subprocess
import venv

# This file is experiments/benchmarks/anchor_venv.py: the repository is three levels up.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_VENV = os.path.join(REPO_ROOT, ".bench-venv")
PINNED_PACKAGES = ("jax==0.8.0", "jaxlib==0.8.0", "brax==0.14.2")
MARKER_NAME = ".purerl-anchor-ok"


def _marker_contents() -> str:
    return "\n".join(PINNED_PACKAGES) + "\n"


def ensure_anchor_venv(path: str | None = None, *, quiet: bool = True) -> str:
    """Ensure a venv at ``path`` with the pinned brax/jax; return its python executable.

    Fast path: if ``path/bin/python`` exists and the marker file (written only
    after a successful install + import check) lists the same pins, return at
    once without running anything.  Otherwise (re)create the venv if needed,
    pip-install the pins, verify ``import brax.training.agents.ppo.train`` works,
    and write the marker.
    """
    path = os.path.abspath(path or DEFAULT_VENV)
    python = os.path.join(path, "bin", "python")
    marker = os.path.join(path, MARKER_NAME)

    if os.path.exists(python) and os.path.exists(marker):
        with open(marker) as f:
            if f.read() == _marker_contents():
                return python

    if not os.path.exists(python):
        venv.EnvBuilder(with_pip=True, clear=False, symlinks=True).create(path)

    pip_out = subprocess.DEVNULL if quiet else None
    subprocess.run(
        [python, "-m", "pip", "install", "--disable-pip-version-check", "-q", *PINNED_PACKAGES],
        check=True,
        stdout=pip_out,
    )
    # Verify the trainer actually imports before declaring success.
    subprocess.run(
        [python, "-c", "import jax, brax; from brax.training.agents.ppo import train"],
        check=True,
        stdout=pip_out,
    )
    with open(marker, "w") as f:
        f.write(_marker_contents())
    return python


def main(argv: list[str] | None = None) -> str:
    """Prints the anchor venv's python. Through argparse so that `--help` prints help: a bare
    sys.argv[1] took it for a path and built a venv named `--help`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", help=f"where the venv goes (default {DEFAULT_VENV})")
    python = ensure_anchor_venv(parser.parse_args(argv).path, quiet=False)
    print(python)
    return python


if __name__ == "__main__":
    main()
