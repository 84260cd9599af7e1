"""Timing on a shared, noisy machine: a call is timed only while nothing else disturbs it.

The throughput benchmark was written on a shared 2-core VM, where other people's processes
and the host's own contention move timings by tens of percent. So every timed call (and the
Brax anchor's whole subprocess) is bracketed by

(a) the CPU time other processes used meanwhile (``/proc/stat`` minus our own, children
    included), and
(b) a ~0.2 s "canary" matmul before and after, whose GFLOP/s tracks the machine's current
    speed even when no other process is visible;

and a call during which other processes used more than 5% of the CPUs, or whose canary fell
below 85% of the best reading so far, is repeated (up to ``max_retries`` times) once the
machine is quiet again. On an accelerator the CPU canary says nothing about the timing, so
the GPU run sets ``max_retries`` to 0, which also skips waiting for a quiet CPU.
"""

from __future__ import annotations

import functools
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import jax
import jax.numpy as jnp

T = TypeVar("T")

# A timed section counts as polluted when other processes used more than this share of the
# machine's CPU capacity during it; it is then repeated once the machine is quiet again.
POLLUTED_SHARE = 0.05
SLOW_SHARE = 0.85  # a canary reading below this share of the best one marks a slow machine
MAX_RETRIES = 3
RETRY_PAUSE_S = 5.0


def log(msg: str) -> None:
    """Progress goes to stderr: stdout carries the benchmark's JSON summary and table."""
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _system_busy_s() -> float | None:
    """CPU seconds all processes on this machine have spent busy (from /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = [float(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class CpuMonitor:
    """Measures CPU time used by *other* processes during a timed section.

    Timings on a 2-core machine are only meaningful if nothing else runs; `foreign_cpu_s`
    is (machine busy time - our own CPU time) over the section, ~0 when the machine is quiet.
    """

    own_cpu_s: float
    foreign_cpu_s: float | None

    def __enter__(self) -> CpuMonitor:
        self.busy0, self.own0 = _system_busy_s(), _own_cpu_s()
        return self

    def __exit__(self, *exc: object) -> bool:
        busy1, own1 = _system_busy_s(), _own_cpu_s()
        self.own_cpu_s = own1 - self.own0
        self.foreign_cpu_s = (
            None
            if busy1 is None or self.busy0 is None
            else max(0.0, (busy1 - self.busy0) - self.own_cpu_s)
        )
        return False


def polluted(mon: CpuMonitor, wall_s: float) -> bool:
    """Whether other processes used more than POLLUTED_SHARE of the CPUs during the section."""
    cores = os.cpu_count() or 1
    # /proc/stat counts in 10 ms ticks: never call a section polluted below 0.1 CPU-s.
    limit = max(POLLUTED_SHARE * wall_s * cores, 0.1)
    return mon.foreign_cpu_s is not None and mon.foreign_cpu_s > limit


def wait_for_quiet(max_wait_s: float = 3600.0, window_s: float = 1.0) -> float:
    """Blocks until other processes use < POLLUTED_SHARE of the CPUs over a window.

    Returns the seconds waited. Gives up (with a warning) after max_wait_s.
    """
    t0 = time.perf_counter()
    warned = False
    while True:
        with CpuMonitor() as mon:
            time.sleep(window_s)
        if not polluted(mon, window_s):
            return time.perf_counter() - t0
        if not warned:
            log(
                f"other processes are using the CPU ({mon.foreign_cpu_s:.1f} CPU-s in "
                f"{window_s:.0f}s); waiting for the machine to be quiet"
            )
            warned = True
        if time.perf_counter() - t0 > max_wait_s:
            log("WARNING: machine never became quiet; timing anyway")
            return time.perf_counter() - t0


def dense_chain(
    key: jax.Array, rows: int, width: int, layers: int
) -> tuple[Callable[[jax.Array, jax.Array], jax.Array], tuple[jax.Array, jax.Array], float]:
    """A jitted chain of `layers` swish((rows, width) @ (width, width)) layers, its inputs, and
    the FLOPs of one call: what XLA's matmuls reach on this machine. The canary and the
    breakdown's GEMM ceiling both time it."""

    def chain(x: jax.Array, w: jax.Array) -> jax.Array:
        def body(h: jax.Array, _: None) -> tuple[jax.Array, None]:
            return jax.nn.swish(h @ w) * 0.5, None

        return jax.lax.scan(body, x, None, length=layers)[0]

    x = jax.random.normal(key, (rows, width)) * 0.1
    w = jax.random.normal(jax.random.fold_in(key, 1), (width, width)) / jnp.sqrt(width)
    return jax.jit(chain), (x, w), 2.0 * rows * width * width * layers


@dataclass
class Measurement(Generic[T]):
    """One undisturbed (or finally accepted) timed section and the evidence it was clean."""

    result: T
    wall_s: float
    own_cpu_s: float
    foreign_cpu_s: float | None
    canaries: tuple[float, float]  # GFLOP/s just before and just after
    repeated: int  # disturbed attempts thrown away before this one


