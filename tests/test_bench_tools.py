"""Benchmark tools: hlo_loops (the loop tree and per-trip operation counts of a compiled
program) and the learning-curve benchmark's merging of seeds from two runs."""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import benchmarks
from experiments.benchmarks import anchors, brax_run, curves, device, envsteps, throughput, timing
from experiments.benchmarks.args import add_geometry
from experiments.benchmarks.curves import merge_earlier
from experiments.benchmarks.hlo_loops import FREE, launches_per_update, loop_tree, opcode


def test_opcode_reads_tuple_types_with_index_comments():
    while_line = (
        "%while.5 = (s32[], f32[4]{0}, /*index=2*/f32[]) while(%tuple.3), condition=%c.1, "
        'body=%body.7, backend_config={"known_trip_count":{"n":"5"}}'
    )
    assert opcode(while_line) == "while"
    assert opcode("ROOT %fusion.2 = f32[4]{0} fusion(%p0, %p1), kind=kLoop, calls=%f.1") == (
        "fusion"
    )
    assert opcode("%constant.1 = f32[] constant(1)") == "constant"
    assert "constant" in FREE and "fusion" not in FREE


def nested(extra_outer_work: bool):
    def inner(c, _):
        return jnp.tanh(c) * 2.0 + jnp.roll(c, 1), None

    def outer(c, _):
        c, _ = jax.lax.scan(inner, c, None, length=3)
        if extra_outer_work:
            c = jnp.sort(jnp.cumsum(c))  # at least one more kernel per outer trip
        return c, None

    def f(x):
        return jax.lax.scan(outer, x, None, length=5)[0]

    return jax.jit(f).lower(jnp.arange(8.0)).compile().as_text()


def test_loop_tree_follows_nesting_and_trip_counts():
    rows = loop_tree(nested(extra_outer_work=False))
    assert [r["depth"] for r in rows] == [0, 1, 2]
    assert [r["trips"] for r in rows] == [1, 5, 3]
    assert rows[2]["ops_per_trip"] >= 1


def test_loop_tree_counts_an_outer_loops_own_work_and_not_its_inner_loop():
    plain = loop_tree(nested(extra_outer_work=False))
    more = loop_tree(nested(extra_outer_work=True))
    assert more[1]["ops_per_trip"] > plain[1]["ops_per_trip"]
    assert more[1]["by_kind"].get("sort", 0) == 1 and "sort" not in plain[1]["by_kind"]
    assert more[2]["ops_per_trip"] == plain[2]["ops_per_trip"]


@pytest.mark.parametrize("heavy_when", [True, False])
def test_a_conditional_counts_its_largest_branch(heavy_when):
    """XLA orders a conditional's branches by index; whichever the heavy one is, it is what a
    trip may run, so it is what the loop's count includes."""

    def heavy(c):
        return jnp.sort(jnp.cumsum(jnp.tanh(c)))

    def light(c):
        return c + 1.0

    def body(c, _):
        branches = (heavy, light) if heavy_when else (light, heavy)
        return jax.lax.cond(c.sum() > 0, *branches, c), None

    def f(x):
        return jax.lax.scan(body, x, None, length=4)[0]

    rows = loop_tree(jax.jit(f).lower(jnp.arange(8.0)).compile().as_text())
    assert [r["trips"] for r in rows] == [1, 4]
    assert rows[1]["by_kind"].get("sort") == 1


def row(depth, trips, fusions, done=0):
    kinds = {"fusion": fusions, **({"fusion-done": done} if done else {})}
    return {"depth": depth, "trips": trips, "ops_per_trip": fusions + done, "by_kind": kinds}


def test_launches_per_update_multiplies_each_body_by_its_trips_per_update():
    """By hand: update body 7 (+1 fusion-done, which only waits) + 10 trips x (3 + 4 inner
    trips x 2) + 2 trips x 5 + 1 x 6 (a loop whose trip count XLA does not know) = 133. The
    entry computation (depth 0) and a second update-level loop are not part of it."""
    rows = [
        row(0, 1, 99),
        row(1, 50, 7, done=1),
        row(2, 10, 3),
        row(3, 4, 2),
        row(2, 2, 5),
        row(2, None, 6),
        row(1, 20, 1000),
    ]
    assert launches_per_update(rows) == 7 + 10 * (3 + 4 * 2) + 2 * 5 + 6
    assert launches_per_update(rows, update_depth=2) == 3 + 4 * 2  # one trip of the first


def test_launches_per_update_of_a_compiled_program():
    """On a compiled two-level scan: the outer body once, the inner body three times."""
    outer, inner = loop_tree(nested(extra_outer_work=True))[1:]
    expected = outer["ops_per_trip"] + 3 * inner["ops_per_trip"]
    assert launches_per_update([outer, inner]) == expected > 3


def test_gpu_key_names_the_settings_it_needs(monkeypatch):
    """Without them the CUDA plugin fails deep inside jax; gpu_key says which are missing."""
    from experiments.benchmarks import gpu_target

    monkeypatch.delenv("JAX_SKIP_CUDA_CONSTRAINTS_CHECK", raising=False)
    with pytest.raises(RuntimeError, match="JAX_SKIP_CUDA_CONSTRAINTS_CHECK"):
        gpu_target.gpu_key()


def test_gpu_launches_must_set_up_jax_itself():
    """Its jax settings only act before jax starts: imported after it, it stops with the
    names rather than fail later in the CUDA plugin."""
    with pytest.raises(SystemExit, match="JAX_SKIP_CUDA_CONSTRAINTS_CHECK"):
        importlib.import_module("experiments.benchmarks.gpu_launches")


