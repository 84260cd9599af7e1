"""The accelerator benchmark: what only a GPU can measure, in one short prepared run.

    make bench-device DEVICE_OUT=runs/bench/device     # on the GPU machine (see docs/BENCHMARKS.md)
    python -m experiments.benchmarks.device --out DIR --purejaxrl-dir PUREJAXRL [--quick]

Each part runs the project's own benchmark in a subprocess, one after another, with a time
limit of its own, and leaves DIR/<part>.log (its output); a part that fails or runs out of
time does not stop the next. DIR/device.json, rewritten after every part, holds the machine
(jax version and devices, GPU name) and every part's command, exit status, wall time and
results (the JSON the benchmark wrote, kept with its run directory under DIR/work/), and
DIR/device.md a markdown table of the headline numbers. The default parts, most important
first, together under 8 minutes (``DEFAULT_LIMITS_S``; a part that runs out of time is
stopped and the next starts, so the whole never takes longer than their sum):

1. ``speed-brax``: ``throughput`` on ant (spring) at Brax's published ant geometry (4,096 envs
   x 16 unrolls of 5, 32 minibatches, 4 epochs): purerl against Brax's own trainer. Where the
   running jax lacks ``jax.device_put_replicated`` the Brax anchor restores it (see
   ``brax_anchor``) and says so in its JSON. ``throughput`` writes purerl's side before the
   anchor starts, so a Brax compile that outlasts the limit still leaves purerl's numbers.
2. ``speed-brax-16k``: the same at 16,384 environments (fewer iterations per timed call).
3. ``scaling``: ``scaling``, PPO on cart-pole (``ppo-cartpole-million``'s settings) at 2^16 ..
   2^20 environments x unroll 8, each size in its own process: env steps/s, compile time,
   peak device memory.
4. ``depth``: ``depth --model crl``, one whole CRL gradient step with remat at depth 4, 64,
   256 and 1024: steps/s, XLA's memory estimate and the peak device memory in use.

Not run unless named with ``--only``: ``speed-purejaxrl``, ``speed`` on ant (spring) at
PureJaxRL's own ``ppo_continuous_action`` defaults (2,048 envs x 10 steps, 32 minibatches, 4
epochs): purerl against PureJaxRL (with ``--purejaxrl-dir``; purerl's side alone without), both
timed after compilation, purerl's per-part breakdown, and both compiled programs' loops with
the operations (kernels) each runs per trip (``experiments.benchmarks.hlo_loops``; the programs
themselves stay in DIR/work/hlo/). It took 174 s on the H200 before physics substeps were
unrolled, more than the 8 minutes leave. ``speed-purejaxrl-first`` (also only with ``--only``)
times purerl alone at the same configuration with ``--reset-to-first-state``, PureJaxRL's own
reset (36-41 s on the H200); read it against that part's PureJaxRL number.
``speed-purejaxrl-per-unroll`` (also only with ``--only``) times purerl alone with
``--fresh-starts per_unroll``: fresh starts built once per unroll and a conditional on every
step, the GPU default before ``env.fresh_starts`` ("auto" builds them once per step on a GPU).
``speed-purejaxrl-scan`` (also only with ``--only``) times purerl alone with ``--substeps
scan``: brax's physics substeps in brax's own loop, the GPU default before ``env.substeps``
("auto" unrolls them on a GPU). ``speed-purejaxrl-graphs`` (only with ``--only``) repeats
``speed-purejaxrl`` without the breakdown under XLA's command buffers for every kind of thunk
(``PART_XLA_FLAGS``), and keeps both compiled programs and their thunk sequences
(``THUNK_DUMP_PARTS``), which show what each command buffer recorded;
``speed-purejaxrl-graphs-triton`` times purerl alone under the same flags with Triton for every
matrix product (``--xla_gpu_cublas_fallback=false``). Each part's XLA flags are in its row of
device.json.

``--quick`` shrinks every part to a CPU-sized smoke run (inverted_pendulum, small batches) to
rehearse the whole script before spending accelerator time. Subprocesses get
``XLA_PYTHON_CLIENT_PREALLOCATE=false``: a parent holding three quarters of the GPU's memory
would starve the anchor it starts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from experiments.atomic import write_text_atomic

REPO = Path(__file__).resolve().parents[2]

BRAX_ANT_GEOMETRY = [
    "--env", "ant", "--backend", "spring", "--num-envs", "4096", "--unroll-length", "5",
    "--unrolls-per-iteration", "16", "--num-minibatches", "32", "--num-epochs", "4",
]  # fmt: skip
PUREJAXRL_ANT_GEOMETRY = [
    "--env", "ant", "--backend", "spring", "--num-envs", "2048", "--unroll-length", "10",
    "--num-minibatches", "32", "--num-epochs", "4",
]  # fmt: skip
QUICK_GEOMETRY = [
    "--env", "inverted_pendulum", "--backend", "spring", "--num-envs", "64",
    "--unroll-length", "5", "--num-minibatches", "4", "--num-epochs", "2",
]  # fmt: skip


def parts(args: argparse.Namespace, out: Path) -> list[tuple[str, list[str], Path]]:
    """(name, command, results file) of every part, in the order they run."""
    py = [sys.executable, "-m"]
    quick = args.quick
    speed_setting = [
        *py, "experiments.benchmarks.speed", *(QUICK_GEOMETRY if quick else PUREJAXRL_ANT_GEOMETRY),
        "--num-updates", "4" if quick else "50", "--rounds", "1",
    ]  # fmt: skip
    anchor = ["--purejaxrl-dir", args.purejaxrl_dir] if args.purejaxrl_dir else ["--skip-anchor"]
    timed_only = ["--skip-unchecked", "--no-breakdown"]  # one timing, no second compile
    alone = ["--skip-anchor", *timed_only]

    def speed(name: str, *flags: str) -> tuple[str, list[str], Path]:
        """A part timing PureJaxRL's configuration: the shared setting, then its own flags."""
        results = out / f"{name}.json"
        return name, [*speed_setting, *flags, "--json", str(results)], results

    def brax(num_envs: int, iterations: int, results: Path) -> list[str]:
        geometry = QUICK_GEOMETRY if quick else BRAX_ANT_GEOMETRY
        at = geometry.index("--num-envs") + 1
        geometry = [*geometry[:at], str(num_envs), *geometry[at + 1 :]]
        command = [
            *py, "experiments.benchmarks.throughput", *geometry,
            "--iterations", str(iterations), "--repeats", "2", "--max-retries", "0",
            "--brax-python", sys.executable,
            "--brax-num-eval-envs", "16" if quick else "128", "--out", str(results),
        ]  # fmt: skip
        return command + (["--episode-length", "100"] if quick else [])

    scaling = [
        *py, "experiments.benchmarks.scaling",
        "--log2-envs", *(["10", "11"] if quick else ["16", "20"]),
        "--min-steps", str(2**14 if quick else 2**24), "--repeats", "2", "--timeout-s", "60",
        "--json", str(out / "scaling.json"), "--markdown", str(out / "scaling.md"),
    ]  # fmt: skip
    depth = [
        *py, "experiments.benchmarks.depth", "--model", "crl",
        "--depths", *(["4", "8"] if quick else ["4", "64", "256", "1024"]),
        "--variants", "remat", "--time-variants", "remat", "--steps", "2" if quick else "10",
        "--json", str(out / "depth.json"),
    ]  # fmt: skip
    return [
        ("speed-brax", brax(64 if quick else 4096, 2 if quick else 10, out / "speed-brax.json"),
         out / "speed-brax.json"),
        ("speed-brax-16k", brax(128 if quick else 16384, 2 if quick else 3,
                                out / "speed-brax-16k.json"), out / "speed-brax-16k.json"),
        ("scaling", scaling, out / "scaling.json"),
        ("depth", depth, out / "depth.json"),
        speed("speed-purejaxrl", "--hlo-dir", str(out / "hlo"), *anchor),
        speed("speed-purejaxrl-first", "--reset-to-first-state", *alone),
        # Fresh starts built once per unroll, with a conditional on every step (the GPU default
        # builds them once per step, with none).
        speed("speed-purejaxrl-per-unroll", "--fresh-starts", "per_unroll", *alone),
        # brax's physics substeps in brax's own scan (the GPU default unrolls them).
        speed("speed-purejaxrl-scan", "--substeps", "scan", *alone),
        # Under XLA's command buffers (PART_XLA_FLAGS): both sides, keeping the compiled
        # programs, whose text shows which thunks were recorded; then purerl alone with every
        # matrix product left to Triton.
        speed("speed-purejaxrl-graphs", "--hlo-dir", str(out / "hlo-graphs"), *timed_only, *anchor),
        speed("speed-purejaxrl-graphs-triton", *alone),
    ]  # fmt: skip


