"""`make(name)`: every brax registry environment plus purerl's own environments."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
from brax import envs as brax_envs
from brax.envs.base import Env, PipelineEnv

from envs.ant_goal import AntGoal, AntMaze
from envs.ant_objects import AntBall, AntPush
from envs.arm import ArmBinpick, ArmPush, ArmReach
from envs.basic_goal import HalfCheetahGoal, PusherGoal, ReacherGoal
from envs.classic import CartPole, PointReach
from envs.humanoid_goal import HumanoidGoal, HumanoidMaze
from envs.maze import PointMaze

BRAX_BACKENDS = ("generalized", "spring", "positional", "mjx")

# Pure-JAX environments: no physics engine, no backend.
_OWN_JAX: dict[str, Callable[..., Env]] = {
    "cartpole": CartPole,
    "point_reach": PointReach,
    "point_maze_open": functools.partial(PointMaze, layout="open"),
    "point_umaze": functools.partial(PointMaze, layout="umaze"),
    "point_bigmaze": functools.partial(PointMaze, layout="bigmaze"),
    # Point-mass versions of the depth-scaling paper's harder ant mazes (cell size 1).
    "point_u4maze": functools.partial(PointMaze, layout="u4maze"),
    "point_u5maze": functools.partial(PointMaze, layout="u5maze"),
    "point_hardestmaze": functools.partial(PointMaze, layout="hardestmaze"),
}
# purerl's environments built on a brax physics pipeline: they take `backend` like brax's.
_OWN_BRAX: dict[str, Callable[..., Env]] = {
    "ant_goal": AntGoal,
    "ant_umaze": AntMaze,
    "humanoid_goal": HumanoidGoal,
    # Mazes of the depth-scaling paper: the ant's with 4 m cells, the humanoid's with JaxGCRL's
    # 2 m cells and 1 m walls.
    "ant_u4maze": functools.partial(AntMaze, layout="u4maze"),
    "ant_u5maze": functools.partial(AntMaze, layout="u5maze"),
    "ant_bigmaze": functools.partial(AntMaze, layout="bigmaze"),
    "ant_hardestmaze": functools.partial(AntMaze, layout="hardestmaze"),
    "humanoid_umaze": functools.partial(HumanoidMaze, layout="umaze"),
    "humanoid_bigmaze": functools.partial(HumanoidMaze, layout="bigmaze"),
    # JaxGCRL's basic tasks on brax's own reacher, pusher and half cheetah.
    "reacher_goal": ReacherGoal,
    "pusher_easy": functools.partial(PusherGoal, difficulty="easy"),
    "pusher_hard": functools.partial(PusherGoal, difficulty="hard"),
    "half_cheetah_goal": HalfCheetahGoal,
    # Ant with a movable object (issue 11): JaxGCRL's Ant Soccer and AntPush.
    "ant_ball": AntBall,
    "ant_push": AntPush,
    # Arm tasks of the depth-scaling paper (issue 11): 7-joint arm, MJX only.
    "arm_reach": ArmReach,
    "arm_push_easy": functools.partial(ArmPush, difficulty="easy"),
    "arm_push_hard": functools.partial(ArmPush, difficulty="hard"),
    "arm_binpick_easy": functools.partial(ArmBinpick, difficulty="easy"),
    "arm_binpick_hard": functools.partial(ArmBinpick, difficulty="hard"),
}
_OWN = {**_OWN_JAX, **_OWN_BRAX}
OWN_NAMES = tuple(sorted(_OWN))


def is_goal_conditioned(name: str) -> bool:
    """Whether environment `name` is goal-conditioned, known without building it: its class
    declares `achieved_goal_indices` (the contract of envs/goal.py). brax's own environments
    are not goal-conditioned."""
    return hasattr(_own_class(name), "achieved_goal_indices")


def _own_class(name: str) -> type | None:
    """The class behind one of purerl's own environment names (None for other names)."""
    maker = _OWN.get(name)
    return getattr(maker, "func", maker)


def goal_names() -> tuple[str, ...]:
    """The goal-conditioned environments, sorted."""
    return tuple(name for name in OWN_NAMES if is_goal_conditioned(name))


@dataclass(frozen=True)
class EnvSpec:
    """What a learner needs to know about an environment's interface.

    `num_actions` is set for discrete-action environments (actions are int32 scalars in
    [0, num_actions)); it is None for continuous ones (actions of shape (action_size,) in
    [-1, 1]). For goal-conditioned environments `goal_indices` are the observation positions
    holding the commanded goal (always its last entries) and `achieved_goal_indices` those
    holding the state's own coordinates in goal space (e.g. torso x, y); both None otherwise.

    `episode_metrics` is what evaluation reports per episode: (name, key of `state.metrics`,
    reduction over the episode's steps: "sum", "max" or "last") triples an environment
    declares (goal-conditioned ones: success_rate, time_at_goal, final_distance); None means
    undeclared, and evaluation then sums every `state.metrics` entry over the episode as
    brax's evaluator does (episode_NAME). `success_radius`: goal-conditioned environments'
    distance in goal space that counts as reaching the goal (their reward is that success).
    """

    observation_size: int
    action_size: int
    num_actions: int | None = None
    goal_indices: tuple[int, ...] | None = None
    achieved_goal_indices: tuple[int, ...] | None = None
    episode_metrics: tuple[tuple[str, str, str], ...] | None = None
    success_radius: float | None = None

    @property
    def discrete(self) -> bool:
        """Whether actions are integer choices among `num_actions`."""
        return self.num_actions is not None

    @property
    def goal_conditioned(self) -> bool:
        """Whether the observation ends with a commanded goal (`goal_indices` is set)."""
        return self.goal_indices is not None