def curves_args(tmp_path, **changes):
    fields = {"env": "inverted_pendulum", "num_envs": 64, "seeds": 2, "first_seed": 3}
    fields.update(json=str(tmp_path / "now.json"), merge=str(tmp_path / "earlier.json"))
    return argparse.Namespace(**{**fields, **changes})


def write_earlier(tmp_path, seeds=3, num_envs=64):
    config = {"env": "inverted_pendulum", "num_envs": num_envs, "seeds": seeds, "json": "x"}
    side = {"steps": [0, 10], "returns": [[float(s), 10.0 + s] for s in range(seeds)]}
    (tmp_path / "earlier.json").write_text(
        json.dumps({"config": config, "sides": {"brax": side, "purerl": side}})
    )


def test_areas_are_compared_with_welch_and_mann_whitney():
    """Welch's t from its formula (means, sample variances, Welch-Satterthwaite degrees of
    freedom); the Mann-Whitney p of fully separated samples of 3 is 2 / C(6, 3)."""
    from scipy import stats

    ours, brax = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0, 10.0]
    va, vb = np.var(ours, ddof=1) / 4, np.var(brax, ddof=1) / 5  # 5/12 and 2
    t = (2.5 - 6.0) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 4)
    got = curves.compare_areas({"auc": ours}, {"auc": brax})
    np.testing.assert_allclose(got["welch_t"], -3.5 / np.sqrt(29 / 12), rtol=1e-12)
    np.testing.assert_allclose(got["welch_t"], t, rtol=1e-12)
    np.testing.assert_allclose(got["welch_p"], 2 * stats.t.sf(abs(t), df), rtol=1e-10)
    separated = curves.compare_areas({"auc": [1.0, 2.0, 3.0]}, {"auc": [4.0, 5.0, 6.0]})
    assert separated["mann_whitney_p"] == pytest.approx(2 / 20)


def test_area_equivalence_is_two_one_sided_welch_tests():
    """Each one-sided p is scipy's one-sided Welch test of our areas shifted by the margin
    (a fifth of the anchor's mean, 1.2 here); equivalence holds exactly when the 90% interval
    of the difference, from Welch's standard error and degrees of freedom, lies inside it."""
    from scipy import stats

    ours, brax = np.array([5.0, 6.0, 7.0, 4.5, 6.5]), np.array([6.0, 7.0, 5.0, 6.0])
    got = curves.equivalence(ours, brax, margin=0.2)
    lower = stats.ttest_ind(ours + 1.2, brax, equal_var=False, alternative="greater").pvalue
    upper = stats.ttest_ind(ours - 1.2, brax, equal_var=False, alternative="less").pvalue
    assert got["noninferiority_p"] == pytest.approx(lower, rel=1e-10)
    assert got["tost_p"] == pytest.approx(max(lower, upper), rel=1e-10)
    va, vb = np.var(ours, ddof=1) / 5, np.var(brax, ddof=1) / 4  # 0.1625 and 1/6
    df = (va + vb) ** 2 / (va**2 / 4 + vb**2 / 3)
    half = stats.t.ppf(0.95, df) * np.sqrt(va + vb)
    np.testing.assert_allclose(got["difference"], (5.8 - 6.0) / 6.0, rtol=1e-12)
    np.testing.assert_allclose(got["difference_90"], [(-0.2 - half) / 6, (-0.2 + half) / 6])
    assert got["equivalent"] == (-1.2 < -0.2 - half and -0.2 + half < 1.2) == (got["tost_p"] < 0.05)
    # Far apart either way: never equivalent; non-inferior only when ours is the better.
    worse = curves.equivalence(ours - 3.0, brax, margin=0.2)
    better = curves.equivalence(ours + 3.0, brax, margin=0.2)
    assert not worse["equivalent"] and not worse["noninferior"]
    assert not better["equivalent"] and better["noninferior"]
    # Equal samples of 30 with a small spread are equivalent within 20%.
    same = np.linspace(90.0, 110.0, 30)
    assert curves.equivalence(same, same[::-1], margin=0.2)["equivalent"]


def test_self_agreement_counts_the_splits_that_meet_the_targets():
    """Two seeds at 1000 and two at 100 split into halves of two in six ways (equally
    likely): high-high against low-low and the four mixed splits meet both targets, low-low
    against high-high (mean 100 below a lower bound of 1000) meets neither: 5/6. Seeds whose
    areas are all within 4% of each other are always equivalent within 20%."""
    side = {"steps": [0, 10, 20], "returns": [[1000.0] * 3] * 2 + [[100.0] * 3] * 2}
    got = curves.self_agreement(side, draws=3000)
    assert got["seeds_per_half"] == 2 and got["draws"] == 3000
    for target in ("points", "area", "both"):
        assert got[target] == pytest.approx(5 / 6, abs=0.02), (target, got)
    # No split is within 20%: the mixed ones' 90% intervals span +-340%, the others differ
    # by 90% or 900%. Only high-high against low-low, 1 in 6, is no worse.
    assert got["equivalent"] == 0.0 and got["margin"] == 0.2
    assert got["noninferior"] == pytest.approx(1 / 6, abs=0.02)
    close = {"steps": [0, 10], "returns": [[100.0 + seed] * 2 for seed in range(8)]}
    assert curves.self_agreement(close, draws=200)["equivalent"] == 1.0
    with pytest.raises(ValueError, match="at least 4 seeds"):
        curves.self_agreement({"steps": [0, 10], "returns": [[1.0, 2.0]] * 3})


