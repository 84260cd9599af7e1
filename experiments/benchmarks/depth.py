"""Depth scaling of the residual trunk: compile time, memory and speed of one training step.

Run (one benchmark at a time; the machine is shared)::

    python -m experiments.benchmarks.depth --depths 4 16 64 256 1024 --width 256 --batch 256 \
        --steps 10 --max-unrolled-depth 256 --json runs/bench/depth.json

For each depth it builds ONE training step -- with `--model trunk` (default) forward +
backward + adam update of a `ResidualTrunk` (input dim 32, output 64) on an InfoNCE-like
contrastive loss (trunk outputs against a fixed batch of target embeddings, positives on the
diagonal); with `--model crl` a whole CRL gradient step (`CRLAgent.gradient_step`: relabel a
batch from a filled replay buffer, update both encoders, the actor and the temperature, all
three networks at that depth) -- in three variants:

* ``scan``:   our trunk, blocks under ``nn.scan`` (default);
* ``remat``:  scanned, each block under ``nn.remat`` (activations recomputed in backward);
* ``unroll``: ``scan=False``, no remat: blocks in a Python loop, the anchors' way.

Compile time is ``jax.jit(step).lower(...).compile()`` wall time (tracing included). Memory
comes from the compiled executable's ``memory_analysis()`` (a ``CompiledMemoryStats``):
``temp`` = ``temp_size_in_bytes`` (activations and scratch buffers), ``peak`` = arguments +
outputs + temp - aliased (params and optimizer state are donated, so outputs alias them). This
is XLA's static estimate and works on CPU; on GPU the measured high-water mark is
``jax.devices()[0].memory_stats()["peak_bytes_in_use"]``. SGD steps/s is measured after a
warm-up step, for ``scan`` only unless ``--time-variants`` names more; on a GPU the timed run
also records that peak. ``--variants`` limits which are compiled. Unrolled depths above
``--max-unrolled-depth`` are skipped (and say so).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

import envs
from purerl import CRLConfig
from purerl.agents.crl.agent import CRLAgent
from purerl.networks import ResidualTrunk
from purerl.replay import insert

IN_DIM, OUT_DIM = 32, 64
VARIANTS = {
    "scan": dict(scan=True),
    "remat": dict(scan=True, remat=True),
    "unroll": dict(scan=False),
}


@dataclass(frozen=True)
class Problem:
    """One training step to benchmark: step(params, opt_state, *data) -> (params, opt_state,
    loss); `make_args()` builds real (params, opt_state, *data)."""

    step: Callable
    make_args: Callable[[], tuple]


def trunk_problem(depth: int, variant: str, args: argparse.Namespace) -> Problem:
    """Adam step of one ResidualTrunk (input 32, output 64) on an InfoNCE-like loss."""
    trunk = ResidualTrunk(args.width, depth, OUT_DIM, **VARIANTS[variant])
    optimizer = optax.adam(3e-4)

    def loss_fn(params, x, targets):
        logits = trunk.apply(params, x) @ targets.T  # (B, B); positives on the diagonal
        return optax.softmax_cross_entropy_with_integer_labels(
            logits, jnp.arange(x.shape[0])
        ).mean()

    def step(params, opt_state, x, targets):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, targets)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def make_args():
        kx, kt, kp = jax.random.split(jax.random.key(0), 3)
        x = jax.random.normal(kx, (args.batch, IN_DIM))
        targets = jax.random.normal(kt, (args.batch, OUT_DIM)) / OUT_DIM**0.5
        params = trunk.init(kp, x)
        return params, optimizer.init(params), x, targets

    return Problem(step, make_args)


def crl_problem(depth: int, variant: str, args: argparse.Namespace) -> Problem:
    """One full CRL gradient step (relabelled batch from a filled replay buffer; critic,
    actor and temperature updates) with all three networks at `depth`, for ant_goal's
    interface (31-dim observation with a 2-D goal, 8 actions)."""
    config = CRLConfig(
        depth=depth,
        width=args.width,
        batch_size=args.batch,
        remat=variant == "remat",
        buffer_size=64 * 1000,
        warmup_env_steps=0,
    )
    spec = envs.EnvSpec(31, 8, goal_indices=(29, 30), achieved_goal_indices=(0, 1))
    agent = CRLAgent(config, spec, num_envs=64, episode_length=1000)
    if variant == "unroll":
        agent.sa_encoder = agent.sa_encoder.clone(scan=False)
        agent.goal_encoder = agent.goal_encoder.clone(scan=False)
        agent.actor = agent.actor.clone(scan=False)

    def step(params, opt_state, buffer, key):
        params, opt_state, metrics = agent.gradient_step(params, opt_state, buffer, key)
        return params, opt_state, metrics["critic/loss"]

    def make_args():
        init_key, data_key, step_key = jax.random.split(jax.random.key(0), 3)
        state = agent.init(init_key)
        obs_key, action_key = jax.random.split(data_key)
        steps = {
            "obs": jax.random.normal(obs_key, (1000, 64, 31)),
            "action": jax.random.uniform(action_key, (1000, 64, 8), minval=-1, maxval=1),
        }
        dones = jnp.zeros((1000, 64)).at[-1].set(1.0)
        buffer = insert(state.buffer, steps, dones)
        return state.params, state.optimizer_state, buffer, step_key

    return Problem(step, make_args)


PROBLEMS = {"trunk": trunk_problem, "crl": crl_problem}


def bench_one(depth: int, variant: str, args: argparse.Namespace) -> dict:
    """Compile one step of `variant` at `depth`; time `args.steps` steps if it is timed."""
    problem = PROBLEMS[args.model](depth, variant, args)
    # Shapes only: compiling needs no real params, and unrolled deep inits are slow themselves.
    abstract = jax.eval_shape(problem.make_args)
    params = abstract[0]

    jitted = jax.jit(problem.step, donate_argnums=(0, 1))
    start = time.perf_counter()
    lowered = jitted.lower(*abstract)
    lower_s = time.perf_counter() - start
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start
    mem = compiled.memory_analysis()
    result = dict(
        depth=depth,
        variant=variant,
        lower_s=lower_s,
        compile_s=compile_s,
        hlo_chars=len(lowered.as_text()),
        num_params=sum(p.size for p in jax.tree.leaves(params)),
    )
    if mem is not None:
        result.update(
            temp_bytes=mem.temp_size_in_bytes,
            argument_bytes=mem.argument_size_in_bytes,
            output_bytes=mem.output_size_in_bytes,
            alias_bytes=mem.alias_size_in_bytes,
            peak_bytes=mem.argument_size_in_bytes
            + mem.output_size_in_bytes
            + mem.temp_size_in_bytes
            - mem.alias_size_in_bytes,
        )
    if variant in args.time_variants and args.steps > 0:
        params, opt_state, *data = problem.make_args()
        params, opt_state, loss = compiled(params, opt_state, *data)  # warm-up
        jax.block_until_ready(loss)
        start = time.perf_counter()
        for _ in range(args.steps):
            params, opt_state, loss = compiled(params, opt_state, *data)
        jax.block_until_ready((params, loss))
        result["steps_per_s"] = args.steps / (time.perf_counter() - start)
        result["final_loss"] = float(loss)
        stats = jax.devices()[0].memory_stats() or {}  # a GPU keeps these; a CPU does not
        if "peak_bytes_in_use" in stats:
            # The process's high-water mark so far: depths run in increasing order and each
            # needs more than the last, so it is this depth's peak.
            result["device_peak_bytes"] = stats["peak_bytes_in_use"]
    return result


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.1f}"


def print_report(results: list[dict], args: argparse.Namespace) -> None:
    by_key = {(r["depth"], r["variant"]): r for r in results}
    print(
        f"\nmodel {args.model}, width {args.width}, batch {args.batch}, "
        f"backend {jax.default_backend()}; memory in MiB (XLA estimate)"
    )
    header = f"{'depth':>6} {'params':>10} | " + " | ".join(
        f"{v + ' compile_s':>16} {'temp':>7} {'peak':>7} {'step/s':>7}" for v in VARIANTS
    )
    print(header)
    print("-" * len(header))
    for depth in args.depths:
        cells = []
        for v in VARIANTS:
            r = by_key.get((depth, v))
            if r is None:
                cells.append(f"{'skipped':>16} {'-':>7} {'-':>7} {'-':>7}")
            else:
                temp, peak = _mib(r.get("temp_bytes")), _mib(r.get("peak_bytes"))
                speed = f"{r['steps_per_s']:.2f}" if "steps_per_s" in r else "-"
                cells.append(f"{r['compile_s']:>16.2f} {temp:>7} {peak:>7} {speed:>7}")
        num_params = next(r["num_params"] for (d, _), r in by_key.items() if d == depth)
        print(f"{depth:>6} {num_params:>10} | " + " | ".join(cells))

    lo, hi = min(args.depths), max(args.depths)
    for v in ("scan", "unroll"):
        if (lo, v) in by_key and (hi, v) in by_key:
            ratio = by_key[(hi, v)]["compile_s"] / by_key[(lo, v)]["compile_s"]
            print(f"compile({v}, depth {hi}) / compile({v}, depth {lo}) = {ratio:.2f}")
        else:
            print(f"compile ratio for {v}: depth {hi} skipped")
    plain = by_key.get((hi, "scan"), {}).get("temp_bytes")
    remat = by_key.get((hi, "remat"), {}).get("temp_bytes")
    if plain and remat:
        print(f"temp memory no-remat / remat at depth {hi} = {plain / remat:.2f}")
    print(
        "On GPU, measure the real peak with jax.devices()[0].memory_stats()['peak_bytes_in_use']."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[4, 16, 64, 256, 1024])
    parser.add_argument(
        "--model",
        choices=list(PROBLEMS),
        default="trunk",
        help="trunk: one ResidualTrunk; crl: a whole CRL gradient step (three networks)",
    )
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20, help="timed SGD steps per variant")
    parser.add_argument(
        "--time-variants",
        nargs="+",
        default=["scan"],
        choices=list(VARIANTS),
        help="variants whose steps/s is measured (compile and memory: always all three)",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS),
        choices=list(VARIANTS),
        help="variants compiled (default all three)",
    )
    parser.add_argument("--max-unrolled-depth", type=int, default=256)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()

    results = []
    for depth in args.depths:
        for variant in args.variants:
            if variant == "unroll" and depth > args.max_unrolled_depth:
                print(f"depth {depth:>5} unroll: skipped (> --max-unrolled-depth)", flush=True)
                continue
            r = bench_one(depth, variant, args)
            speed = f", {r['steps_per_s']:.2f} steps/s" if "steps_per_s" in r else ""
            print(
                f"depth {depth:>5} {variant:>6}: compile {r['compile_s']:.2f}s "
                f"(lower {r['lower_s']:.2f}s), temp {_mib(r.get('temp_bytes'))} MiB{speed}",
                flush=True,
            )
            results.append(r)
    print_report(results, args)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(vars(args), json=str(args.json), backend=jax.default_backend())
        args.json.write_text(json.dumps({"config": meta, "results": results}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
