"""Kernel launches per update on an H200, counted on a machine without one: purerl's program
at PureJaxRL's configuration (the `speed` benchmark's) beside PureJaxRL's own.

    make bench-launches PUREJAXRL=CHECKOUT       # or, in the venv gpu_launches_venv.py makes:
    python -m experiments.benchmarks.gpu_launches --purejaxrl-dir CHECKOUT --json OUT

Both programs are compiled by XLA's GPU compiler for the H200's description (gpu_target.py)
and read with hlo_loops: each loop body's kernels times its trips per update. On the H200 the
update at this configuration is bound by launches (docs/BENCHMARKS.md: 1.73-1.78 us per
launch whatever the program), so PureJaxRL's launches over purerl's predicts the speed ratio
there; only a GPU measures it. Rows: purerl with fresh starts built per step (the GPU default)
and with first-state resets (PureJaxRL's own reset), and `--fresh-starts per_unroll` if asked.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from experiments.benchmarks.gpu_target import ENVIRONMENT

if "jax" in sys.modules:  # the plugin reads these when jax starts
    raise SystemExit("gpu_launches: import it before jax (it sets " + ", ".join(ENVIRONMENT) + ")")
os.environ.update(ENVIRONMENT)

import jax  # noqa: E402

from experiments.atomic import write_text_atomic  # noqa: E402
from experiments.benchmarks import hlo_loops, speed  # noqa: E402
from experiments.benchmarks.args import add_geometry, add_purejaxrl  # noqa: E402
from experiments.benchmarks.gpu_target import TARGETS, gpu_key  # noqa: E402
from purerl import Trainer  # noqa: E402

# PureJaxRL's ppo_continuous_action defaults on ant: the speed benchmark's device setting.
PUREJAXRL_ANT = {
    "env": "ant",
    "backend": "spring",
    "num_envs": 2048,
    "unroll_length": 10,
    "num_minibatches": 32,
    "num_epochs": 4,
}
# What env.fresh_starts and env.substeps resolve to ("auto") on a GPU, spelled out: this runs
# on a machine without one. "brax's scan" is the GPU default before substeps could unroll.
VARIANTS = {
    "fresh per step": {"fresh_starts": "per_step", "substeps": "unrolled"},
    "first state": {"reset_to_first_state": True, "substeps": "unrolled"},
    "fresh per step, brax's scan": {"fresh_starts": "per_step", "substeps": "scan"},
    "fresh per unroll": {"fresh_starts": "per_unroll", "substeps": "unrolled"},
}


def counted(text: str, hlo_path: Path | None) -> dict:
    """Launches per update and the loop tree of one compiled program (kept at hlo_path)."""
    if hlo_path is not None:
        write_text_atomic(hlo_path, text)
    rows = hlo_loops.loop_tree(text)
    loops = [f"{'  ' * r['depth']}{r['ops_per_trip']} x {r['trips']}" for r in rows]
    return {"launches_per_update": hlo_loops.launches_per_update(rows), "loops": loops}


def purerl_program(args: argparse.Namespace, variant: dict) -> str:
    trainer = Trainer(speed.purejaxrl_config(speed.settings(args, **variant)))
    return speed.compiled_train(trainer, args.num_updates, gpu_key(args.target)).as_text()


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_geometry(p, **PUREJAXRL_ANT)
    p.add_argument("--num-updates", type=int, default=50)
    p.add_argument("--target", choices=list(TARGETS), default="h200")
    p.add_argument(
        "--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS)[:2], metavar="V"
    )
    add_purejaxrl(p)
    p.add_argument("--hlo-dir", help="keep the compiled programs here")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    hlo_dir = Path(args.hlo_dir) if args.hlo_dir else None
    if hlo_dir is not None:
        hlo_dir.mkdir(parents=True, exist_ok=True)

    programs = {}
    for name in args.variants:
        start = time.perf_counter()
        text = purerl_program(args, VARIANTS[name])
        path = hlo_dir / f"purerl-{name.replace(' ', '-')}.hlo.txt" if hlo_dir else None
        programs[f"purerl, {name}"] = counted(text, path)
        programs[f"purerl, {name}"]["compile_s"] = round(time.perf_counter() - start, 1)
    if args.purejaxrl_dir:
        with tempfile.TemporaryDirectory() as scratch:
            # The anchor writes its program to DIR/purejaxrl.hlo.txt (speed.time_anchor).
            anchor_dir = hlo_dir or Path(scratch)
            setting = speed.settings(
                args,
                purejaxrl_dir=args.purejaxrl_dir,
                pythonpath=args.pythonpath,
                hlo_dir=anchor_dir,
            )
            anchor = speed.time_anchor(setting, gpu_target=args.target)
            programs["PureJaxRL"] = counted((anchor_dir / "purejaxrl.hlo.txt").read_text(), None)
        programs["PureJaxRL"]["compile_s"] = anchor["compile_s"]
    reference = programs.get("PureJaxRL", {}).get("launches_per_update")
    for program in programs.values():
        if reference:
            program["purejaxrl_over_this"] = round(reference / program["launches_per_update"], 4)
    result = {"target": args.target, "jax_version": jax.__version__, "config": vars(args)}
    result["programs"] = programs
    print(f"launches per update on {args.target} ({args.env}, {args.num_envs} envs):")
    for name, program in programs.items():
        ratio = program.get("purejaxrl_over_this")
        print(f"  {program['launches_per_update']:6d}  {name}" + (f"  ({ratio}x)" if ratio else ""))
    speed.write(result, args.json)
    return result


if __name__ == "__main__":
    main()