def test_merge_puts_the_earlier_seeds_first(tmp_path):
    write_earlier(tmp_path)
    args = curves_args(tmp_path)
    now = {"steps": [0, 10], "returns": [[3.0, 13.0], [4.0, 14.0]]}
    merged = merge_earlier(args.merge, args, {"brax": now, "purerl": now})
    assert merged["purerl"]["returns"] == [[float(s), 10.0 + s] for s in range(5)]
    assert args.seed_list == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "changes, message",
    [({"num_envs": 128}, "settings differ"), ({"first_seed": 2}, "overlap")],
)
def test_merge_refuses_other_settings_and_repeated_seeds(tmp_path, changes, message):
    write_earlier(tmp_path)
    args = curves_args(tmp_path, **changes)
    with pytest.raises(SystemExit, match=message):
        merge_earlier(args.merge, args, {})


def test_reuse_trains_only_the_new_variant_and_reports_the_earlier_sides(tmp_path, monkeypatch):
    """--reuse takes the earlier run's sides as they were and trains only the new --variant;
    it refuses other settings, other seeds and a variant name the earlier run already has."""
    trained = []

    def fake_run(args, overrides=None):
        trained.append(overrides if overrides is not None else "brax")
        offset = 100.0 * len(trained)
        return {
            "steps": [0, 640],
            "returns": [[offset + s, offset + 2 * s] for s in args.seed_list],
        }

    monkeypatch.setattr(curves, "run_brax", fake_run)
    monkeypatch.setattr(curves, "run_purerl", fake_run)
    base = ["--env", "hopper", "--num-envs", "64", "--unroll-length", "10"]
    base += ["--total-env-steps", "640", "--num-evals", "1", "--seeds", "2"]
    earlier = curves.main([*base, "--json", str(tmp_path / "earlier.json")])
    assert len(trained) == 2
    variant = "first_state:reset_to_first_state=true"
    reuse = ["--reuse", str(tmp_path / "earlier.json"), "--variant", variant]
    now = curves.main([*base, *reuse, "--json", str(tmp_path / "now.json")])
    assert trained[2:] == [
        {
            "policy_hidden_sizes": (32,) * 4,
            "value_hidden_sizes": (256,) * 5,
            "reset_to_first_state": True,
        }
    ]
    for name in ("brax", "purerl"):
        assert now["sides"][name]["returns"] == earlier["sides"][name]["returns"]
    assert now["sides"]["purerl-first_state"]["returns"] == [[300.0, 300.0], [301.0, 302.0]]
    assert set(now["targets"]) == {"purerl", "purerl-first_state"}
    refusals = [
        (["--num-envs", "32"], "settings differ"),
        (["--seeds", "3"], "seeds"),
        (["--json", str(tmp_path / "again.json")], None),  # reusing now.json: variant exists
    ]
    for change, message in refusals:
        source = str(tmp_path / ("now.json" if message is None else "earlier.json"))
        argv = [*base, *change, "--reuse", source, "--variant", variant]
        with pytest.raises(SystemExit) as refused:
            curves.main(argv)
        if message is not None:
            assert message in str(refused.value)
        else:
            assert refused.value.code == 2  # argparse's usage error
    assert len(trained) == 3  # nothing trained on a refusal
    assert not (tmp_path / "again.json").exists()


def test_skip_purerl_extends_a_variant_without_training_the_plain_side(tmp_path, monkeypatch):
    """--merge --skip-purerl adds seeds to Brax's side and a variant's only: the plain purerl
    side is neither trained nor carried over from the earlier run."""
    trained = []

    def fake_run(args, overrides=None):
        trained.append(overrides if overrides is not None else "brax")
        offset = 100.0 * len(trained)
        return {"steps": [0, 640], "returns": [[offset + s] * 2 for s in curves.seeds(args)]}

    monkeypatch.setattr(curves, "run_brax", fake_run)
    monkeypatch.setattr(curves, "run_purerl", fake_run)
    base = ["--env", "hopper", "--num-envs", "64", "--unroll-length", "10"]
    base += ["--total-env-steps", "640", "--num-evals", "1", "--variant", "v:discount=0.9"]
    earlier = curves.main([*base, "--seeds", "2", "--json", str(tmp_path / "earlier.json")])
    assert set(earlier["sides"]) == {"brax", "purerl", "purerl-v"} and len(trained) == 3
    more = ["--seeds", "1", "--first-seed", "2", "--skip-purerl"]
    now = curves.main([*base, *more, "--merge", str(tmp_path / "earlier.json")])
    sizes = {"policy_hidden_sizes": (32,) * 4, "value_hidden_sizes": (256,) * 5}
    assert trained[3:] == ["brax", {**sizes, "discount": 0.9}]
    assert set(now["sides"]) == {"brax", "purerl-v"} and set(now["targets"]) == {"purerl-v"}
    assert now["config"]["seed_list"] == [0, 1, 2]
    assert now["sides"]["purerl-v"]["returns"] == [[300.0] * 2, [301.0] * 2, [502.0] * 2]
    with pytest.raises(SystemExit) as refused:  # nothing left to run
        curves.main([*base[:-2], "--skip-brax", "--skip-purerl"])
    assert refused.value.code == 2 and len(trained) == 5


BENCHMARKS = Path(benchmarks.__file__).parent
# What the PureJaxRL anchor imports from the checkout on its PYTHONPATH, after this folder.
PUREJAXRL_MODULES = {"ppo_continuous_action", "wrappers"}