def machine() -> dict:
    """What the parts ran on, read in a subprocess so this process never holds the GPU."""
    probe = (
        "import jax, json; d = jax.devices(); print(json.dumps({'jax': jax.__version__, "
        "'backend': jax.default_backend(), 'devices': [x.device_kind for x in d]}))"
    )
    info = {"python": platform.python_version(), "host_cpus": os.cpu_count()}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    info.update(json.loads(done.stdout) if done.returncode == 0 else {"probe": done.stderr[-500:]})
    try:
        gpu = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        )
        info["nvidia_smi"] = gpu.stdout.strip()
    except OSError:
        info["nvidia_smi"] = None
    return info


def run_part(
    name: str, command: list[str], limit_s: int, results: Path, out: Path, env: dict
) -> dict:
    print(f"[device] {name}: {' '.join(command[1:])} (limit {limit_s} s)", flush=True)
    # A rerun into the same DIR must not report an earlier run's results as its own.
    if results.parent.name == name:  # a run directory of its own
        shutil.rmtree(results.parent, ignore_errors=True)
    results.unlink(missing_ok=True)
    start = time.perf_counter()
    with open(out / f"{name}.log", "w") as log:
        try:
            rc = subprocess.run(
                command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=limit_s
            ).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    wall = round(time.perf_counter() - start, 1)
    print(f"[device] {name}: exit {rc} after {wall} s", flush=True)
    row = {"command": command[1:], "limit_s": limit_s, "exit": rc, "wall_s": wall}
    if results.exists():
        row["results"] = json.loads(results.read_text())
    return row


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "device")
    p.add_argument(
        "--work", type=Path, help="where the parts write results and runs (default DIR/work)"
    )
    p.add_argument("--purejaxrl-dir", help="a checkout of luchris429/purejaxrl (its anchor)")
    p.add_argument("--quick", action="store_true", help="CPU-sized rehearsal of every part")
    p.add_argument("--only", nargs="+", help="run these parts only", choices=list(DEFAULT_LIMITS_S))
    p.add_argument(
        "--limit-s",
        nargs="+",
        default=[],
        metavar="PART=SECONDS",
        help="time limits per part (defaults: "
        + ", ".join(f"{k}={v}" for k, v in DEFAULT_LIMITS_S.items())
        + ")",
    )
    args = p.parse_args(argv)
    limits = dict(DEFAULT_LIMITS_S)
    for item in args.limit_s:
        part, _, seconds = item.partition("=")
        if part not in limits or not seconds.isdigit():
            p.error(f"--limit-s takes PART=SECONDS with PART one of {', '.join(limits)}")
        limits[part] = int(seconds)

    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false", PYTHONUNBUFFERED="1")
    report = {"machine": machine(), "quick": args.quick, "parts": {}}
    print(f"[device] {json.dumps(report['machine'])}", flush=True)
    work = args.work or args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    for name, command, results in parts(args, work):
        if name not in (args.only or DEFAULT_PARTS):
            continue
        dump = work / f"thunks-{name}" if name in THUNK_DUMP_PARTS else None
        own = [PART_XLA_FLAGS.get(name), thunk_dump_flags(dump) if dump else None]
        flags = " ".join(filter(None, [env.get("XLA_FLAGS"), *own]))
        part_env = dict(env, XLA_FLAGS=flags) if flags else env
        report["parts"][name] = run_part(name, command, limits[name], results, args.out, part_env)
        if name in PART_XLA_FLAGS or dump:
            report["parts"][name]["xla_flags"] = flags
        if dump:
            report["parts"][name]["thunk_sequences"] = keep_thunk_sequences(dump)
        write_text_atomic(args.out / "device.json", json.dumps(report, indent=1) + "\n")
        write_text_atomic(args.out / "device.md", markdown(report))
    return report


