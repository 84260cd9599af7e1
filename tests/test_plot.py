"""Learning-curve plotting over seeds: `python -m experiments.plot` and its functions."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from experiments.plot import (
    across_field,
    aggregate,
    find_runs,
    group_curves,
    group_runs,
    load_run,
    main,
)

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_run(
    path: Path,
    seed: int,
    values: list[float],
    *,
    preset: str = "crl-point-umaze",
    depth: int = 4,
    metric: str = "eval/success_rate",
    steps_per_eval: int = 100,
    num_envs: int = 8,
) -> Path:
    """A fake run directory in the layout `experiments.run` writes."""
    path.mkdir(parents=True)
    config = {
        "preset": preset,
        "env": {"name": "point_umaze", "episode_length": 100},
        "train": {"num_envs": num_envs, "total_env_steps": 1000, "seed": seed},
        "agent": {"depth": depth, "width": 64, "hidden_sizes": [64, 64]},
    }
    (path / "config.json").write_text(json.dumps(config))
    lines = [
        json.dumps(
            {
                "env_steps": (i + 1) * steps_per_eval,
                "wall_time_s": 0.5 * (i + 1) + seed,
                metric: value,
                "eval/episode_return": 10.0 * value,
                "train/loss/total": 1.0 / (i + 1),
            }
        )
        for i, value in enumerate(values)
    ]
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return path


def run_plot(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "experiments.plot", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        # Run from another directory (to see what lands in cwd), so put the repo on the path.
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_aggregate_mean_and_ci_match_hand_computation():
    steps = np.array([100, 200])
    curves = [
        (steps, np.array([0.1, 0.4])),
        (steps, np.array([0.2, 0.6])),
        (steps, np.array([0.6, 0.8])),
    ]
    out_steps, mean, lo, hi = aggregate(curves)
    np.testing.assert_array_equal(out_steps, steps)
    # Column 0: values 0.1, 0.2, 0.6 -> mean 0.3, sample variance ((.2)^2+(.1)^2+(.3)^2)/2.
    sd0 = math.sqrt((0.04 + 0.01 + 0.09) / 2)
    sd1 = math.sqrt((0.04 + 0.0 + 0.04) / 2)  # 0.4, 0.6, 0.8 -> mean 0.6
    t = stats.t.ppf(0.975, df=2)
    half = t * np.array([sd0, sd1]) / math.sqrt(3)
    np.testing.assert_allclose(mean, [0.3, 0.6])
    np.testing.assert_allclose(lo, [0.3, 0.6] - half)
    np.testing.assert_allclose(hi, [0.3, 0.6] + half)


def test_aggregate_keeps_only_steps_common_to_all_seeds():
    long = (np.array([100, 200, 300]), np.array([1.0, 2.0, 3.0]))
    short = (np.array([100, 200]), np.array([3.0, 4.0]))
    steps, mean, lo, hi = aggregate([long, short])
    np.testing.assert_array_equal(steps, [100, 200])
    np.testing.assert_allclose(mean, [2.0, 3.0])
    assert np.all(lo < mean) and np.all(hi > mean)


def test_single_seed_has_no_band():
    steps, mean, lo, hi = aggregate([(np.array([1, 2, 3]), np.array([0.5, 0.7, 0.9]))])
    np.testing.assert_allclose(mean, [0.5, 0.7, 0.9])
    np.testing.assert_array_equal(lo, mean)
    np.testing.assert_array_equal(hi, mean)


def test_runs_group_by_config_without_seed(tmp_path):
    for seed in range(3):
        write_run(tmp_path / f"d8-s{seed}", seed, [0.1, 0.2], depth=8)
    for seed in range(2):
        write_run(tmp_path / f"d16-s{seed}", seed, [0.3, 0.4], depth=16)
    runs = [load_run(path) for path in find_runs([tmp_path])]
    groups = group_runs(runs)
    # Depth 8 sorts before 16: numbers compare as numbers, not strings.
    assert list(groups) == ["crl-point-umaze depth=8", "crl-point-umaze depth=16"]
    assert sorted(run.seed for run in groups["crl-point-umaze depth=8"]) == [0, 1, 2]
    assert sorted(run.seed for run in groups["crl-point-umaze depth=16"]) == [0, 1]


def test_single_config_label_is_the_preset(tmp_path):
    write_run(tmp_path / "a", 0, [0.1])
    write_run(tmp_path / "b", 1, [0.2])
    groups = group_runs([load_run(path) for path in find_runs([tmp_path])])
    assert list(groups) == ["crl-point-umaze"]


def test_nested_sweep_directories_are_found(tmp_path):
    sweep = tmp_path / "sweep"
    expected = [
        write_run(sweep / "depth-4" / "seed0", 0, [0.1]),
        write_run(sweep / "depth-4" / "seed1", 1, [0.1]),
        write_run(sweep / "deeper" / "depth-8" / "seed0", 0, [0.2], depth=8),
    ]
    (sweep / "notes").mkdir()
    (sweep / "notes" / "config.json").write_text("{}")  # no metrics.jsonl: not a run
    found = find_runs([sweep, sweep / "depth-4" / "seed0"])  # the same run twice counts once
    assert found == sorted(path.resolve() for path in expected)
    assert find_runs([expected[0]]) == [expected[0].resolve()]


def test_cli_writes_png_and_csv(tmp_path, capsys):
    for seed, values in enumerate([[0.0, 0.2, 0.4], [0.2, 0.4, 0.6], [0.1, 0.3, 0.5]]):
        write_run(tmp_path / "sweep" / f"d8-s{seed}", seed, values, depth=8)
    write_run(tmp_path / "sweep" / "d16-s0", 0, [0.5, 0.9, 0.7], depth=16)
    out = tmp_path / "out" / "curves.png"
    assert main([str(tmp_path / "sweep"), "--out", str(out)]) == 0
    data = out.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG_SIGNATURE)
    printed = capsys.readouterr().out
    assert str(out) in printed and "crl-point-umaze depth=16" in printed

    with open(out.with_suffix(".csv")) as file:
        rows = list(csv.DictReader(file))
    assert [row["group"] for row in rows] == ["crl-point-umaze depth=8", "crl-point-umaze depth=16"]
    deep, deeper = rows
    assert deep["seeds"] == "3" and deeper["seeds"] == "1"
    assert float(deep["final_mean"]) == pytest.approx(0.5)
    half = stats.t.ppf(0.975, df=2) * np.std([0.4, 0.6, 0.5], ddof=1) / math.sqrt(3)
    assert float(deep["final_ci_half_width"]) == pytest.approx(half)
    assert float(deep["best_mean"]) == pytest.approx(0.5)
    assert deep["env_steps"] == "300"
    # One seed: no interval; best is the peak of the curve, not the final value.
    assert deeper["final_ci_half_width"] == ""
    assert float(deeper["final_mean"]) == pytest.approx(0.7)
    assert float(deeper["best_mean"]) == pytest.approx(0.9)


def test_across_a_field_gives_final_values_per_setting_of_the_others(tmp_path, capsys):
    """A scaling sweep: depth 4 and 8, each at 16, 64 and 256 envs, 2 seeds; --across
    train.num_envs makes one line per depth, one point per num_envs in numeric order."""
    finals = {}
    for depth in (4, 8):
        for num_envs in (256, 16, 64):
            for seed in (0, 1):
                final = depth * 0.01 + num_envs / 1000 + seed * 0.1
                finals.setdefault((depth, num_envs), []).append(final)
                write_run(
                    tmp_path / "sweep" / f"d{depth}-n{num_envs}-s{seed}",
                    seed,
                    [0.0, final],
                    depth=depth,
                    num_envs=num_envs,
                )
    runs = [load_run(path) for path in find_runs([tmp_path / "sweep"])]
    series, warnings = across_field(runs, "train.num_envs", "eval/success_rate")
    assert not warnings
    assert [line.label for line in series] == ["crl-point-umaze depth=4", "crl-point-umaze depth=8"]
    for line, depth in zip(series, (4, 8), strict=True):
        assert line.values == [16, 64, 256]
        assert [curve.seeds for curve in line.curves] == [2, 2, 2]
        for curve, num_envs in zip(line.curves, line.values, strict=True):
            assert curve.label == f"crl-point-umaze depth={depth} num_envs={num_envs}"
            assert curve.mean[-1] == pytest.approx(np.mean(finals[depth, num_envs]))
    out = tmp_path / "across.png"
    assert main([str(tmp_path / "sweep"), "--across", "train.num_envs", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(PNG_SIGNATURE)
    assert "crl-point-umaze depth=8 num_envs=256" in capsys.readouterr().out
    missing = tmp_path / "missing.png"
    assert main([str(tmp_path / "sweep"), "--across", "train.nope", "--out", str(missing)]) == 2
    assert "no field 'train.nope'" in capsys.readouterr().err and not missing.exists()


def test_cli_default_metric_falls_back_to_return_and_wall_time_axis(tmp_path, capsys):
    write_run(tmp_path / "r0", 0, [1.0, 2.0], metric="eval/other", preset="ppo-cartpole")
    write_run(tmp_path / "r1", 1, [3.0, 4.0, 5.0], metric="eval/other", preset="ppo-cartpole")
    out = tmp_path / "p.png"
    assert main([str(tmp_path), "--out", str(out), "--x", "wall_time_s"]) == 0
    assert "final eval/episode_return" in capsys.readouterr().out
    (row,) = csv.DictReader(out.with_suffix(".csv").read_text().splitlines())
    # Unequal lengths: compared at the env_steps both seeds reached (100, 200).
    assert row["env_steps"] == "200" and float(row["final_mean"]) == pytest.approx(30.0)
    # On the wall-time axis each common step sits at the seeds' mean wall time.
    groups = group_runs([load_run(path) for path in find_runs([tmp_path])])
    (curve,), _ = group_curves(groups, "eval/episode_return", x="wall_time_s")
    np.testing.assert_allclose(curve.x, [(0.5 + 1.5) / 2, (1.0 + 2.0) / 2])


def test_half_written_last_line_is_ignored(tmp_path):
    run = write_run(tmp_path / "r0", 0, [0.1, 0.2])
    with open(run / "metrics.jsonl", "a") as file:
        file.write('{"env_steps": 300, "eval/succ')  # a run still writing
    steps, values = load_run(run).curve("eval/success_rate")
    np.testing.assert_array_equal(steps, [100, 200])
    np.testing.assert_allclose(values, [0.1, 0.2])


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "does not exist"),
        ("empty", "no run directories"),
        ("metric", "eval/success_rate"),  # the available metric names are listed
        ("suffix", ".png"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, case, message):
    runs = tmp_path / "runs"
    write_run(runs / "r0", 0, [0.1, 0.2])
    (tmp_path / "empty").mkdir()
    work = tmp_path / "work"
    work.mkdir()
    args = {
        "missing": [str(tmp_path / "nope")],
        "empty": [str(tmp_path / "empty")],
        "metric": [str(runs), "--metric", "eval/nope"],
        "suffix": [str(runs), "--out", "plot.pdf"],
    }[case]
    before = sorted(tmp_path.rglob("*"))
    result = run_plot(*args, cwd=work)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert result.stdout == ""
    assert sorted(tmp_path.rglob("*")) == before


def test_cli_subprocess_succeeds_with_default_out(tmp_path):
    write_run(tmp_path / "runs" / "r0", 0, [0.1, 0.2])
    work = tmp_path / "work"
    work.mkdir()
    result = run_plot(str(tmp_path / "runs"), cwd=work)
    assert result.returncode == 0, result.stderr
    assert (work / "plot.png").read_bytes().startswith(PNG_SIGNATURE)
    assert (work / "plot.csv").exists()
