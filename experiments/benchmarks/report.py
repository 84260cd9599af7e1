"""What the throughput benchmark reports: each round's summary, the medians over rounds, and
the markdown table printed at the end (and pasted into docs/BENCHMARKS.md).

Rounds are combined by medians, field by field, and the purerl/Brax ratio is the median of
the per-round ratios: each round measures both sides minutes apart, so a ratio within a
round is fairer than a ratio of medians taken at different times.
"""

from __future__ import annotations

import statistics


def round_summary(ours: dict, sim: dict, upd: dict, brax: dict | None, flops: dict) -> dict:
    """One round's rates and times; overhead_fraction = 1 - (simulator + update) / ours is the
    share of our iteration that neither the physics nor the SGD explains."""
    t_it = ours["time_per_iteration_s"]
    t_sim = sim["time_per_iteration_s"]
    t_upd = upd["time_per_update_s"]
    brax_train = None if brax is None else brax.get("train_only_env_steps_per_second")
    return {
        "ours_steps_per_s": ours["env_steps_per_second"],
        "brax_train_only_steps_per_s": brax_train,
        "brax_steps_per_s_with_evals": None if brax is None else brax.get("env_steps_per_second"),
        "ratio_ours_over_brax": (ours["env_steps_per_second"] / brax_train) if brax_train else None,
        "simulator_steps_per_s": sim["env_steps_per_second"],
        "ours_time_per_iteration_s": t_it,
        "simulator_time_per_iteration_s": t_sim,
        "update_time_per_iteration_s": t_upd,
        "overhead_fraction": 1.0 - (t_sim + t_upd) / t_it,
        "update_gflops_per_s": flops["update_flops"] / t_upd / 1e9,
    }


def combine_rounds(summaries: list[dict]) -> dict:
    """Median of every field over rounds; the per-round ratios are kept as a list."""
    out = {}
    for k in summaries[0]:
        values = [sm[k] for sm in summaries if sm[k] is not None]
        out[k] = statistics.median(values) if values else None
    t_it = out["ours_time_per_iteration_s"]
    t_sim = out["simulator_time_per_iteration_s"]
    t_upd = out["update_time_per_iteration_s"]
    out["overhead_fraction"] = 1.0 - (t_sim + t_upd) / t_it  # of the median times
    out["ratio_per_round"] = [sm["ratio_ours_over_brax"] for sm in summaries]
    out["rounds"] = len(summaries)
    return out


def _fmt_rate(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def _fmt_ms(x: float | None) -> str:
    return "n/a" if x is None else f"{1e3 * x:.1f} ms"


def markdown_table(result: dict) -> str:
    """The run's summary (and breakdown, if timed) as a two-column markdown table."""
    r = result["summary"]
    g = result["geometry"]
    head = (
        f"**{g['env']} ({g['backend']})**, {g['num_envs']} envs x {g['unrolls_per_iteration']}"
        f" unroll(s) of {g['unroll_length']}"
        f" = {g['steps_per_iteration']} steps/iteration, {g['num_minibatches']} minibatches,"
        f" {g['num_epochs']} epochs, {g['iterations']} iterations per timed call,"
        f" {r['rounds']} round(s) (medians)"
    )
    ratio = r["ratio_ours_over_brax"]
    rows = [
        ("ours: PPO training env-steps/s", _fmt_rate(r["ours_steps_per_s"])),
        ("brax PPO env-steps/s, train-only", _fmt_rate(r["brax_train_only_steps_per_s"])),
        ("brax PPO env-steps/s, incl. evals", _fmt_rate(r["brax_steps_per_s_with_evals"])),
        ("ratio ours / brax (train-only)", "n/a" if ratio is None else f"{ratio:.2f}x"),
        (
            "ratio per round",
            ", ".join("n/a" if x is None else f"{x:.2f}" for x in r["ratio_per_round"]),
        ),
        ("raw simulator env-steps/s (random actions)", _fmt_rate(r["simulator_steps_per_s"])),
        ("ours: time per iteration", _fmt_ms(r["ours_time_per_iteration_s"])),
        ("simulator time per iteration", _fmt_ms(r["simulator_time_per_iteration_s"])),
        ("SGD update time (per iteration)", _fmt_ms(r["update_time_per_iteration_s"])),
        ("overhead fraction 1 - (sim + update) / ours", f"{r['overhead_fraction']:.1%}"),
        (
            "update: dense-layer GFLOP per iteration (analytic)",
            f"{result['flops']['update_flops'] / 1e9:.1f}",
        ),
        ("update: achieved GFLOP/s", f"{r['update_gflops_per_s']:.0f}"),
        (
            "machine canary GFLOP/s (min-max over the run)",
            "{:.0f}-{:.0f}".format(*r["canary_gflops_per_s_min_max"]),
        ),
    ]
    b = result.get("breakdown")
    if b:
        rows += [
            (
                "breakdown: collect (policy + env) per iteration",
                _fmt_ms(b["collect_per_iteration_s"]),
            ),
            (
                "breakdown: env step w/o auto-reset per iteration",
                _fmt_ms(b["env_step_no_reset_per_iteration_s"]),
            ),
            (
                "breakdown: reset of all envs x unroll per iteration",
                _fmt_ms(b["reset_all_envs_per_iteration_s"]),
            ),
            (
                "breakdown: update pre-SGD (normaliser+values+GAE)",
                _fmt_ms(b["update_prep_per_iteration_s"]),
            ),
            (f"breakdown: one evaluation ({b['eval_envs']} envs)", _fmt_ms(b["evaluate_s"])),
            (
                "breakdown: GEMM ceiling GFLOP/s (XLA, this machine)",
                f"{b['gemm_gflops_per_s']:.0f}",
            ),
        ]
    lines = [head, "", "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)