def headline(name: str, results: dict | None) -> str:
    """A part's main numbers in a few words, for the markdown table."""
    if not results:
        return "no results"
    if name.startswith("speed-brax"):
        if "partial" in results:
            ours = results["ours"]["env_steps_per_second"]
            return f"purerl {ours:,.0f} steps/s; Brax's anchor did not finish"
        s = results["summary"]
        brax = s.get("brax_train_only_steps_per_s")
        brax = f"{brax:,.0f}" if brax else "-"
        ratio = s.get("ratio_ours_over_brax")
        ratio = f" ({ratio:.2f}x)" if ratio else ""
        return f"purerl {s['ours_steps_per_s']:,.0f} steps/s, Brax train-only {brax}{ratio}"
    if name == "scaling":
        return "; ".join(
            f"2^{r['num_envs'].bit_length() - 1}: "
            + (
                f"{r['env_steps_per_s']:,.0f} steps/s"
                + (f", {r['device_peak_mib']:,.0f} MiB" if "device_peak_mib" in r else "")
                if "env_steps_per_s" in r
                else "failed"
            )
            for r in results["rows"]
        )
    if name == "depth":
        return "; ".join(
            f"depth {r['depth']}: {r.get('steps_per_s', 0):.1f} steps/s, "
            + (
                f"{r['device_peak_bytes'] / 2**20:,.0f} MiB peak"
                if "device_peak_bytes" in r
                else f"{r.get('peak_bytes', 0) / 2**20:,.0f} MiB (XLA estimate)"
            )
            for r in results["results"]
        )
    if name.startswith("speed-purejaxrl"):
        line = f"purerl {results['ours_env_steps_per_second']:,.0f} steps/s"
        if "fresh_starts_per_step" in results:  # absent before env.fresh_starts
            per = "step" if results["fresh_starts_per_step"] else "unroll"
            first = results.get("config", {}).get("reset_to_first_state")
            line += " (first-state resets)" if first else f" (fresh starts per {per})"
        if results.get("unrolled_substeps") is False:
            line += " (brax's substep scan)"
        if "purejaxrl_env_steps_per_second" in results:
            line += (
                f", PureJaxRL {results['purejaxrl_env_steps_per_second']:,.0f}"
                f" ({results['ratio']:.3f}x)"
            )
        return line
    return json.dumps(results)[:200]


