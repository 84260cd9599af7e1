"""Watch a saved policy: `python -m experiments.render RUN_DIR [--checkpoint STEP]
[--episodes N] [--seed S] [--fps F] [--out FILE]`.

Restores the checkpoint (experiments.policy says which and how) and rolls out N episodes
(default 1) with the policy's mode, one after the other in one file:

- pure-JAX environments: an animated GIF (Pillow), or MP4 when --out ends in .mp4 and ffmpeg
  is on PATH. Mazes are drawn with their walls, the goal (its success radius) and the
  agent's path so far; point_reach with its goal and path; cart-pole as a cart and pole.
- brax environments: brax's interactive HTML viewer (`brax.io.html`; it loads its
  JavaScript from a CDN when opened). Goal-conditioned ones get the goal as a green sphere
  of the success radius on the floor (an extra body in the viewer's data, not in the
  simulated system; it moves to the next episode's goal when that episode starts).

Default --out: RUN_DIR/render-<STEP>.gif or .html. Episodes start from --seed's key and end
at their first `done` (termination or the run's episode_length).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from experiments import policy
from experiments.run import UsageError

PROG = "python -m experiments.render"
PURE_JAX_SUFFIXES = (".gif", ".mp4")


def parse(argv: list[str]):
    parser = policy.parser(
        PROG,
        "Roll out a run's saved policy and write it as a GIF/MP4 (pure-JAX environments) or "
        "brax's HTML viewer (brax environments).",
        episodes=1,
        episodes_help="episodes, one after the other in the file (1)",
    )
    parser.add_argument("--fps", type=int, default=20, help="GIF/MP4 frames per second (20)")
    parser.add_argument(
        "--out", help="the file to write (default: RUN_DIR/render-STEP.gif, or .html for brax)"
    )
    args = policy.parse_args(parser, argv)
    if args.fps < 1:
        raise UsageError(f"--fps must be at least 1, got {args.fps}")
    if args.out is not None and not Path(args.out).parent.is_dir():
        raise UsageError(f"--out {args.out}: directory {Path(args.out).parent} does not exist")
    return args


def output_path(args, choice: policy.Choice, brax_env: bool) -> Path:
    """--out, checked against what the environment can be rendered as, or the default."""
    suffixes = (".html",) if brax_env else PURE_JAX_SUFFIXES
    if args.out is None:
        return choice.run_dir.render_path(choice.env_steps, suffixes[0])
    out = Path(args.out)
    kind = "a brax" if brax_env else "a pure-JAX"
    if out.suffix not in suffixes:
        raise UsageError(
            f"--out {out}: {choice.config.env.name} is {kind} environment, rendered as "
            f"{' or '.join(suffixes)}"
        )
    if out.suffix == ".mp4" and shutil.which("ffmpeg") is None:
        raise UsageError(f"--out {out}: MP4 needs ffmpeg on PATH, which is not there; use .gif")
    return out


# Rolling out.


def rollout(loaded: policy.Policy, episodes: int, seed: int, brax_env: bool) -> list[dict]:
    """Runs `episodes` episodes at once under jit; returns one dict per episode of host
    arrays over its frames (the start, then each step up to its first `done`): "physics"
    (the pipeline state; for brax only its transforms `x`), "obs", "reward"."""
    import jax

    trainer, agent_state = loaded.trainer, loaded.state.agent
    env = trainer.eval_env
    length = trainer.config.env.episode_length

    def keep(state) -> dict:
        physics = state.pipeline_state.x if brax_env else state.pipeline_state
        return {"physics": physics, "obs": state.obs, "reward": state.reward, "done": state.done}

    def run(reset_keys):
        first = jax.vmap(env.reset)(reset_keys)

        def step(state, _):
            # The mode is deterministic: the key is not used.
            action, _ = trainer.agent.act(agent_state, state.obs, reset_keys[0], True)
            state = jax.vmap(env.step)(state, action)
            return state, keep(state)

        _, steps = jax.lax.scan(step, first, None, length=length)
        return keep(first), steps

    keys = jax.random.split(jax.random.PRNGKey(seed), episodes)
    run = jax.jit(run, compiler_options=trainer.compiler_options)
    first, steps = jax.device_get(run(keys))
    frames = jax.tree.map(lambda a, b: np.concatenate([a[None], b]), first, steps)  # (T+1, N)
    result = []
    for episode in range(episodes):
        done = frames["done"][1:, episode] > 0
        end = int(np.argmax(done)) + 1 if done.any() else length
        result.append(jax.tree.map(lambda a, e=episode, n=end: a[: n + 1, e], frames))
    return result


# Pure-JAX environments: matplotlib frames, written as GIF or MP4.


class _Scene:
    """Draws one environment's frames on a matplotlib figure (Agg, no pyplot)."""

    size = (4.0, 4.0)

    def __init__(self, env):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.env = env
        self.figure = Figure(figsize=self.size, dpi=80)
        self.canvas = FigureCanvasAgg(self.figure)
        self.axes = self.figure.add_subplot()
        self.axes.set_aspect("equal")
        self.title = self.axes.set_title("")
        self.setup(self.axes)
        self.figure.tight_layout()

    def setup(self, axes) -> None:
        raise NotImplementedError

    def episode(self, episode: dict) -> None:
        """Called once before an episode's frames."""

    def frame(self, episode: dict, t: int) -> None:
        raise NotImplementedError

    def frames(self, episodes: list[dict]):
        """RGB arrays (height, width, 3), one per frame of every episode."""
        for number, episode in enumerate(episodes, start=1):
            self.episode(episode)
            # The start's reward is not part of the episode's return (as in evaluation).
            returns = np.concatenate([[0.0], np.cumsum(episode["reward"][1:])])
            for t in range(len(episode["reward"])):
                self.frame(episode, t)
                self.title.set_text(
                    f"episode {number}/{len(episodes)}  step {t}  return {returns[t]:.2f}"
                )
                self.canvas.draw()
                yield np.asarray(self.canvas.buffer_rgba())[..., :3].copy()