def names() -> list[str]:
    """All names `make` accepts, purerl's own first."""
    return sorted(_OWN) + sorted(brax_envs._envs)


def backends_for(name: str) -> tuple[str, ...]:
    """The `backend` values `make(name, backend)` accepts: ("jax",) for pure-JAX environments,
    the pipelines a brax-based one of purerl's declares it works on (class attribute
    `backends`), `BRAX_BACKENDS` otherwise."""
    if name in _OWN_JAX:
        return ("jax",)
    if name in _OWN_BRAX:
        return getattr(_own_class(name), "backends", BRAX_BACKENDS)
    if name in brax_envs._envs:
        return BRAX_BACKENDS
    raise ValueError(f"unknown environment {name!r}; choose one of {', '.join(names())}")


def make(name: str, backend: str | None = None, unroll_substeps: bool = False, **kwargs) -> Env:
    """Returns a single (unbatched) brax-API environment; `kwargs` go to its constructor.

    `backend` picks the brax physics pipeline for brax-based environments (default: brax's
    own default, `generalized`); purerl's pure-JAX environments take no backend (or "jax").
    `unroll_substeps`: a brax-based environment steps its n_frames physics substeps unrolled
    rather than in brax's scan (`unrolled_pipeline_step`). Raises ValueError naming the valid
    choices for an unknown name or backend.
    """
    if name in _OWN_JAX:
        if backend not in (None, "jax"):
            raise ValueError(f"environment {name!r} is pure JAX and takes no backend")
        return _OWN_JAX[name](**kwargs)
    if name not in _OWN_BRAX and name not in brax_envs._envs:
        raise ValueError(f"unknown environment {name!r}; choose one of {', '.join(names())}")
    if backend is not None:
        if backend not in BRAX_BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of {BRAX_BACKENDS}")
        if backend not in backends_for(name):
            raise ValueError(
                f"environment {name!r} does not work with backend {backend!r}; choose one of "
                f"{', '.join(backends_for(name))}"
            )
        kwargs["backend"] = backend
    if name in _OWN_BRAX:
        env = _OWN_BRAX[name](**kwargs)
    else:
        env = brax_envs.get_environment(name, **kwargs)
    if unroll_substeps and isinstance(env, PipelineEnv):
        # The environment's own step calls self.pipeline_step, so the unrolled loop replaces
        # it on this instance.
        env.pipeline_step = functools.partial(unrolled_pipeline_step, env)
    return env


def unrolled_pipeline_step(env: PipelineEnv, pipeline_state: Any, action: jax.Array) -> Any:
    """brax's `PipelineEnv.pipeline_step` (n_frames steps of the physics pipeline with one
    action) as the same scan unrolled, so that XLA can fuse one substep's kernels with the
    next's: fewer kernel launches per env step on a GPU (`EnvConfig.substeps`)."""

    def substep(state, _):
        return env._pipeline.step(env.sys, state, action, env._debug), None

    return jax.lax.scan(substep, pipeline_state, (), env._n_frames, unroll=True)[0]


def _unwrap(env) -> object:
    """The innermost environment under brax wrappers and purerl's AutoResetBatch."""
    while True:
        if hasattr(env, "unwrapped") and env.unwrapped is not env:
            env = env.unwrapped
        elif hasattr(env, "env"):
            env = env.env
        else:
            return env


def compiler_options(env: Env | str) -> dict[str, object] | None:
    """XLA options for `jax.jit(..., compiler_options=...)` of a program that steps `env` (an
    environment, possibly wrapped, or a name for `make`, known without building it) on JAX's
    current default backend: the environment's `cpu_compiler_options` on a CPU, None (XLA's
    defaults) otherwise or when it declares none.

    They apply to that one program, not to the process: the arm tasks turn XLA:CPU's fusion
    emitters off, without which a batch of arms steps ~100x slower, while the same setting
    slows the networks of other programs down.
    """
    inner = _own_class(env) if isinstance(env, str) else _unwrap(env)
    options = getattr(inner, "cpu_compiler_options", None)
    return dict(options) if options and jax.default_backend() == "cpu" else None


def spec(env: Env) -> EnvSpec:
    """The `EnvSpec` of a (possibly wrapped) environment."""
    inner = _unwrap(env)
    goal = getattr(inner, "goal_indices", None)
    achieved = getattr(inner, "achieved_goal_indices", None)
    return EnvSpec(
        env.observation_size,
        env.action_size,
        getattr(inner, "num_actions", None),
        None if goal is None else tuple(goal),
        None if achieved is None else tuple(achieved),
        getattr(inner, "episode_metrics", None),
        getattr(inner, "success_radius", None),
    )