def test_no_benchmark_module_shadows_what_an_anchor_imports():
    """An anchor runs as a script, so this folder comes first on its sys.path: a module here
    named like a standard-library, installed or PureJaxRL module would replace that one."""
    names = {path.stem for path in BENCHMARKS.glob("*.py")} - {"__init__"}
    assert {"args", "brax_anchor", "purejaxrl_anchor"} <= names
    clashes = {
        name
        for name in names
        if name in sys.stdlib_module_names
        or name in PUREJAXRL_MODULES
        or importlib.util.find_spec(name) is not None  # this folder is not on sys.path here
    }
    assert not clashes


@pytest.mark.parametrize("quick", [True, False])
@pytest.mark.parametrize("purejaxrl_dir", [None, "pjrl"])
def test_device_parts_run_modules_that_exist(tmp_path, quick, purejaxrl_dir):
    """bench-device runs the others as `python -m MODULE`: each module must still be there."""
    args = argparse.Namespace(quick=quick, purejaxrl_dir=purejaxrl_dir)
    parts = device.parts(args, tmp_path)
    assert [name for name, _, _ in parts] == list(device.DEFAULT_LIMITS_S)
    for _, command, _ in parts:
        assert command[:2] == [sys.executable, "-m"]
        assert importlib.util.find_spec(command[2]) is not None, command[2]
    commands = {name: command for name, command, _ in parts}
    speed = commands["speed-purejaxrl"]
    setting = speed[: speed.index("--rounds") + 2]  # module, geometry, updates, rounds
    assert "--num-envs" in setting and "--num-minibatches" in setting
    for name, command in commands.items():
        if name.startswith("speed-purejaxrl"):  # every speed part times the same setting
            assert command[: len(setting)] == setting, name
            assert command[command.index("--json") + 1].endswith(f"{name}.json"), name
    first, per_unroll = commands["speed-purejaxrl-first"], commands["speed-purejaxrl-per-unroll"]
    assert "--reset-to-first-state" in first and "--skip-anchor" in first
    assert per_unroll[per_unroll.index("--fresh-starts") + 1] == "per_unroll"
    assert "--skip-anchor" in per_unroll
    scan = commands["speed-purejaxrl-scan"]
    assert scan[scan.index("--substeps") + 1] == "scan" and "--skip-anchor" in scan
    anchored = "--purejaxrl-dir" if purejaxrl_dir else "--skip-anchor"
    assert anchored in speed and anchored in commands["speed-purejaxrl-graphs"]


def test_device_command_buffer_parts_add_their_xla_flags_to_the_runs_own(tmp_path, monkeypatch):
    """The command-buffer parts run under XLA_FLAGS = the caller's flags plus their own, say so
    in device.json, and leave every other part's environment as it was."""
    seen = {}

    def fake_part(name, command, limit_s, results, out, env):
        seen[name] = env.get("XLA_FLAGS")
        return {"command": command[1:], "limit_s": limit_s, "exit": 0, "wall_s": 0.0}

    monkeypatch.setattr(device, "run_part", fake_part)
    monkeypatch.setattr(device, "machine", lambda: {})
    monkeypatch.setenv("XLA_FLAGS", "--xla_mine=1")
    only = ["speed-purejaxrl", "speed-purejaxrl-graphs", "speed-purejaxrl-graphs-triton"]
    report = device.main(["--out", str(tmp_path), "--quick", "--only", *only])
    assert seen["speed-purejaxrl"] == "--xla_mine=1"
    for name in only[1:]:
        assert seen[name].startswith("--xla_mine=1 --xla_gpu_enable_command_buffer=")
        assert "WHILE" in seen[name] and "CONDITIONAL" in seen[name]
        assert report["parts"][name]["xla_flags"] == seen[name]
    assert "cublas_fallback=false" in seen[only[2]] and "cublas_fallback" not in seen[only[1]]
    # The graphs part alone dumps its thunk sequences, into its own folder.
    dump = tmp_path / "work" / "thunks-speed-purejaxrl-graphs"
    assert seen[only[1]].endswith(device.thunk_dump_flags(dump))
    assert "xla_dump_to" not in seen[only[0]] + seen[only[2]]
    assert "xla_flags" not in report["parts"]["speed-purejaxrl"]
    assert not set(device.PART_XLA_FLAGS) & set(device.DEFAULT_PARTS)


def test_keep_thunk_sequences_removes_the_rest_of_an_xla_dump(tmp_path):
    names = [
        "17.module_0001.jit_train.thunk_sequence.txt",
        "17.module_0001.jit_train.thunk_sequence_after_thunk_passes.txt",
        "17.module_0001.jit_train.sm_9.0a_gpu_after_optimizations.txt",
        "17.module_0001.jit_train.before_optimizations.txt",
    ]
    for name in names:
        (tmp_path / name).write_text("x")
    assert device.keep_thunk_sequences(tmp_path) == names[:2]
    assert sorted(p.name for p in tmp_path.iterdir()) == names[:2]
    assert device.keep_thunk_sequences(tmp_path / "absent") == []


def test_device_default_parts_fit_in_eight_minutes(tmp_path):
    """The issue's list (ant at 4,096 and 16,384 envs for purerl and Brax, cart-pole at 2^16 ..
    2^20, the CRL step at depth 4 .. 1024 with remat) runs by default, under 8 minutes."""
    assert sum(device.DEFAULT_LIMITS_S[name] for name in device.DEFAULT_PARTS) < 8 * 60
    commands = {name: command for name, command, _ in device.parts(
        argparse.Namespace(quick=False, purejaxrl_dir=None), tmp_path
    )}  # fmt: skip
    envs = {name: commands[name][commands[name].index("--num-envs") + 1] for name in commands
            if name.startswith("speed-brax")}  # fmt: skip
    assert envs == {"speed-brax": "4096", "speed-brax-16k": "16384"}
    scaling = commands["scaling"]
    at = scaling.index("--log2-envs")
    assert scaling[at + 1 : at + 3] == ["16", "20"]
    depth = commands["depth"]
    assert depth[depth.index("--depths") + 1 :][:4] == ["4", "64", "256", "1024"]
    assert "remat" in depth[depth.index("--variants") :][:2]


