"""Create (idempotently) the separate virtual environments some benchmarks run in.

- ``anchor`` (``.bench-venv``): the current PyPI brax (0.14.2) PPO trainer calls
  ``jax.device_put_replicated``, which no longer exists in jax 0.10, so the Brax anchor runs
  in its own venv pinned to ``jax==0.8.0 jaxlib==0.8.0 brax==0.14.2``.
- ``gpu-launches`` (``.gpu-launches-venv``): jax 0.11.2 with its CUDA 13 plugin, the version
  the lent H200 ran, for compiling its programs on a machine without a GPU
  (``gpu_launches.py``); purerl's other dependencies and PureJaxRL's come unpinned. jax 0.11
  needs Python 3.12 or newer: ``--python`` names one. purerl itself is not installed there
  (its pins say jax<0.11): the benchmark runs with the repository on PYTHONPATH.

This module is stdlib-only so it can be imported/run from any interpreter.

Usage (shell)::

    python3 experiments/benchmarks/anchor_venv.py    # creates ./.bench-venv, prints its python
    python3 experiments/benchmarks/anchor_venv.py /some/path
    python3 experiments/benchmarks/anchor_venv.py --kind gpu-launches --python python3.12

Usage (Python)::

    from experiments.benchmarks.anchor_venv import ensure_anchor_venv
    py = ensure_anchor_venv()   # -> "<repo>/.bench-venv/bin/python"
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import venv

# This file is experiments/benchmarks/anchor_venv.py: the repository is three levels up.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_VENV = os.path.join(REPO_ROOT, ".bench-venv")
PINNED_PACKAGES = ("jax==0.8.0", "jaxlib==0.8.0", "brax==0.14.2")
MARKER_NAME = ".purerl-anchor-ok"
# name: (default path, packages, import check)
KINDS = {
    "anchor": (
        DEFAULT_VENV,
        PINNED_PACKAGES,
        "import jax, brax; from brax.training.agents.ppo import train",
    ),
    "gpu-launches": (
        os.path.join(REPO_ROOT, ".gpu-launches-venv"),
        (
            *("jax[cuda13]==0.11.2", "brax==0.14.2", "flax", "optax", "chex", "distrax"),
            *("orbax-checkpoint", "tyro", "tqdm", "matplotlib", "gymnax", "seaborn"),
        ),
        # With gpu_target.ENVIRONMENT, as gpu_launches runs: the plugin then skips the driver.
        "import os; os.environ.update(JAX_PLATFORMS='cpu', JAX_SKIP_CUDA_CONSTRAINTS_CHECK='1'); "
        "import jax_plugins.xla_cuda13, brax, flax, gymnax, jax.experimental.topologies",
    ),
}


def ensure_venv(
    kind: str = "anchor", path: str | None = None, *, python: str | None = None, quiet: bool = True
) -> str:
    """Ensure a venv of `kind` at ``path`` (default: the kind's own); return its python.

    Fast path: if ``path/bin/python`` exists and the marker file (written only
    after a successful install + import check) lists the same packages, return at
    once without running anything.  Otherwise (re)create the venv if needed (with
    ``python``, default this interpreter), pip-install the packages, verify the kind's
    imports work, and write the marker.
    """
    default, packages, check = KINDS[kind]
    path = os.path.abspath(path or default)
    venv_python = os.path.join(path, "bin", "python")
    marker = os.path.join(path, MARKER_NAME)
    contents = "\n".join(packages) + "\n"

    if os.path.exists(venv_python) and os.path.exists(marker):
        with open(marker) as f:
            if f.read() == contents:
                return venv_python

    if not os.path.exists(venv_python):
        if python is None:
            venv.EnvBuilder(with_pip=True, clear=False, symlinks=True).create(path)
        else:
            subprocess.run([python, "-m", "venv", path], check=True)

    pip_out = subprocess.DEVNULL if quiet else sys.stderr  # stdout: only the python's path
    subprocess.run(
        [venv_python, "-m", "pip", "install", "--disable-pip-version-check", "-q", *packages],
        check=True,
        stdout=pip_out,
    )
    # Verify the imports actually work before declaring success.
    subprocess.run([venv_python, "-c", check], check=True, stdout=pip_out)
    with open(marker, "w") as f:
        f.write(contents)
    return venv_python


def ensure_anchor_venv(path: str | None = None, *, quiet: bool = True) -> str:
    """The Brax anchor's venv (``ensure_venv("anchor", ...)``)."""
    return ensure_venv("anchor", path, quiet=quiet)


def main(argv: list[str] | None = None) -> str:
    """Prints the venv's python. Through argparse so that `--help` prints help: a bare
    sys.argv[1] took it for a path and built a venv named `--help`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", help="where the venv goes (default: the kind's own)")
    parser.add_argument("--kind", choices=list(KINDS), default="anchor")
    parser.add_argument("--python", help="the interpreter that creates it (default: this one)")
    args = parser.parse_args(argv)
    python = ensure_venv(args.kind, args.path, python=args.python, quiet=False)
    print(python)
    return python


if __name__ == "__main__":
    main()