class _PointScene(_Scene):
    """A point with its path so far and its goal (PointReach, PointMaze)."""

    def setup(self, axes) -> None:
        (self.path,) = axes.plot([], [], "-", color="tab:blue", linewidth=1.5)
        (self.agent,) = axes.plot([], [], "o", color="tab:blue", markersize=8)
        self.goal = self.goal_artist(axes)

    def goal_artist(self, axes):
        (goal,) = axes.plot([], [], "*", color="tab:green", markersize=16)
        return goal

    def episode(self, episode: dict) -> None:
        goal = episode["physics"].goal[0]
        self.goal.set_data([goal[0]], [goal[1]])

    def frame(self, episode: dict, t: int) -> None:
        positions = episode["physics"].position
        self.path.set_data(positions[: t + 1, 0], positions[: t + 1, 1])
        self.agent.set_data([positions[t, 0]], [positions[t, 1]])


class _ReachScene(_PointScene):
    def setup(self, axes) -> None:
        super().setup(axes)
        axes.set_xlim(-2.1, 2.1)
        axes.set_ylim(-2.1, 2.1)


class _MazeScene(_PointScene):
    def __init__(self, env):
        rows, cols = env.layout.walls.shape
        self.size = (1.0 + 0.5 * cols, 1.3 + 0.5 * rows)
        super().__init__(env)

    def setup(self, axes) -> None:
        walls, cell = self.env.layout.walls, self.env.cell_size
        rows, cols = walls.shape
        axes.imshow(
            walls,
            cmap="Greys",
            vmin=0,
            vmax=1.6,
            origin="lower",
            extent=(0, cols * cell, 0, rows * cell),
            interpolation="nearest",
        )
        axes.set_xlim(0, cols * cell)
        axes.set_ylim(0, rows * cell)
        axes.set_xticks([])
        axes.set_yticks([])
        super().setup(axes)

    def goal_artist(self, axes):
        from matplotlib.patches import Circle

        goal = Circle((0, 0), self.env.success_radius, color="tab:green", alpha=0.5)
        axes.add_patch(goal)
        return goal

    def episode(self, episode: dict) -> None:
        self.goal.set_center(tuple(episode["physics"].goal[0]))


class _CartPoleScene(_Scene):
    size = (6.0, 3.0)

    def setup(self, axes) -> None:
        from matplotlib.patches import Rectangle

        limit = self.env.x_limit
        axes.plot([-limit, limit], [0, 0], color="black", linewidth=1)
        axes.set_xlim(-limit - 0.3, limit + 0.3)
        axes.set_ylim(-0.4, 1.4)
        axes.set_yticks([])
        self.cart = Rectangle((0, 0), 0.5, 0.3, color="tab:blue")
        axes.add_patch(self.cart)
        (self.pole,) = axes.plot([], [], color="tab:orange", linewidth=4)

    def frame(self, episode: dict, t: int) -> None:
        p = episode["physics"]
        x, theta = p.x[t], p.theta[t]
        self.cart.set_xy((x - 0.25, -0.15))
        length = 2 * self.env.pole_half_length
        self.pole.set_data([x, x + length * np.sin(theta)], [0.0, length * np.cos(theta)])


