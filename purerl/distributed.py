"""Many processes, one program: JAX's own distributed runtime (`jax.distributed`).

A run over several processes (hosts, or several processes on one host) is the same jitted
program in every process, over a mesh of every device of every process (purerl.parallel).
Each process creates and steps only the environments (and replay-buffer columns) that live on
its own devices; parameters are replicated and stay bit-identical because every update is
the same collective computation everywhere. Nothing here spawns or talks to processes itself:
`initialize` hands the settings to `jax.distributed.initialize`, whose coordination service
also ends the surviving processes (within `heartbeat_timeout` seconds) when one dies.

Settings come from, in order: the fields given (CLI flags), the environment variables
PURERL_COORDINATOR_ADDRESS / PURERL_NUM_PROCESSES / PURERL_PROCESS_ID (for launchers), and
Slurm (a job step with several tasks; JAX reads Slurm's variables itself). Without any of
them the run is one process. `initialize` must come before anything else touches JAX.

Imports nothing heavy; jax loads in `initialize` and the collectives below.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from purerl.checks import ConfigError, positive

ENVIRONMENT = {
    "coordinator_address": "PURERL_COORDINATOR_ADDRESS",
    "num_processes": "PURERL_NUM_PROCESSES",
    "process_id": "PURERL_PROCESS_ID",
}


@dataclass(frozen=True)
class DistributedConfig:
    """How this process joins a multi-process run (all None: see the module docstring)."""

    coordinator_address: str | None = None
    """host:port where process 0 runs the coordination service; every process names the same
    (env PURERL_COORDINATOR_ADDRESS). Unset under Slurm, where JAX finds it."""
    num_processes: int | None = None
    """Processes in the run (env PURERL_NUM_PROCESSES); 1 or unset: a single process."""
    process_id: int | None = None
    """This process's index, 0 .. num_processes - 1 (env PURERL_PROCESS_ID); process 0
    writes the run directory."""
    initialization_timeout: int = 60
    """Seconds to wait for every process to reach the coordinator before giving up."""
    heartbeat_timeout: int = 30
    """Seconds without a sign of life after which a process counts as dead; the others then
    exit with an error instead of waiting for it forever."""

    @property
    def explicit(self) -> bool:
        return self.num_processes is not None and self.num_processes > 1


def from_environment(
    config: DistributedConfig, environ: Mapping[str, str] = os.environ
) -> DistributedConfig:
    """`config` with the fields it leaves unset taken from PURERL_* environment variables."""
    values = {}
    for name, variable in ENVIRONMENT.items():
        if getattr(config, name) is None and environ.get(variable):
            raw = environ[variable]
            if name == "coordinator_address":
                values[name] = raw
                continue
            try:
                values[name] = int(raw)
            except ValueError:
                raise ConfigError(
                    f"distributed.{name}", f"{variable}={raw!r} is not an integer"
                ) from None
    return dataclasses.replace(config, **values)


def slurm_tasks(environ: Mapping[str, str] = os.environ) -> int:
    """Tasks of the Slurm job step this process belongs to (1 outside Slurm)."""
    if "SLURM_JOB_ID" not in environ:
        return 1
    return int(environ.get("SLURM_STEP_NUM_TASKS") or environ.get("SLURM_NTASKS") or 1)


_ADDRESS = re.compile(r"^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$")


def validate(config: DistributedConfig) -> DistributedConfig:
    """Checks the settings before anything waits on them; ConfigError naming the fix."""
    positive(config, "distributed", "initialization_timeout", "heartbeat_timeout")
    if config.num_processes is not None and config.num_processes < 1:
        raise ConfigError(
            "distributed.num_processes", f"must be at least 1, got {config.num_processes}"
        )
    if not config.explicit:
        if config.process_id not in (None, 0):
            raise ConfigError(
                "distributed.process_id",
                f"process {config.process_id} given but num_processes is "
                f"{config.num_processes or 1}; set distributed.num_processes too",
            )
        return config
    if config.process_id is None or not 0 <= config.process_id < config.num_processes:
        raise ConfigError(
            "distributed.process_id",
            f"must be one of 0 .. {config.num_processes - 1} for a run of "
            f"{config.num_processes} processes, got {config.process_id}",
        )
    if config.coordinator_address is None or not _ADDRESS.match(config.coordinator_address):
        raise ConfigError(
            "distributed.coordinator_address",
            f"a run of {config.num_processes} processes needs process 0's host:port, e.g. "
            f"distributed.coordinator_address=10.0.0.1:1234 (got {config.coordinator_address})",
        )
    return config


class DistributedError(Exception):
    """The processes could not form (or keep) a run; the message says what to check."""


def initialize(config: DistributedConfig, environ: Mapping[str, str] = os.environ) -> int:
    """Joins the multi-process run `config` (with its environment fallbacks) describes;
    returns the number of processes (1: nothing to join, JAX untouched).

    On CPUs the cross-process collectives go through gloo. Raises ConfigError for bad
    settings and DistributedError when the coordinator cannot be reached in time. (Process 0
    hosts the coordinator; if the others do not all join within the timeout, JAX itself ends
    it with a fatal error.)
    """
    config = validate(from_environment(config, environ))
    tasks = slurm_tasks(environ)
    if not config.explicit and tasks == 1:
        return 1
    import jax

    # Only the CPU client reads this; GPU and TPU collectives are unaffected.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    timeouts = {
        "initialization_timeout": config.initialization_timeout,
        "heartbeat_timeout_seconds": config.heartbeat_timeout,
    }
    if config.explicit:
        if config.process_id != 0:
            # JAX aborts the process when it cannot connect; knock first, to say why in a line.
            _wait_for(config.coordinator_address, config.initialization_timeout)
        arguments = {
            "coordinator_address": config.coordinator_address,
            "num_processes": config.num_processes,
            "process_id": config.process_id,
        }
        where = f"the coordinator at {config.coordinator_address}"
    else:  # a Slurm step of several tasks: JAX reads the rest from Slurm's variables
        arguments, where = {}, f"the coordinator of this Slurm step ({tasks} tasks)"
    try:
        jax.distributed.initialize(**arguments, **timeouts)
    except Exception as error:  # noqa: BLE001 - jaxlib raises its own status errors
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DistributedError(
            f"could not join {where} within {config.initialization_timeout} s ({first}); "
            "start every process with the same coordinator address and num_processes, "
            "process 0 included, and check that its host and port are reachable"
        ) from None
    return jax.process_count()


def _wait_for(address: str, timeout: float) -> None:
    """Returns once something accepts connections at host:port; DistributedError after
    `timeout` seconds."""
    import socket
    import time

    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                return
        except OSError as error:
            if time.monotonic() > deadline:
                raise DistributedError(
                    f"could not join the coordinator at {address} within {timeout:g} s "
                    f"({error.strerror or error}); start process 0 with the same "
                    "--coordinator-address and --num-processes, and check that its host and "
                    "port are reachable from here"
                ) from None
            time.sleep(0.2)


def is_primary() -> bool:
    """True in the process that writes files and prints (process 0; the only one when the
    run is a single process)."""
    import jax

    return jax.process_index() == 0


def all_agree(flag: bool) -> bool:
    """True when `flag` is true in every process: a collective every process must call."""
    import jax

    if jax.process_count() == 1:
        return flag
    import numpy as np
    from jax.experimental import multihost_utils

    return bool(np.all(multihost_utils.process_allgather(np.int32(flag))))


def gather(values: list[int]) -> list[list[int]]:
    """Every process's `values` (int32s, equal length everywhere), in process order: a
    collective."""
    import jax

    if jax.process_count() == 1:
        return [list(values)]
    import numpy as np
    from jax.experimental import multihost_utils

    stacked = multihost_utils.process_allgather(np.asarray(values, np.int32))
    return [list(map(int, row)) for row in np.asarray(stacked).reshape(jax.process_count(), -1)]


def barrier(name: str) -> None:
    """Waits until every process got here."""
    import jax

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