def test_device_markdown_reads_each_parts_results():
    report = {"machine": {"jax": "x"}, "quick": True, "parts": {
        "speed-brax": {"exit": 0, "wall_s": 1.0, "limit_s": 2, "results": {"summary": {
            "ours_steps_per_s": 1000.0, "brax_train_only_steps_per_s": 500.0,
            "ratio_ours_over_brax": 2.0}}},
        "speed-brax-16k": {"exit": "timeout", "wall_s": 2.0, "limit_s": 2, "results": {
            "partial": "x", "ours": {"env_steps_per_second": 700.0}}},
        "scaling": {"exit": 0, "wall_s": 1.0, "limit_s": 2, "results": {"rows": [
            {"num_envs": 2**16, "env_steps_per_s": 3e6, "device_peak_mib": 100.0},
            {"num_envs": 2**17, "exit": 1}]}},
        "depth": {"exit": 0, "wall_s": 1.0, "limit_s": 2, "results": {"results": [
            {"depth": 4, "steps_per_s": 9.0, "device_peak_bytes": 2**30}]}},
        "speed-purejaxrl": {"exit": 0, "wall_s": 1.0, "limit_s": 2, "results": {
            "ours_env_steps_per_second": 900.0, "purejaxrl_env_steps_per_second": 1000.0,
            "ratio": 0.9}},
        "speed-purejaxrl-first": {"exit": 0, "wall_s": 1.0, "limit_s": 2, "results": {
            "ours_env_steps_per_second": 990.0}},
        "speed-purejaxrl-per-unroll": {"exit": 0, "wall_s": 1.0, "limit_s": 2, "results": {
            "ours_env_steps_per_second": 950.0, "fresh_starts_per_step": False,
            "config": {"reset_to_first_state": False}}},
        "speed-purejaxrl-graphs": {"exit": 0, "wall_s": 1.0, "limit_s": 2, "results": {
            "ours_env_steps_per_second": 980.0, "fresh_starts_per_step": False,
            "config": {"reset_to_first_state": True}}},
    }}  # fmt: skip
    text = device.markdown(report)
    assert "purerl 900 steps/s, PureJaxRL 1,000 (0.900x)" in text
    assert "| purerl 990 steps/s |" in text
    assert "| purerl 950 steps/s (fresh starts per unroll) |" in text
    assert "| purerl 980 steps/s (first-state resets) |" in text
    assert "purerl 1,000 steps/s, Brax train-only 500 (2.00x)" in text
    assert "purerl 700 steps/s; Brax's anchor did not finish" in text
    assert "2^16: 3,000,000 steps/s, 100 MiB; 2^17: failed" in text
    assert "depth 4: 9.0 steps/s, 1,024 MiB peak" in text


def test_anchor_flags_follow_the_keywords_in_order():
    flags = anchors.as_flags(num_evals=5, policy_hidden_sizes=[32, 32], deterministic_eval=True)
    assert flags == ["--num-evals", "5", "--policy-hidden-sizes", "32,32", "--deterministic-eval"]
    assert anchors.as_flags(skip=False, sizes="8,8") == ["--sizes", "8,8"]
    assert anchors.result('noise\n{"a": 1}\n') == {"a": 1}


def test_throughput_parses_the_command_device_gives_it(tmp_path):
    for quick in (True, False):
        parts = device.parts(argparse.Namespace(quick=quick, purejaxrl_dir=None), tmp_path)
        [command] = [c for name, c, _ in parts if name == "speed-brax"]
        args = throughput.parse_args(command[3:])
        assert args.max_retries == 0 and args.brax_python == sys.executable