@dataclass
class Timer:
    """The noise control of one benchmark run: its canary (and best reading so far), how many
    timed calls make a measurement and how often a disturbed one is repeated."""

    repeats: int
    max_retries: int = MAX_RETRIES
    best_canary: float = 0.0
    _canary: tuple[Callable[..., jax.Array], tuple[jax.Array, ...], float] | None = None

    def canary(self, rows: int = 1280, width: int = 256, layers: int = 200) -> float:
        """GFLOP/s of a short (~0.2 s) dense-layer chain: a probe of this machine's current
        speed. The shared 2-core VM's speed drifts by tens of percent for seconds to minutes
        even when no other process is visible (host contention); timings taken then are not
        comparable."""
        if self._canary is None:
            self._canary = dense_chain(jax.random.PRNGKey(0), rows, width, layers)
            fn, args, _ = self._canary
            jax.block_until_ready(fn(*args))
        fn, args, flops = self._canary
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        gflops = flops / (time.perf_counter() - t0) / 1e9
        self.best_canary = max(self.best_canary, gflops)
        return gflops

    def measure(
        self, name: str, run: Callable[[], T], final: Callable[[T], bool] = lambda _: False
    ) -> Measurement[T]:
        """Times `run()` once the machine is quiet, between two canary readings, and repeats it
        while other processes or a slow machine disturbed it, up to max_retries times. A result
        for which `final` holds (a failed subprocess) is kept without repeating."""
        for attempt in range(self.max_retries + 1):
            if self.max_retries:
                # With no repeats allowed (an accelerator, whose timings the CPU canary does not
                # describe) there is nothing to wait for: a shared CPU may never be quiet.
                wait_for_quiet()
            before = self.canary()
            with CpuMonitor() as mon:  # our CPU includes a finished child's
                t0 = time.perf_counter()
                result = run()
                wall = time.perf_counter() - t0
            after = self.canary()
            disturbed_by_others = polluted(mon, wall)
            slow = min(before, after) < SLOW_SHARE * self.best_canary
            if final(result) or not (disturbed_by_others or slow) or attempt == self.max_retries:
                return Measurement(
                    result, wall, mon.own_cpu_s, mon.foreign_cpu_s, (before, after), attempt
                )
            why = (
                f"other processes used {mon.foreign_cpu_s:.1f} CPU-s"
                if disturbed_by_others
                else f"machine canary {before:.0f}/{after:.0f} GFLOP/s "
                f"(best {self.best_canary:.0f})"
            )
            log(f"{name}: {why} during a {wall:.1f}s call; repeating it")
            time.sleep(RETRY_PAUSE_S)
        raise AssertionError("unreachable: the last attempt always returns")

    def time_calls(
        self,
        fn: Callable[..., Any],
        make_args: Callable[[int, Any], Sequence[Any]],
        name: str,
        warmup: bool = True,
    ) -> dict:
        """Calls fn(*make_args(0, None)) once to compile/warm up (unless `warmup` is False: a
        later round reusing the compiled program), then `repeats` timed calls.

        `make_args(i, prev)` gives the arguments of call i from the previous call's output
        (None before the first); the outputs are blocked on. Returns the warm-up (compile +
        one run) time, the timed wall times and their median, and the noise evidence.
        """
        out, warmup_s = None, None
        if warmup:
            t0 = time.perf_counter()
            out = jax.block_until_ready(fn(*make_args(0, None)))
            warmup_s = time.perf_counter() - t0
        calls: list[Measurement] = []
        for i in range(1, self.repeats + 1):
            call = functools.partial(fn, *jax.block_until_ready(make_args(i, out)))
            calls.append(self.measure(name, lambda call=call: jax.block_until_ready(call())))
            out = calls[-1].result
        times = [c.wall_s for c in calls]
        own = [c.own_cpu_s for c in calls]
        foreign = [c.foreign_cpu_s for c in calls]
        log(
            f"{name}: warm-up {'-' if warmup_s is None else f'{warmup_s:.2f}s'},"
            f" timed {[f'{t:.3f}' for t in times]}"
            f" (own CPU {[f'{c:.2f}' for c in own]} s, other processes' CPU "
            f"{['n/a' if c is None else f'{c:.2f}' for c in foreign]} s)"
        )
        return {
            "warmup_s": None if warmup_s is None else round(warmup_s, 4),
            "times_s": [round(t, 4) for t in times],
            "time_s": statistics.median(times),
            "min_time_s": min(times),
            "own_cpu_s": [round(c, 3) for c in own],
            "foreign_cpu_s": [None if c is None else round(c, 3) for c in foreign],
            "canary_gflops_before_after": [tuple(round(g) for g in c.canaries) for c in calls],
            "polluted_calls_repeated": sum(c.repeated for c in calls),
        }
