"""Checkpoints of the complete training state on disk (orbax), verified on restore.

Layout: `RUN_DIR/checkpoints/<iteration, 12 digits>/` is one orbax checkpoint of the whole
`TrainState` (parameters, optimiser, normaliser, replay buffer, environment states, RNG key,
iteration counter), plus `purerl.json`: the host-side progress (env steps, evaluations done,
times, and how training built its fresh starts, which a resumed run keeps) and a SHA-256 of
every file orbax wrote. Orbax writes into a temporary directory and
renames it when complete; the manifest is written last, atomically, so a checkpoint without
one is partial. Restoring walks from the newest checkpoint back and skips (and reports, by
file name) any that is partial, fails its checksums or fails to load.

In a run of several processes every process calls `save` and `restore_latest` (orbax writes
and reads each process's own shards); only process 0 clears, prunes, writes manifests and
renames invalid checkpoints, and all processes restore the same one.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from experiments.atomic import write_text_atomic
from experiments.rundir import CHECKPOINT_MANIFEST as MANIFEST
from purerl import distributed


def _is_empty(leaf: Any) -> bool:
    return math.prod(getattr(leaf, "shape", (1,))) == 0


def _without_empty(tree: Any) -> Any:
    """`tree` with its zero-size arrays replaced by None: orbax refuses to write them, and an
    MJX physics state has some (`act` is (num_envs, 0) for a model without activations)."""
    return jax.tree.map(lambda leaf: None if _is_empty(leaf) else leaf, tree)


def _with_empty(restored: Any, abstract: Any) -> Any:
    """Puts back the zero-size arrays `_without_empty` left out, shaped (and sharded) as in
    `abstract`."""

    def fill(like: Any, value: Any) -> Any:
        if not _is_empty(like):
            return value
        empty = np.zeros(like.shape, like.dtype)
        sharding = getattr(like, "sharding", None)
        if sharding is None:
            return jax.numpy.asarray(empty)
        return jax.make_array_from_callback(like.shape, sharding, lambda index: empty[index])

    return jax.tree.map(fill, abstract, restored)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(path: Path) -> dict[str, str]:
    return {
        str(file.relative_to(path)): _sha256(file)
        for file in sorted(path.rglob("*"))
        if file.is_file() and file.name != MANIFEST
    }


class CorruptCheckpoint(Exception):
    """A checkpoint that must not be used; the message names the file."""


class Checkpoints:
    """Saves and restores `TrainState`s under `directory`, keeping the newest `keep`."""

    def __init__(self, directory: Path, keep: int = 3):
        self.directory = Path(directory)
        self.keep = keep
        self._checkpointer = ocp.StandardCheckpointer()

    def steps(self) -> list[Path]:
        """Checkpoint directories (complete or not), oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if p.is_dir() and p.name.isdigit())

    def save(self, state: Any, progress: dict) -> Path:
        """Writes `state` and the host-side `progress`; returns the checkpoint directory.

        Returns only when everything is on disk, so the caller may then donate `state`.
        """
        path = self.directory / f"{int(state.iteration):012d}"
        primary = distributed.is_primary()
        if primary:
            if path.exists():  # a partial leftover of a killed run at this same point
                shutil.rmtree(path)
            self.directory.mkdir(parents=True, exist_ok=True)
        distributed.barrier("purerl checkpoint directory ready")
        self._checkpointer.save(path.absolute(), _without_empty(state))
        self._checkpointer.wait_until_finished()  # every process's shards, in a multi-process run
        if primary:
            manifest = {"progress": progress, "files": _files(path)}
            write_text_atomic(path / MANIFEST, json.dumps(manifest, indent=1))
            for old in self.steps()[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)
        return path

    def verify(self, path: Path) -> dict:
        """The checkpoint's progress record; raises CorruptCheckpoint naming the bad file."""
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise CorruptCheckpoint(f"{manifest_path} is missing (the save did not finish)")
        try:
            manifest = json.loads(manifest_path.read_text())
            expected, progress = manifest["files"], manifest["progress"]
        except (ValueError, KeyError) as error:
            raise CorruptCheckpoint(f"{manifest_path} is unreadable ({error})") from None
        actual = _files(path)
        for name, digest in expected.items():
            if name not in actual:
                raise CorruptCheckpoint(f"{path / name} is missing")
            if actual[name] != digest:
                raise CorruptCheckpoint(f"{path / name} does not match its checksum")
        return progress

    def restore(self, path: Path, like: Any) -> tuple[Any, dict]:
        """(state, progress) from the checkpoint directory `path`, verified first.

        For reading a chosen checkpoint (experiments.policy): unlike `restore_latest` it
        changes nothing on disk. Raises CorruptCheckpoint naming the bad file; orbax's own
        errors (a state that does not fit `like`) pass through.
        """
        return self._restore(path, jax.tree.map(ocp.utils.to_shape_dtype_struct, like))

    def _restore(self, path: Path, abstract: Any) -> tuple[Any, dict]:
        progress = self.verify(path)
        restored = self._checkpointer.restore(path.absolute(), _without_empty(abstract))
        return _with_empty(restored, abstract), progress

    def restore_latest(self, like: Any) -> tuple[Any, dict] | None:
        """(state, progress) from the newest valid checkpoint, or None if there is none.

        `like` is a state (or `jax.eval_shape` of one) giving the structure, shapes and dtypes.
        Invalid checkpoints are reported on stderr and renamed to NAME.invalid (kept for
        inspection, out of the way of the resumed run's saves and pruning). Arrays are restored
        with the shardings of `like`'s arrays, so a run continues on another number of devices
        or processes than it was saved from.
        """
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        restored, invalid = None, []
        primary = distributed.is_primary()
        for path in reversed(self.steps()):
            problem = None
            try:
                state, progress = self._restore(path, abstract)
            except CorruptCheckpoint as error:
                problem = f"warning: skipping checkpoint {path.name}: {error}"
            except Exception as error:  # noqa: BLE001 - orbax raises many kinds; all mean unusable
                problem = f"warning: skipping checkpoint {path}: {error}"
            # Every process goes on with the same checkpoint, or all skip it.
            if not distributed.all_agree(problem is None):
                if primary:
                    elsewhere = f"warning: skipping checkpoint {path}: another process failed"
                    print(problem or elsewhere, file=sys.stderr)
                invalid.append(path)
                continue
            restored = state, progress
            break
        distributed.barrier("purerl checkpoints read")
        if primary:
            for path in invalid:
                path.rename(path.with_name(path.name + ".invalid"))
        return restored