def scene_for(env) -> _Scene:
    """The scene that draws `env` (a purerl pure-JAX environment)."""
    from envs.classic import CartPole, PointReach
    from envs.maze import PointMaze

    scenes = {PointMaze: _MazeScene, PointReach: _ReachScene, CartPole: _CartPoleScene}
    for kind, scene in scenes.items():
        if isinstance(env, kind):
            return scene(env)
    raise UsageError(f"no renderer for environment {type(env).__name__}")


def write_animation(frames, path: Path, fps: int) -> None:
    """Writes RGB frames as an animated GIF (Pillow) or, for .mp4, through ffmpeg."""
    frames = list(frames)
    tmp = path.with_name(path.name + ".tmp" + path.suffix)
    try:
        if path.suffix == ".mp4":
            height, width, _ = frames[0].shape
            # Raw RGB frames on stdin; yuv420p (what players expect) needs even sizes.
            command = "ffmpeg -loglevel error -y -f rawvideo -pix_fmt rgb24".split()
            command += ["-s", f"{width}x{height}", "-r", str(fps), "-i", "-"]
            command += ["-pix_fmt", "yuv420p", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", str(tmp)]
            subprocess.run(command, input=b"".join(f.tobytes() for f in frames), check=True)
        else:
            from PIL import Image

            images = [Image.fromarray(frame) for frame in frames]
            duration = max(1, round(1000 / fps))
            images[0].save(
                tmp,
                format="GIF",
                save_all=True,
                append_images=images[1:],
                duration=duration,
                loop=0,
            )
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


# brax environments: the HTML viewer.


def brax_html(env, episodes: list[dict], goal_indices, success_radius) -> str:
    """brax's viewer page for the episodes' frames, with a goal sphere if there is a goal."""
    from brax.io import html
    from brax.io import json as brax_json

    class _Frame:  # what brax's json.dumps reads of a pipeline state: its transforms
        def __init__(self, x):
            self.x = x

    import jax

    states, goals = [], []
    for episode in episodes:
        for t in range(len(episode["reward"])):
            states.append(_Frame(jax.tree.map(lambda a, i=t: a[i], episode["physics"])))
            if goal_indices is not None:
                goals.append(episode["obs"][t, list(goal_indices)])
    data = json.loads(brax_json.dumps(env.sys, states))
    if isinstance(data.get("opt"), dict):
        data["opt"]["timestep"] = float(env.dt)  # one frame per environment step: real time
    if goals:
        link = len(data["states"]["x"][0]["pos"])  # a new row in every frame's transforms
        data["geoms"]["goal"] = [
            {
                "name": "Sphere",
                "link_idx": link,
                "pos": [0.0, 0.0, 0.0],
                "rot": [1.0, 0.0, 0.0, 0.0],
                "rgba": [0.2, 0.8, 0.3, 1.0],
                "size": [float(success_radius or 0.5), 0.0, 0.0],
            }
        ]
        for x, goal in zip(data["states"]["x"], goals, strict=True):
            # A goal of fewer than 3 coordinates (x, y; half cheetah's x) lies at 0 on the rest.
            x["pos"].append([*map(float, goal), 0.0, 0.0][:3])
            x["rot"].append([1.0, 0.0, 0.0, 0.0])
    return html.render_from_json(json.dumps(data), height=480, colab=False, base_url=None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse(argv)
        choice = policy.choose(args.run_dir, args.checkpoint)
        import envs

        brax_env = envs.backends_for(choice.config.env.name) != ("jax",)
        out = output_path(args, choice, brax_env)
        loaded = policy.load(choice)
        inner = loaded.trainer.eval_env.env
        scene = None if brax_env else scene_for(inner)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from experiments.atomic import write_text_atomic

    episodes = rollout(loaded, args.episodes, args.seed, brax_env)
    if brax_env:
        spec = loaded.trainer.spec
        page = brax_html(inner, episodes, spec.goal_indices, spec.success_radius)
        write_text_atomic(out, page)
    else:
        write_animation(scene.frames(episodes), out, args.fps)
    lengths = ", ".join(str(len(e["reward"]) - 1) for e in episodes)
    print(
        f"wrote {out}: {len(episodes)} episode(s) of {lengths} steps at env step {choice.env_steps}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