def test_brax_anchor_parses_the_commands_built_for_it():
    """The throughput and learning-curve benchmarks build Brax's anchor command line; the
    anchor's parser is checked in a subprocess, since importing it redirects stdout."""
    ppo_args = throughput.parse_args(["--brax-python", "PY", "--iterations", "5"])
    ppo_command, per_epoch = brax_run.brax_command(ppo_args, "PY")
    assert per_epoch == 3 and "--normalize-observations" in ppo_command
    geometry = argparse.ArgumentParser()
    add_geometry(geometry)
    curves_args = argparse.Namespace(
        **vars(geometry.parse_args([])),
        total_env_steps=1000,
        episode_length=1000,
        policy_hidden_sizes=[32, 32],
        value_hidden_sizes=[64],
        learning_rate=3e-4,
        discount=0.97,
        entropy_cost=1e-2,
        reward_scaling=10.0,
        clipping_epsilon=0.3,
        gae_lambda=0.95,
        num_evals=3,
        num_eval_envs=16,
    )
    curves_command = curves.brax_command(curves_args, "PY", seed=7)
    check = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import brax_anchor\n"
        "for argv in json.loads(sys.argv[2]): brax_anchor.parse_args(argv)\n"
    )
    argvs = [ppo_command[2:], curves_command[2:]]
    assert ppo_command[1] == curves_command[1] == str(BENCHMARKS / "brax_anchor.py")
    done = subprocess.run(
        [sys.executable, "-c", check, str(BENCHMARKS), json.dumps(argvs)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_training_statistics_of_both_trainers_in_one_vocabulary():
    """One of Brax's progress calls (its metric names, brax 0.14.2) through brax_anchor's
    training_metrics and curves.brax_training, and purerl's train/ metrics through
    purerl_training, by hand: Brax's entropy is its bonus / -entropy_cost and its v_loss
    already carries the coefficient that purerl's loss/value does not."""
    brax_call = {
        "eval/episode_reward": 120.0,
        "training/sps": 9000.0,
        "training/walltime": 12.5,
        "training/total_loss": 2.088,
        "training/policy_loss": 0.1,
        "training/v_loss": 2.0,
        "training/entropy_loss": -0.012,
        "training/kl_mean": 0.003,
    }
    check = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import brax_anchor\n"
        "out = json.dumps(brax_anchor.training_metrics(json.loads(sys.argv[2])))\n"
        "sys.stderr.write('RESULT' + out)\n"  # the anchor sends stdout to stderr
    )
    done = subprocess.run(
        [sys.executable, "-c", check, str(BENCHMARKS), json.dumps(brax_call)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    training = json.loads(done.stderr.rsplit("RESULT", 1)[1])
    assert set(training) == {"total_loss", "policy_loss", "v_loss", "entropy_loss", "kl_mean"}
    got = curves.brax_training(training, entropy_cost=0.01)
    assert got == pytest.approx(
        {"entropy": 1.2, "policy_loss": 0.1, "value_loss": 2.0, "total_loss": 2.088}
    )
    ours = {
        "train/policy/entropy": np.array([1.2, 1.1]),
        "train/loss/policy": np.array([0.1, 0.05]),
        "train/loss/value": np.array([4.0, 3.0]),
        "train/loss/total": np.array([2.088, 1.539]),
        "train/policy/approx_kl": np.array([0.01, 0.02]),
    }
    expected = {
        "entropy": [1.2, 1.1],
        "policy_loss": [0.1, 0.05],
        "value_loss": [2.0, 1.5],
        "total_loss": [2.088, 1.539],
    }
    got = curves.purerl_training(ours, value_loss_coef=0.5)
    assert set(got) == set(expected)
    for name, values in expected.items():
        assert got[name] == pytest.approx(values), name


def test_training_statistics_are_compared_per_evaluation_and_merged(tmp_path):
    """Means over seeds at each evaluation and the Mann-Whitney p of the per-seed values
    (fully separated samples of 3: 2 / C(6, 3)); a merge appends the new seeds' statistics
    after the earlier ones', and drops them when the earlier run has none."""
    statistic = [[1.0, 5.0], [2.0, 6.0], [3.0, 7.0]]  # 3 seeds x 2 evaluations
    ours = {"training": {n: statistic for n in curves.TRAINING_STATISTICS}}
    theirs = {"training": {n: (np.array(statistic) + 10).tolist() for n in ours["training"]}}
    compared = curves.compare_training(ours, theirs)
    assert set(compared) == set(curves.TRAINING_STATISTICS)
    for c in compared.values():
        assert c["mean"] == pytest.approx([2.0, 6.0])
        assert c["anchor_mean"] == pytest.approx([12.0, 16.0])
        assert c["mann_whitney_p"] == pytest.approx([2 / 20, 2 / 20])
    assert curves.compare_training({"steps": [0]}, theirs) == {}
    sides = {
        name: curves.summarise({"steps": [0, 10, 20], "returns": [[1.0, 2.0, 3.0]] * 3, **side})
        for name, side in (("brax", theirs), ("purerl", ours))
    }
    report = curves.markdown({"sides": sides, "targets": {}, "training": {"purerl": compared}})
    assert "Training statistics, Brax's / purerl" in report
    assert "| 20 | 16 / 6 (0.10) | 16 / 6 (0.10) | 16 / 6 (0.10) | 16 / 6 (0.10) |" in report

    write_earlier(tmp_path)
    args = curves_args(tmp_path)
    now = {
        "steps": [0, 10],
        "returns": [[3.0, 13.0], [4.0, 14.0]],
        "training": {n: [[0.3], [0.4]] for n in curves.TRAINING_STATISTICS},
    }
    merged = merge_earlier(args.merge, args, {"purerl": now})
    assert "training" not in merged["purerl"]  # the earlier run recorded none
    earlier = json.loads((tmp_path / "earlier.json").read_text())
    for side in earlier["sides"].values():
        side["training"] = {n: [[0.0], [0.1], [0.2]] for n in curves.TRAINING_STATISTICS}
    (tmp_path / "earlier.json").write_text(json.dumps(earlier))
    merged = merge_earlier(args.merge, args, {"purerl": now})
    for name in curves.TRAINING_STATISTICS:
        assert merged["purerl"]["training"][name] == [[0.0], [0.1], [0.2], [0.3], [0.4]]


class ScriptedCanary(timing.Timer):
    """A timer whose canary reads the given GFLOP/s in turn, so a slow machine can be staged."""

    def __init__(self, readings: list[float], max_retries: int = 3):
        super().__init__(repeats=1, max_retries=max_retries)
        self.readings = iter(readings)

    def canary(self, *args, **kwargs) -> float:
        reading = next(self.readings)
        self.best_canary = max(self.best_canary, reading)
        return reading


@pytest.fixture
def quiet_machine(monkeypatch):
    """Other people's processes on this machine must not decide these tests."""
    monkeypatch.setattr(timing, "wait_for_quiet", lambda: 0.0)
    monkeypatch.setattr(timing, "polluted", lambda mon, wall_s: False)
    monkeypatch.setattr(timing, "RETRY_PAUSE_S", 0.0)


def test_a_call_on_a_slow_machine_is_repeated(quiet_machine):
    calls = []
    # before/after per attempt: 100/50 is slow (50 < 0.85 x 100), 100/100 is not.
    run = ScriptedCanary([100, 50, 100, 100]).measure("x", lambda: calls.append(1) or len(calls))
    assert (run.result, run.repeated, run.canaries) == (2, 1, (100, 100))


def test_a_final_result_or_the_last_retry_is_kept(quiet_machine):
    run = ScriptedCanary([100, 50]).measure("x", lambda: "failed", final=lambda r: True)
    assert (run.result, run.repeated) == ("failed", 0)
    run = ScriptedCanary([100, 50, 100, 50], max_retries=1).measure("x", lambda: "slow")
    assert (run.result, run.repeated) == ("slow", 1)


def test_envsteps_times_each_environment_and_reports_failures(tmp_path, capsys):
    out = tmp_path / "envsteps.json"
    argv = ["--envs", "cartpole", "point_umaze", "--num-envs", "4", "--steps", "5"]
    argv += ["--repeats", "1", "--max-retries", "0", "--json", str(out)]
    rows = envsteps.main(argv)
    # A discrete and a continuous environment, each compiled once.
    assert [(r["env"], r["num_envs"], r["backend"]) for r in rows] == [
        ("cartpole", 4, "jax"),
        ("point_umaze", 4, "jax"),
    ]
    assert all(r["env_steps_per_s"] > 0 and r["compile_and_first_call_s"] > 0 for r in rows)
    assert json.loads(out.read_text()) == rows
    table = capsys.readouterr().out
    assert "| cartpole | jax | 4 | 1 |" in table and "| point_umaze | jax | 4 | 2 |" in table
    # A backend an environment lacks fails that environment only, with the reason.
    rows = envsteps.main(argv[:-2] + ["--backend", "mjx"])
    assert all("error" in r and "pure JAX" in r["error"] and r["backend"] == "mjx" for r in rows)
    with pytest.raises(SystemExit) as exit_info:
        envsteps.main(["--envs", "no_such_env"])
    assert exit_info.value.code == 2


def test_paired_times_alternate_which_side_runs_first():
    from experiments.benchmarks.speed import paired_times

    order = []
    ours, theirs = paired_times(
        lambda: order.append("purerl") or 2.0, lambda: order.append("anchor") or 3.0, 3
    )
    assert order == ["purerl", "anchor", "anchor", "purerl", "purerl", "anchor"]
    assert ours == [2.0] * 3 and theirs == [3.0] * 3


def test_paired_summary_by_hand():
    """Ratios 2/1, 1/1 and 1/2 (PureJaxRL's seconds over purerl's): median 1, geometric mean
    1; the logarithms ln2, 0, -ln2 have standard deviation ln2, so the interval is
    exp(+-t(0.975, 2) ln2 / sqrt(3)) with t(0.975, 2) = 4.302653."""
    from experiments.benchmarks.speed import paired_summary

    summary = paired_summary([1.0, 1.0, 2.0], [2.0, 1.0, 1.0])
    assert summary["ratios"] == [2.0, 1.0, 0.5] and summary["median"] == 1.0
    assert summary["geometric_mean"] == pytest.approx(1.0)
    half = 4.302653 * np.log(2.0) / np.sqrt(3.0)
    assert summary["interval_95"] == pytest.approx([np.exp(-half), np.exp(half)], rel=1e-6)
    assert summary["purerl_faster"] == 1 and summary["pairs"] == 3


def test_a_server_times_one_call_per_request_on_the_core_given():
    """serving.serve behind serving.Server, in a process that prints junk to its stdout first
    (as mujoco does on import) and sleeps per call: one untimed call before the ready line,
    then one time per request, on the one core asked for; a server that dies says so with its
    stderr."""
    from experiments.benchmarks.serving import Server

    serve = (
        "import os, sys, time; sys.path.insert(0, sys.argv[1]); import serving\n"
        "print('junk', flush=True); out = serving.claim_stdout(); print('more junk')\n"
        "ready = {'cores': sorted(os.sched_getaffinity(0)), 'calls': 0}\n"
        "def call(): time.sleep(0.05); ready['calls'] += 1\n"
        "serving.serve(call, ready, sys.stdin, out)\n"
    )
    core = max(os.sched_getaffinity(0))
    with Server("fake", [sys.executable, "-c", serve, str(BENCHMARKS)], core=core) as server:
        assert server.ready == {"cores": [core], "calls": 1}
        server.ask()
        times = [server.answer(), server()]
    assert all(0.05 <= t < 5.0 for t in times)
    assert server.process.returncode == 0
    with pytest.raises(SystemExit, match="fake failed:\n.*no such server"):
        Server("fake", [sys.executable, "-c", "import sys; sys.exit('no such server')"])


def test_speed_trains_several_seeds_in_one_program():
    """speed --seeds 2: one compiled program trains both seeds (from keys split off the one
    key; their runs differ), and a call's env steps count both."""
    from experiments.benchmarks import speed
    from purerl import Trainer

    flags = "--num-envs 8 --unroll-length 4 --num-minibatches 2 --num-epochs 1 --num-updates 2"
    args = speed.parser().parse_args([*flags.split(), "--seeds", "2"])
    assert speed.steps_per_call(args) == 2 * 8 * 4 * 2
    # settings: speed's defaults at another benchmark's geometry, with its own values on top.
    other = speed.settings(args, fresh_starts="per_step")
    assert (other.num_envs, other.num_updates, other.seeds) == (8, 2, 1)
    assert other.fresh_starts == "per_step" and not other.mask_time_limits
    key = jax.random.PRNGKey(0)
    keys = speed.run_keys(key, args.seeds)
    np.testing.assert_array_equal(keys, jax.random.split(key, 2))
    trainer = Trainer(speed.purejaxrl_config(args))
    train = speed.compiled_train(trainer, args.num_updates, key, args.seeds)
    state, metrics = train(keys)
    np.testing.assert_array_equal(state.iteration, [2, 2])
    losses = np.asarray(metrics["train/loss/total"])
    assert losses.shape == (2,) and losses[0] != losses[1]


def test_purejaxrl_episode_returns_by_hand():
    """purejaxrl_anchor.episode_returns on a fake PureJaxRL run of 2 updates x 2 steps x 2
    envs in 2 chunks: episodes ended with returns 10 and 20 in the first update (mean 15 of
    2), 30 in the second (of 1); the returns recorded at steps that ended none are ignored."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import purejaxrl_anchor as anchor\n"
        "import jax.numpy as jnp\n"
        "ended = jnp.array([[[0, 1], [1, 0]], [[0, 0], [0, 1]]], bool)\n"
        "returns = jnp.array([[[5.0, 10.0], [20.0, 10.0]], [[20.0, 10.0], [20.0, 30.0]]])\n"
        "info = {'returned_episode': ended, 'returned_episode_returns': returns}\n"
        "mean, count = anchor.episode_returns(lambda key: {'metrics': info}, 2, None)\n"
        "print(json.dumps([mean.tolist(), count.tolist()]), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(BENCHMARKS)], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stderr.strip().splitlines()[-1]) == [[15.0, 30.0], [2.0, 1.0]]


def test_purejaxrl_curves_report_purerl_sides_against_purejaxrl(tmp_path, monkeypatch):
    """purejaxrl_curves: one PureJaxRL side, purerl's and each --variant's, summarised over
    seeds at the chunks' ends and judged against PureJaxRL's; bad settings are refused before
    anything trains."""
    from experiments.benchmarks import purejaxrl_curves

    trained = []

    def fake(offset):
        def run(args, overrides=None):
            trained.append(overrides)
            rows = [[offset + 10.0 * s + k for k in range(args.chunks)] for s in range(args.seeds)]
            ones = [[1.0] * args.chunks] * args.seeds
            return {"steps": purejaxrl_curves.steps(args), "returns": rows, "episodes": ones}

        return run

    monkeypatch.setattr(purejaxrl_curves, "run_purejaxrl", fake(0.0))
    monkeypatch.setattr(purejaxrl_curves, "run_purerl", fake(5.0))
    base = ["--purejaxrl-dir", "pjrl", "--num-envs", "4", "--unroll-length", "5"]
    base += ["--num-updates", "6", "--chunks", "3", "--seeds", "2"]
    result = purejaxrl_curves.main(
        [*base, "--variant", "masked:bootstrap_on_timeout=false", "--json", f"{tmp_path}/c.json"]
    )
    assert trained == [None, {}, {"bootstrap_on_timeout": False}]
    assert result["sides"]["purejaxrl"]["steps"] == [40, 80, 120]
    np.testing.assert_allclose(result["sides"]["purejaxrl"]["mean"], [5.0, 6.0, 7.0])
    assert set(result["targets"]) == {"purerl", "purerl-masked"}
    assert result["targets"]["purerl"]["area"] and result["targets"]["purerl"]["points"]
    assert json.loads((tmp_path / "c.json").read_text())["targets"] == result["targets"]
    for change in (["--chunks", "4"], ["--seeds", "1"], ["--unrolls-per-iteration", "2"]):
        with pytest.raises(SystemExit) as refused:
            purejaxrl_curves.main([*base, *change])
        assert refused.value.code == 2
    assert len(trained) == 3
    # --reuse: the earlier sides as they were, and only the new variant trained.
    reuse = ["--reuse", f"{tmp_path}/c.json", "--purejaxrl-dir", "elsewhere"]
    again = purejaxrl_curves.main([*base, *reuse, "--variant", "noclip:observation_clip=null"])
    assert trained[3:] == [{"observation_clip": None}]
    for name in ("purejaxrl", "purerl", "purerl-masked"):
        assert again["sides"][name]["returns"] == result["sides"][name]["returns"]
    assert set(again["targets"]) == {"purerl", "purerl-masked", "purerl-noclip"}
    refusals = [(["--seeds", "3"], "settings differ"), (["--variant", "masked:"], None)]
    for change, message in refusals:
        with pytest.raises(SystemExit) as refused:
            purejaxrl_curves.main([*base, *reuse, *change])
        assert message in str(refused.value) if message else refused.value.code == 2
    assert len(trained) == 4


def test_time_anchor_runs_from_speeds_settings(monkeypatch):
    """What gpu_launches does: speed.settings at its own geometry, then speed.time_anchor,
    which must find every field it reads (--seeds broke that once) and pass them on."""
    from experiments.benchmarks import speed

    seen = []

    def fake_run(command, **kwargs):
        seen.append(command)
        return subprocess.CompletedProcess(command, 0, '{"compile_s": 1.0}\n', "")

    monkeypatch.setattr(speed.subprocess, "run", fake_run)
    geometry = argparse.Namespace(
        env="ant", backend="spring", num_envs=2048, unroll_length=10, unrolls_per_iteration=1,
        num_minibatches=32, num_epochs=4, num_updates=50,
    )  # fmt: skip
    setting = speed.settings(geometry, purejaxrl_dir="pjrl", pythonpath=[])
    assert speed.time_anchor(setting, gpu_target="h200") == {"compile_s": 1.0}
    [command] = seen
    flags = " ".join(command)
    assert "--env ant" in flags and "--num-envs 2048" in flags and "--num-updates 50" in flags
    assert "--seeds 1" in flags and "--gpu-target h200" in flags
