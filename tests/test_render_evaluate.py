"""`experiments.evaluate` and `experiments.render` on tiny checkpoints: the metrics training
reports, a fresh evaluation against training's own, a maze GIF, brax's HTML viewer (with a
goal marker), and bad input refused in one line with nothing written."""

import base64
import json
import math
import re
import shutil
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from experiments import evaluate, render
from experiments.rundir import RunDir
from tests.test_cli import ROOT, run_cli

GOAL_METRICS = {"eval/success_rate", "eval/time_at_goal", "eval/final_distance"}
EPISODE_LENGTH = 30


@pytest.fixture(scope="module")
def maze_run(tmp_path_factory):
    """PPO on the point U-maze for two evaluation intervals: checkpoints at 512 and 1024."""
    run_dir = tmp_path_factory.mktemp("render") / "maze"
    result = run_cli(
        "ppo-point-reach",
        "--name",
        "point_umaze",
        "--episode-length",
        str(EPISODE_LENGTH),
        "--total-env-steps",
        "1024",
        "--num-envs",
        "16",
        "--unroll-length",
        "16",
        "--num-evals",
        "2",
        "--num-eval-envs",
        "4",
        "--seed",
        "2",
        "--run-dir",
        str(run_dir),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    return run_dir


def listing(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_evaluate_prints_and_writes_the_eval_metrics(maze_run, capsys):
    assert evaluate.main([str(maze_run), "--episodes", "8", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    record = json.loads((maze_run / "evaluations" / "1024.json").read_text())
    assert record["env_steps"] == 1024 and record["episodes"] == 8 and record["seed"] == 1
    metrics = {k: v for k, v in record.items() if k.startswith("eval/")}
    assert {"eval/episode_return", "eval/episode_length"} | GOAL_METRICS <= set(metrics)
    assert all(math.isfinite(v) for v in metrics.values())
    for name in metrics:
        assert name in out
    assert metrics["eval/episode_length"] == EPISODE_LENGTH

    # Same checkpoint, episodes and seed: the same numbers; --out writes elsewhere.
    again = maze_run.parent / "again.json"
    args = [str(maze_run), "--checkpoint", "1024", "--episodes", "8", "--seed", "1"]
    assert evaluate.main([*args, "--out", str(again)]) == 0
    assert json.loads(again.read_text()) == record


def test_evaluation_of_a_checkpoint_reproduces_training_when_given_its_key(maze_run):
    """The last record's eval numbers come from the key the state held before that
    evaluation; the final checkpoint is saved after it, so that key is gone. Training the
    last interval again from the checkpoint before gives that state back, and evaluating it
    gives training's numbers exactly: the restored policy is the trained one."""
    import jax

    from experiments import policy

    records = RunDir(maze_run).read_metrics()
    loaded = policy.load(policy.choose(maze_run, 512))
    trainer = loaded.trainer
    run = jax.jit(trainer.run_iterations, static_argnums=1)
    state, _ = run(loaded.state, trainer.config.train.iterations_per_eval)
    _, metrics = jax.jit(trainer.evaluate)(state)
    for name, value in jax.device_get(metrics).items():
        assert float(value) == records[-1][name], name


def test_render_maze_writes_an_animated_gif(maze_run, capsys):
    assert render.main([str(maze_run), "--checkpoint", "512", "--episodes", "2"]) == 0
    path = maze_run / "render-512.gif"
    assert str(path) in capsys.readouterr().out
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        # Two episodes of the start plus EPISODE_LENGTH steps each (point mazes never end early).
        assert gif.n_frames == 2 * (EPISODE_LENGTH + 1)
        gif.seek(EPISODE_LENGTH)
        frame = np.asarray(gif.convert("RGB"))
    assert frame.std() > 10  # walls, corridor and goal, not a blank image


def system_json(page: str) -> dict:
    """The system and states brax's viewer page carries (base64 of zlib'd JSON)."""
    encoded = max(re.findall(r"[A-Za-z0-9+/=]{200,}", page), key=len)
    return json.loads(zlib.decompress(base64.b64decode(encoded)))


@pytest.fixture(scope="module")
def pendulum_run(tmp_path_factory):
    """A run directory of brax inverted_pendulum holding an untrained checkpoint, made
    directly (training even a tiny brax run compiles for tens of seconds)."""
    import jax

    from experiments.presets import PRESETS
    from purerl import Trainer
    from purerl.config import replace, to_dict

    config = replace(
        PRESETS["ppo-inverted-pendulum"].config,
        num_envs=4,
        num_minibatches=4,
        episode_length=20,
        num_eval_envs=2,
    )
    run = RunDir(tmp_path_factory.mktemp("render") / "pendulum").create()
    run.write_config({"preset": "ppo-inverted-pendulum", "run": {}, **to_dict(config)})
    trainer = Trainer(config)
    shapes = jax.eval_shape(trainer.init, jax.random.PRNGKey(0))  # no compilation
    state = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    state = state.replace(agent=trainer.agent.init(jax.random.PRNGKey(0)))
    run.checkpoints().save(state, {"evaluations": 1, "env_steps": 80})
    return run.path


def test_render_brax_writes_the_html_viewer(pendulum_run, capsys):
    assert render.main([str(pendulum_run), "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    page = (pendulum_run / "render-80.html").read_text()
    assert "Brax visualizer" in page and "viewer.js" in page
    data = system_json(page)
    lengths = [int(n) for n in re.search(r"episode\(s\) of ([\d, ]+) steps", out)[1].split(",")]
    assert len(lengths) == 2 and all(1 <= n <= 20 for n in lengths)
    assert len(data["states"]["x"]) == sum(n + 1 for n in lengths)
    assert {"cart", "pole"} <= set(data["geoms"]) and "goal" not in data["geoms"]


def test_brax_goal_is_drawn_as_a_sphere():
    from brax.base import Transform

    import envs

    env = envs.make("inverted_pendulum")
    frames = 3
    links = env.sys.num_links()
    physics = Transform(
        pos=np.zeros((frames, links, 3), np.float32),
        rot=np.tile(np.array([1, 0, 0, 0], np.float32), (frames, links, 1)),
    )
    obs = np.tile(np.array([0.0, 0.0, 2.0, -1.0], np.float32), (frames, 1))
    episode = {"physics": physics, "obs": obs, "reward": np.zeros(frames)}
    data = system_json(render.brax_html(env, [episode], (2, 3), 0.4))
    (goal,) = data["geoms"]["goal"]
    assert goal["name"] == "Sphere" and goal["size"][0] == pytest.approx(0.4)
    for x in data["states"]["x"]:
        assert len(x["pos"]) == links + 1 and x["pos"][goal["link_idx"]] == [2.0, -1.0, 0.0]
    # A one-coordinate goal (half_cheetah_goal's x) is drawn on the x axis.
    data = system_json(render.brax_html(env, [episode], (2,), 0.5))
    assert data["states"]["x"][0]["pos"][links] == [2.0, 0.0, 0.0]


def test_bad_input_is_one_line_listing_what_exists(maze_run, tmp_path, capsys):
    before = listing(maze_run)
    for tool in (evaluate, render):
        assert tool.main([str(maze_run), "--checkpoint", "700"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "env step 700" in err
        assert "checkpoints at env steps 512, 1024" in err
    assert render.main([str(maze_run), "--out", str(tmp_path / "maze.html")]) == 2
    assert ".gif or .mp4" in capsys.readouterr().err
    assert listing(maze_run) == before

    # A run directory without checkpoints, at the process level: exit 2, no traceback.
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(maze_run / "config.json", empty / "config.json")
    for module in ("experiments.evaluate", "experiments.render"):
        result = subprocess.run(
            [sys.executable, "-m", module, str(empty)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "no complete checkpoints" in result.stderr
    assert listing(empty) == ["config.json"]
    assert evaluate.main([str(tmp_path / "nowhere")]) == 2
    assert "config.json not found" in capsys.readouterr().err
    for argv in ([], [str(maze_run), "--episodes", "0"], [str(maze_run), "--checkpoint", "x"]):
        assert render.main(argv) == 2
        assert capsys.readouterr().err.count("\n") == 1


def test_every_entry_point_compiles_with_the_environments_compiler_options(
    maze_run, tmp_path, monkeypatch
):
    """An environment's `cpu_compiler_options` reach every jax.jit that steps it: an option
    XLA does not know makes run, evaluate, render, a vmapped sweep and bench-envs fail naming
    it (the arm tasks rely on this path to turn XLA:CPU's fusion emitters off)."""
    from envs.maze import PointMaze
    from experiments import run, sweep
    from experiments.benchmarks import envsteps

    monkeypatch.setattr(PointMaze, "cpu_compiler_options", {"xla_no_such_option": True}, False)
    bogus = "No such compile option: 'xla_no_such_option'"
    with pytest.raises(Exception, match=bogus):
        evaluate.main([str(maze_run), "--episodes", "2"])
    with pytest.raises(Exception, match=bogus):
        render.main([str(maze_run), "--episodes", "1", "--out", str(tmp_path / "m.gif")])
    argv = ["ppo-point-reach", "--name", "point_umaze", "--total-env-steps", "1024"]
    argv += ["--num-envs", "16", "--unroll-length", "16", "--num-evals", "2", "--quiet"]
    with pytest.raises(Exception, match=bogus):
        run.main([*argv, "--run-dir", str(tmp_path / "run")])
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'preset = "ppo-point-reach"\nseeds = [0, 1]\n[overrides]\nname = "point_umaze"\n'
        "total_env_steps = 1024\nnum_envs = 16\nunroll_length = 16\nnum_evals = 2\n"
    )
    with pytest.raises(Exception, match=bogus):
        sweep.main([str(spec), "--executor", "vmap", "--sweep-dir", str(tmp_path / "sweep")])
    rows = envsteps.main(["--envs", "point_umaze", "--num-envs", "4", "--steps", "2"])
    assert bogus in rows[0]["error"]
