"""Learning curves across seeds: `python -m experiments.plot RUN_DIR [RUN_DIR ...]`.

Each RUN_DIR is a run directory written by `experiments.run` or a directory holding run
directories at any depth (a sweep). Runs whose configs agree on everything but `train.seed`
form a group; each group is drawn as the mean over its seeds with a 95% Student-t confidence
band for that mean. Seeds of unequal length (a run still going) are compared only at the
env_steps that every seed of the group has logged: no interpolation. A summary table is
printed and written as CSV next to the PNG. `--across train.num_envs` draws instead each
group's final value against that config field, one line per setting of the other fields
(a scaling sweep: docs/BENCHMARKS.md, "Co-scaling").

In a notebook:

    from experiments.plot import find_runs, load_run, group_runs, aggregate
    runs = [load_run(path) for path in find_runs(["runs/sweep"])]
    for label, group in group_runs(runs).items():
        steps, mean, lo, hi = aggregate([run.curve("eval/success_rate") for run in group])
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from experiments.rundir import CorruptMetrics, RunDir

DEFAULT_METRICS = ("eval/success_rate", "eval/episode_return")
X_AXES = ("env_steps", "wall_time_s")
# Not metrics: the x axes, which every record carries.
NON_METRICS = frozenset(X_AXES)


class UsageError(Exception):
    """Bad input: reported in one line, exit code 2, nothing written."""


@dataclass(frozen=True)
class Run:
    """One run directory: its config and its evaluation records, in order."""

    path: Path
    config: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def preset(self) -> str:
        """The preset name from config.json."""
        return str(self.config.get("preset", "?"))

    @property
    def seed(self) -> Any:
        """config.json's train.seed (None if absent)."""
        return self.config.get("train", {}).get("seed")

    @property
    def metrics(self) -> set[str]:
        """Names of the numeric metrics logged in any record."""
        return {
            key
            for record in self.records
            for key, value in record.items()
            if key not in NON_METRICS and isinstance(value, int | float)
        }

    def curve(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """(env_steps, values) of `metric` (any record key, wall_time_s included).

        Records without the metric are left out. Should an env_steps value repeat, the later
        record wins, so steps are unique and increasing as `aggregate` expects.
        """
        by_step: dict[int, float] = {}
        for record in self.records:
            if metric in record and "env_steps" in record:
                by_step[int(record["env_steps"])] = float(record[metric])
        steps = np.array(sorted(by_step), dtype=np.int64)
        return steps, np.array([by_step[s] for s in steps], dtype=np.float64)


def find_runs(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Run directories (config.json + metrics.jsonl) at or below each path, sorted, unique.

    Raises UsageError for a path that does not exist or is not a directory.
    """
    found: dict[Path, None] = {}  # an ordered set: the same run may be reached twice
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UsageError(f"{path} does not exist; pass a run directory or a sweep directory")
        if not path.is_dir():
            raise UsageError(
                f"{path} is not a directory; pass the run directory that holds metrics.jsonl"
            )
        for root, dirs, _ in os.walk(path):
            if RunDir(root).is_run():
                found[Path(root).resolve()] = None
                dirs.clear()  # a run directory holds no further runs
            else:
                dirs.sort()
    return sorted(found)


def load_run(path: str | os.PathLike[str]) -> Run:
    """Reads config.json and metrics.jsonl; raises UsageError naming a malformed file.

    A final line that does not parse is ignored: a run still training may be mid-write.
    """
    path = Path(path)
    run = RunDir(path)
    try:
        config = run.read_config()
    except (OSError, ValueError) as error:
        raise UsageError(
            f"cannot read {run.config_path} ({error}); remove or fix that run"
        ) from None
    try:
        records = run.read_metrics()
    except OSError as error:
        raise UsageError(f"cannot read {run.metrics_path} ({error})") from None
    except CorruptMetrics as error:
        raise UsageError(f"{error}; remove or fix that run") from None
    return Run(path, config, records)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"train": {"seed": 1}} -> {"train.seed": 1}; lists stay whole values."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}{key}."))
        return flat
    return {prefix.removesuffix("."): value}


# config.json sections that describe how a run was driven, not what was trained.
NOT_CONFIG = ("run", "sweep")


def _group_key(run: Run) -> str:
    flat = _flatten({k: v for k, v in run.config.items() if k not in NOT_CONFIG})
    flat.pop("train.seed", None)
    return json.dumps(flat, sort_keys=True)


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "x".join(_format_value(v) for v in value)  # [256, 256] -> 256x256
    return str(value)


def _sort_value(value: Any) -> tuple[int, Any]:
    # Numbers compare as numbers so depth=8 comes before depth=16.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return (1, json.dumps(value, sort_keys=True))
    return (0, value)


def group_runs(runs: Sequence[Run], max_fields: int = 3) -> dict[str, list[Run]]:
    """Groups runs whose configs agree on everything but train.seed, keyed by a short label.

    The label is the preset name plus the config fields that differ between groups of the
    same preset (`crl-point-umaze depth=8`), using the last part of the field name unless two
    differing fields share it. At most `max_fields` fields are named; labels are made unique.
    Groups are ordered by preset, then by the differing values (numbers numerically).
    """
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(_group_key(run), []).append(run)
    flats = {key: json.loads(key) for key in groups}

    by_preset: dict[str, list[str]] = {}
    for key, flat in flats.items():
        by_preset.setdefault(str(flat.get("preset", "?")), []).append(key)

    labelled: list[tuple[tuple, str, list[Run]]] = []
    for preset, keys in by_preset.items():
        fields = sorted({name for key in keys for name in flats[key]} - {"preset"})
        differing = [
            name
            for name in fields
            if len({json.dumps(flats[key].get(name), sort_keys=True) for key in keys}) > 1
        ]
        leaves = [name.rsplit(".", 1)[-1] for name in differing]
        short = [
            leaf if leaves.count(leaf) == 1 else name
            for leaf, name in zip(leaves, differing, strict=True)
        ]
        for key in keys:
            flat = flats[key]
            parts = [
                f"{s}={_format_value(flat.get(n))}" for s, n in zip(short, differing, strict=True)
            ]
            if len(parts) > max_fields:
                parts = parts[:max_fields] + [f"+{len(parts) - max_fields} more"]
            label = " ".join([preset, *parts])
            order = (preset, tuple(_sort_value(flat.get(name)) for name in differing))
            labelled.append((order, label, groups[key]))

    labelled.sort(key=lambda item: item[0])
    result: dict[str, list[Run]] = {}
    for _, label, group in labelled:
        unique, n = label, 2
        while unique in result:  # truncated labels may collide
            unique, n = f"{label} ({n})", n + 1
        result[unique] = group
    return result


def aggregate(
    curves: Sequence[tuple[np.ndarray, np.ndarray]], confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds with a Student-t confidence interval of that mean.

    `curves` holds one (steps, values) pair per seed. Only the steps present in every curve
    are kept (no interpolation), so seeds of unequal length are compared like for like.
    Returns (steps, mean, lo, hi); with one seed there is no interval and lo == hi == mean.
    """
    if not curves:
        raise ValueError("aggregate needs at least one curve")
    common = curves[0][0]
    for steps, _ in curves[1:]:
        common = np.intersect1d(common, steps)
    common = np.asarray(common)
    # Rows are seeds, columns are the common steps.
    values = np.stack(
        [np.asarray(vals, dtype=np.float64)[np.isin(steps, common)] for steps, vals in curves]
    )
    mean = values.mean(axis=0)
    n = values.shape[0]
    if n == 1:
        return common, mean, mean.copy(), mean.copy()
    from scipy import stats  # deferred: bad input should answer without loading scipy

    sem = values.std(axis=0, ddof=1) / math.sqrt(n)
    half = stats.t.ppf(0.5 + confidence / 2, df=n - 1) * sem
    return common, mean, mean - half, mean + half


def lower_is_better(metric: str) -> bool:
    """Whether the best value of `metric` is its minimum (distances, losses)."""
    name = metric.lower()
    return "distance" in name or "loss" in name


def choose_metric(runs: Sequence[Run], metric: str | None) -> str:
    """The metric to plot: the one asked for, else the first default that every run logs."""
    available = set().union(*(run.metrics for run in runs))
    if metric is None:
        for candidate in DEFAULT_METRICS:
            if all(candidate in run.metrics for run in runs):
                return candidate
        for candidate in DEFAULT_METRICS:
            if candidate in available:
                return candidate
        raise UsageError(
            f"the runs log neither {' nor '.join(DEFAULT_METRICS)}; pass --metric, one of: "
            + ", ".join(sorted(available))
        )
    if metric not in available:
        raise UsageError(
            f"metric {metric!r} is not in the runs; pass --metric one of: "
            + ", ".join(sorted(available))
        )
    return metric


@dataclass(frozen=True)
class GroupCurve:
    """One group's aggregated curve and summary numbers."""

    label: str
    seeds: int
    steps: np.ndarray
    x: np.ndarray
    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    best: float

    @property
    def final_half_width(self) -> float | None:
        """Half-width of the final interval, or None for a single seed."""
        return None if self.seeds == 1 else float(self.hi[-1] - self.mean[-1])


def group_curves(
    groups: dict[str, list[Run]], metric: str, x: str = "env_steps"
) -> tuple[list[GroupCurve], list[str]]:
    """Aggregates every group; returns (curves, warnings about runs or groups left out).

    With x="wall_time_s" the x coordinate of each common step is the mean wall time the
    seeds took to reach it, so the band is still over seeds at the same env_steps.
    """
    results, warnings = [], []
    for label, runs in groups.items():
        with_metric = []
        for run in runs:
            if len(run.curve(metric)[0]):
                with_metric.append(run)
            else:
                warnings.append(f"{run.path} logs no {metric}; left out of {label!r}")
        if not with_metric:
            continue
        seeds = [run.seed for run in with_metric]
        repeated = sorted({str(seed) for seed in seeds if seeds.count(seed) > 1})
        if repeated:
            # Identical seeds give identical curves and would shrink the band for nothing.
            warnings.append(f"{label!r} has more than one run with seed {', '.join(repeated)}")
        steps, mean, lo, hi = aggregate([run.curve(metric) for run in with_metric])
        if not len(steps):
            warnings.append(f"the seeds of {label!r} share no env_steps; group left out")
            continue
        if x == "env_steps":
            xs = steps.astype(np.float64)
        else:
            times = [run.curve(x) for run in with_metric]
            # Keep each seed's wall times at exactly the common steps, then average.
            times = [(s[np.isin(s, steps)], t[np.isin(s, steps)]) for s, t in times]
            time_steps, xs, _, _ = aggregate(times)
            if len(time_steps) != len(steps):
                warnings.append(f"some seeds of {label!r} lack {x}; group left out")
                continue
        best = float(np.nanmin(mean) if lower_is_better(metric) else np.nanmax(mean))
        results.append(GroupCurve(label, len(with_metric), steps, xs, mean, lo, hi, best))
    return results, warnings


def plot_curves(curves: Sequence[GroupCurve], metric: str, x: str, out: Path) -> None:
    """Draws each group's mean and band and saves a PNG at `out`."""
    # A bare Figure renders with Agg and touches no pyplot state, so no display is needed and
    # a notebook's own figures are left alone.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    for curve in curves:
        (line,) = axes.plot(curve.x, curve.mean, label=f"{curve.label} (n={curve.seeds})")
        if curve.seeds > 1:
            axes.fill_between(curve.x, curve.lo, curve.hi, color=line.get_color(), alpha=0.2)
    axes.set_xlabel("env steps" if x == "env_steps" else "wall time (s, excluding compile)")
    axes.set_ylabel(metric)
    axes.set_title(f"{metric}: mean over seeds, 95% CI")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.savefig(out, dpi=120)


@dataclass(frozen=True)
class FieldSeries:
    """The final value of a metric against one config field's values (`--across`): one line
    per setting of the other fields, one point per value of the field."""

    label: str
    values: list[Any]
    curves: list[GroupCurve]


def _without(run: Run, field_name: str) -> Run:
    """`run` with config field `field_name` (dotted, as `train.num_envs`) taken out."""
    config = json.loads(json.dumps(run.config))
    *sections, name = field_name.split(".")
    inner = config
    for section in sections:
        inner = inner.get(section, {})
    inner.pop(name, None)
    return Run(run.path, config, run.records)


def across_field(
    runs: Sequence[Run], field_name: str, metric: str
) -> tuple[list[FieldSeries], list[str]]:
    """Groups `runs` by every config field but `field_name` and the seed (each a series,
    labelled as group_runs labels groups), then by the value of `field_name` within each,
    aggregated over seeds as group_curves does; returns (series, warnings). UsageError if
    some run's config lacks the field."""
    values = {}
    for run in runs:
        flat = _flatten(run.config)
        if field_name not in flat:
            raise UsageError(
                f"{run.path}'s config has no field {field_name!r}; name it as section.field, "
                "e.g. train.num_envs"
            )
        values[run.path] = flat[field_name]
    series, warnings = [], []
    originals = {run.path: run for run in runs}
    for label, members in group_runs([_without(run, field_name) for run in runs]).items():
        by_value: dict[str, list[Run]] = {}
        for member in members:
            by_value.setdefault(json.dumps(values[member.path]), []).append(originals[member.path])
        ordered = sorted(by_value, key=lambda key: _sort_value(json.loads(key)))
        groups = {
            f"{label} {field_name.rsplit('.', 1)[-1]}={_format_value(json.loads(key))}": (
                by_value[key]
            )
            for key in ordered
        }
        curves, more = group_curves(groups, metric)
        warnings += more
        kept = {curve.label for curve in curves}
        points = [
            json.loads(key) for key, name in zip(ordered, groups, strict=True) if name in kept
        ]
        series.append(FieldSeries(label, points, curves))
    return series, warnings


def plot_across(series: Sequence[FieldSeries], metric: str, field_name: str, out: Path) -> None:
    """Each series' final mean with its 95% CI against the field's values; a log-2 axis
    when the values are positive numbers spanning a factor of 4 or more."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    for line in series:
        x = np.asarray(line.values, dtype=np.float64)
        mean = np.array([curve.mean[-1] for curve in line.curves])
        lo = np.array([curve.lo[-1] for curve in line.curves])
        hi = np.array([curve.hi[-1] for curve in line.curves])
        seeds = sorted({curve.seeds for curve in line.curves})
        axes.errorbar(
            x,
            mean,
            yerr=np.stack([mean - lo, hi - mean]),
            marker="o",
            capsize=3,
            label=f"{line.label} (n={'/'.join(map(str, seeds))})",
        )
    numbers = [v for line in series for v in line.values]
    if numbers and all(isinstance(v, int | float) and v > 0 for v in numbers):
        if max(numbers) >= 4 * min(numbers):
            axes.set_xscale("log", base=2)
    axes.set_xlabel(field_name)
    axes.set_ylabel(f"final {metric}")
    axes.set_title(f"final {metric} against {field_name}: mean over seeds, 95% CI")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.savefig(out, dpi=120)


TABLE_COLUMNS = ("group", "seeds", "final_mean", "final_ci_half_width", "best_mean", "env_steps")


def summary_rows(curves: Sequence[GroupCurve]) -> list[dict[str, Any]]:
    """One row per group: final mean and CI half-width (None for one seed), best mean, steps."""
    return [
        {
            "group": curve.label,
            "seeds": curve.seeds,
            "final_mean": float(curve.mean[-1]),
            "final_ci_half_width": curve.final_half_width,
            "best_mean": curve.best,
            "env_steps": int(curve.steps[-1]),
        }
        for curve in curves
    ]


def format_table(rows: Sequence[dict[str, Any]], metric: str) -> str:
    """A fixed-width text table of `summary_rows`."""
    header = ("group", "seeds", f"final {metric} (95% CI)", "best mean", "env steps")
    body = []
    for row in rows:
        final = f"{row['final_mean']:.4g}"
        if row["final_ci_half_width"] is not None:
            final += f" ± {row['final_ci_half_width']:.3g}"
        body.append(
            (
                row["group"],
                str(row["seeds"]),
                final,
                f"{row['best_mean']:.4g}",
                f"{row['env_steps']}",
            )
        )
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = []
    for r in [header, *body]:
        # Text columns left-aligned, numbers right-aligned.
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells))
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Writes `summary_rows` as CSV; a single seed's half-width is left empty."""
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=TABLE_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad flags as a UsageError (one line) instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see python -m experiments.plot --help")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parses the command line; raises UsageError on bad flags (SystemExit only for --help)."""
    parser = _Parser(
        prog="python -m experiments.plot",
        description="Learning curves (mean over seeds, 95%% CI) and a summary table.",
    )
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run or sweep directory")
    parser.add_argument(
        "--metric",
        default=None,
        help="metric to plot; default eval/success_rate if every run logs it, "
        "else eval/episode_return",
    )
    parser.add_argument(
        "--out", default="plot.png", help="PNG path (default plot.png); CSV goes next to it"
    )
    parser.add_argument("--x", choices=X_AXES, default="env_steps", help="x axis")
    parser.add_argument(
        "--across",
        metavar="FIELD",
        help="plot each group's final metric against config FIELD (section.field, e.g. "
        "train.num_envs) instead of curves: one line per setting of the other fields (--x "
        "does not apply)",
    )
    return parser.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code (2 for bad input, with nothing written)."""
    try:
        try:
            args = parse_args(sys.argv[1:] if argv is None else argv)
        except SystemExit as exit_:  # --help: argparse printed it and wants to exit
            return int(exit_.code or 0)
        out = Path(args.out)
        if out.suffix.lower() != ".png":
            raise UsageError(f"--out {out} must end in .png; the CSV is written next to it")
        if out.exists() and out.is_dir():
            raise UsageError(f"--out {out} is a directory; pass a file path ending in .png")
        paths = find_runs(args.run_dirs)
        if not paths:
            raise UsageError(
                f"no run directories (config.json + metrics.jsonl) under {' '.join(args.run_dirs)}"
                "; pass a directory written by python -m experiments.run"
            )
        runs = [load_run(path) for path in paths]
        metric = choose_metric(runs, args.metric)
        series: list[FieldSeries] = []
        if args.across is not None:
            series, warnings = across_field(runs, args.across, metric)
            curves = [curve for line in series for curve in line.curves]
        else:
            curves, warnings = group_curves(group_runs(runs), metric, args.x)
        if not curves:
            raise UsageError(f"no run has logged {metric} yet; wait for an evaluation")
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.across is not None:
        plot_across(series, metric, args.across, out)
    else:
        plot_curves(curves, metric, args.x, out)
    rows = summary_rows(curves)
    csv_path = out.with_suffix(".csv")
    write_csv(rows, csv_path)
    print(format_table(rows, metric))
    print(f"plot: {out}\ntable: {csv_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
