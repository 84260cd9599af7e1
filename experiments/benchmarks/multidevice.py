"""Training throughput over device layouts: one process with 1, 2, 4 devices, and several
processes of 2 devices each joined through jax.distributed (on localhost).

    python -m experiments.benchmarks.multidevice [--preset ppo-cartpole] [--num-envs 4096]
        [--total-env-steps N] [--layouts 1x1,1x2,1x4,2x2] [--json FILE]

A layout PxD is P processes of D devices each (on a CPU, D simulated devices through
XLA_FLAGS); every run is `python -m experiments.run PRESET --num-devices 0` with the same
geometry, and its summary.json gives the training-only env steps/s (evaluations excluded).
Prints a markdown table with each layout's ratio to the first.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from experiments.atomic import write_text_atomic

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_layout(processes: int, devices: int, argv: list[str], run_dir: Path) -> dict:
    """Trains `argv` on `processes` x `devices`; its summary.json."""
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    address = f"127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "experiments.run", *argv, "--num-devices", "0"]
    command += ["--run-dir", str(run_dir), "--quiet"]
    launched = []
    for process_id in range(processes):
        joining = ["--coordinator-address", address, "--num-processes", str(processes)]
        joining += ["--process-id", str(process_id)]
        launched.append(
            subprocess.Popen(
                command + joining, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        )
    for process in launched:
        _, err = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{processes}x{devices} failed:\n{err.decode()[-2000:]}")
    return json.loads((run_dir / "summary.json").read_text())


def markdown(rows: list[dict]) -> str:
    base = rows[0]["env_steps_per_second"]
    lines = [
        "| processes x devices | env steps/s (training) | ratio to first | compile s |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        rate = row["env_steps_per_second"]
        lines.append(
            f"| {row['layout']} | {rate:,.0f} | {rate / base:.2f} | {row['compile_time_s']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="ppo-cartpole")
    parser.add_argument("--num-envs", type=int, default=4096)
    parser.add_argument("--unroll-length", type=int, default=16)
    parser.add_argument("--total-env-steps", type=int, default=4096 * 16 * 40)
    parser.add_argument("--num-evals", type=int, default=4)
    parser.add_argument("--layouts", default="1x1,1x2,1x4,2x2")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    geometry = [args.preset, "--num-envs", str(args.num_envs)]
    geometry += ["--unroll-length", str(args.unroll_length), "--num-evals", str(args.num_evals)]
    geometry += ["--total-env-steps", str(args.total_env_steps), "--checkpoint-every", "0"]
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for layout in args.layouts.split(","):
            processes, devices = map(int, layout.split("x"))
            summary = run_layout(processes, devices, geometry, Path(work) / layout)
            rows.append({"layout": layout, **summary})
            print(f"{layout}: {summary['env_steps_per_second']:,.0f} env steps/s", file=sys.stderr)
    command = ["python", "-m", "experiments.benchmarks.multidevice", *(argv or sys.argv[1:])]
    result = {"command": command, "cpu_count": os.cpu_count(), "rows": rows}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.json, json.dumps(result, indent=1))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