def markdown(report: dict) -> str:
    """device.md: one row per part that ran."""
    lines = [
        f"Machine: {json.dumps(report['machine'])}" + (" (quick)" if report["quick"] else ""),
        "",
        "| part | exit | wall s (limit) | result |",
        "|---|---|---:|---|",
    ]
    for name, row in report["parts"].items():
        try:
            result = headline(name, row.get("results"))
        except (KeyError, TypeError, ValueError) as error:  # a format this table does not know
            result = f"see device.json ({type(error).__name__})"
        lines.append(f"| {name} | {row['exit']} | {row['wall_s']} ({row['limit_s']}) | {result} |")
    return "\n".join(lines) + "\n"


# On the H200 (2026-11-28): speed-purejaxrl took 174 s; speed-brax's purerl side 70 s and
# Brax's anchor 86 s of compilation alone; the 2^20-environment cart-pole run 31 s with its
# evaluation; depth (scan to 1024, unrolled to 16) about 30 s. Limits of the default parts sum
# to 470 s, under the 8 minutes the issue allows; the 16k and scaling limits are estimates
# (no GPU was lent when they were added).
DEFAULT_LIMITS_S = {
    "speed-brax": 150,
    "speed-brax-16k": 150,
    "scaling": 110,
    "depth": 60,
    # Unrolled physics substeps (env.substeps, the GPU default) compile for longer: ant's
    # program took 77 s instead of 48 to compile for the H200 on a 2-core CPU.
    "speed-purejaxrl": 260,
    "speed-purejaxrl-first": 90,
    "speed-purejaxrl-per-unroll": 90,
    "speed-purejaxrl-scan": 90,
    "speed-purejaxrl-graphs": 180,
    "speed-purejaxrl-graphs-triton": 90,
}
# XLA's command buffers (CUDA graphs) for every kind of thunk, loops and conditionals
# included: PureJaxRL ran 9.6% faster under them on the H200 (2026-11-29) and purerl did not.
# Added to any XLA_FLAGS the run already has, for these parts only.
COMMAND_BUFFERS = (
    "--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,"
    "DYNAMIC_SLICE_FUSION,CONDITIONAL,WHILE"
)
PART_XLA_FLAGS = {
    "speed-purejaxrl-graphs": COMMAND_BUFFERS,
    # purerl's one library call inside its loops was a cuBLASLt matrix product (the value
    # pass); PureJaxRL's were all Triton fusions. Without the cuBLAS fallback, so are purerl's.
    "speed-purejaxrl-graphs-triton": COMMAND_BUFFERS + " --xla_gpu_cublas_fallback=false",
}
# Parts whose thunk sequences XLA dumps (DIR/work/thunks-PART/, one per compiled `train`,
# timestamped): which kernels each command buffer recorded, on the device, with autotuning.
# Compiled without a GPU, purerl's whole minibatch step is one command buffer, yet PureJaxRL
# gained from them and purerl did not (docs/BENCHMARKS.md). Every other dumped file is removed.
THUNK_DUMP_PARTS = ("speed-purejaxrl-graphs",)
DEFAULT_PARTS = ("speed-brax", "speed-brax-16k", "scaling", "depth")


def thunk_dump_flags(directory: Path) -> str:
    return (
        f"--xla_dump_to={directory} --xla_dump_hlo_module_re=jit_train "
        "--xla_dump_include_timestamp=true"
    )


def keep_thunk_sequences(directory: Path) -> list[str]:
    """Removes every dumped file but the thunk sequences; returns those, by name."""
    kept = []
    for path in sorted(directory.glob("*")) if directory.is_dir() else []:
        if path.is_file() and "thunk_sequence" in path.name:
            kept.append(path.name)
        elif path.is_file():
            path.unlink()
    return kept


if __name__ == "__main__":
    main()
