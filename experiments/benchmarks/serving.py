"""A compiled training run served from its own process, one timed call per request: how the
speed benchmark alternates, or runs side by side, two programs that must not share a process
(PureJaxRL's anchor runs under its own import path).

The server (`serve`) writes one JSON line when it is ready, then, for every line it reads on
stdin, times one call and answers `{"train_s": seconds}`, until stdin closes. `Server` starts
such a process and asks it. Standard library only: the anchor, which runs as a script, imports
it as a sibling.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import IO

# Without a preexec_fn, which a process running JAX's threads must not fork into.
PIN = (
    "import os, sys; os.sched_setaffinity(0, {int(sys.argv[1])}); "
    "os.execvp(sys.argv[2], sys.argv[2:])"
)


def timed(call: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def claim_stdout() -> IO[str]:
    """The process's stdout, for the server's lines alone: whatever else writes to file
    descriptor 1 from now on (a library's prints) goes to stderr."""
    sys.stdout.flush()
    real = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(real, "w")


def serve(call: Callable[[], object], ready: dict, requests: IO[str], out: IO[str]) -> None:
    """Makes one untimed call (a compiled program's first run pays for its buffers), writes
    `ready`, then for each line of `requests` the seconds of one call, a JSON line each,
    flushed, so that the process reading them can pace it."""
    call()
    out.write(json.dumps(ready) + "\n")
    out.flush()
    for _ in requests:
        out.write(json.dumps({"train_s": timed(call)}) + "\n")
        out.flush()


class Server:
    """A serving process; `ready` is its first line, `ask()` requests one timed call and
    `answer()` returns its seconds (`()` does both). `core`: the one CPU it may run on. As a
    context manager, it closes the process's stdin and waits for it on leaving."""

    def __init__(
        self, name: str, command: list[str], env: dict | None = None, core: int | None = None
    ):
        self.name = name
        self.log = tempfile.TemporaryFile(mode="w+")  # its stderr: read back only on failure
        if core is not None:  # pinned by a python that then becomes the command
            command = [sys.executable, "-c", PIN, str(core), *command]
        self.process = subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log, text=True,
        )  # fmt: skip
        self.ready = self.read()

    def read(self) -> dict:
        """The next JSON line it writes (lines that are not JSON objects are skipped)."""
        for line in self.process.stdout:
            if line.startswith("{"):
                return json.loads(line)
        self.process.wait()
        self.log.seek(0)
        raise SystemExit(f"{self.name} failed:\n{self.log.read()[-3000:]}")

    def ask(self) -> None:
        self.process.stdin.write("\n")
        self.process.stdin.flush()

    def answer(self) -> float:
        return self.read()["train_s"]

    def __call__(self) -> float:
        self.ask()
        return self.answer()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()
        self.log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
