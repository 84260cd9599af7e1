"""Evaluate a saved policy without training:
`python -m experiments.evaluate RUN_DIR [--checkpoint STEP] [--episodes N] [--seed S] [--out FILE]`.

Restores the checkpoint (experiments.policy says which and how) and runs the training loop's
own evaluation, `Trainer.evaluate`: one episode in each of N fresh environments (N replaces
the run's num_eval_envs; default: the run's), with the policy's mode unless the run was
trained with --no-deterministic-eval. Prints the same eval/* metrics training reports and
writes them, with the env step, episodes and seed, to RUN_DIR/evaluations/<STEP>.json (or
--out), atomically.

The episodes' starts and goals come from --seed, so the same checkpoint, episodes and seed
give the same numbers every time. They are not the episodes of training's own evaluation at
that step: those were drawn with the key the training state held just before it, and the
checkpoint is written after the evaluation has advanced that key, so it is not stored. (Re-
running the last interval from the checkpoint before it reproduces them exactly: tested in
tests/test_render_evaluate.py.)
"""

from __future__ import annotations

import sys
from pathlib import Path

from experiments import policy
from experiments.run import UsageError

PROG = "python -m experiments.evaluate"


def parse(argv: list[str]):
    parser = policy.parser(
        PROG,
        "Evaluate a run's saved policy without training.",
        episodes=None,
        episodes_help="episodes, one per fresh environment (default: the run's num_eval_envs)",
    )
    parser.add_argument(
        "--out", help="where to write the metrics (default: RUN_DIR/evaluations/STEP.json)"
    )
    args = policy.parse_args(parser, argv)
    if args.out is not None and not Path(args.out).parent.is_dir():
        raise UsageError(f"--out {args.out}: directory {Path(args.out).parent} does not exist")
    return args


def evaluate(loaded: policy.Policy, seed: int) -> dict[str, float]:
    """The eval/* metrics of `loaded`'s policy, its episodes drawn from `seed`."""
    import jax

    state = loaded.state.replace(key=jax.random.PRNGKey(seed))
    trainer = loaded.trainer
    _, metrics = jax.jit(trainer.evaluate, compiler_options=trainer.compiler_options)(state)
    return {name: float(value) for name, value in jax.device_get(metrics).items()}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse(argv)
        choice = policy.choose(args.run_dir, args.checkpoint)
        overrides = {} if args.episodes is None else {"num_eval_envs": args.episodes}
        loaded = policy.load(choice, **overrides)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from experiments.atomic import write_json_atomic

    metrics = evaluate(loaded, args.seed)
    train = loaded.trainer.config.train
    record = {
        "env_steps": choice.env_steps,
        "checkpoint": choice.path.name,
        "episodes": train.num_eval_envs,
        "seed": args.seed,
        "deterministic": train.deterministic_eval,
        **metrics,
    }
    if args.out is None:
        out = choice.run_dir.evaluation_path(choice.env_steps)
        out.parent.mkdir(exist_ok=True)
    else:
        out = Path(args.out)
    write_json_atomic(out, record)
    width = max(map(len, metrics))
    print(f"{choice.run_dir} at env step {choice.env_steps}, {train.num_eval_envs} episodes:")
    for name, value in metrics.items():
        print(f"  {name:{width}s} {value:.6g}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
