"""Brax-API environments and training wrappers. Knows nothing of purerl."""

import contextlib
import io
import warnings

# mujoco.mjx prints "Failed to import warp" to stdout when the optional NVIDIA Warp backend is
# absent (always, on CPU); keep that out of our output.
with contextlib.redirect_stdout(io.StringIO()):
    # Every MJCF load warns that brax's pipelines are unmaintained; we choose them knowingly.
    warnings.filterwarnings("ignore", message="Brax System", category=UserWarning)
    import brax.envs  # noqa: F401
    from brax.envs.base import Env, State  # the API every environment here implements

from envs.ant_goal import AntGoal, AntMaze
from envs.ant_objects import AntBall, AntPush
from envs.arm import ArmBinpick, ArmPush, ArmReach
from envs.basic_goal import HalfCheetahGoal, PusherGoal, ReacherGoal
from envs.classic import CartPole, PointReach
from envs.humanoid_goal import HumanoidGoal, HumanoidMaze
from envs.maze import PointMaze
from envs.registry import (
    BRAX_BACKENDS,
    OWN_NAMES,
    EnvSpec,
    backends_for,
    compiler_options,
    goal_names,
    is_goal_conditioned,
    make,
    names,
    spec,
)
from envs.wrappers import AutoResetBatch, EpisodeTracker

__all__ = [
    "BRAX_BACKENDS",
    "AntGoal",
    "AntMaze",
    "AutoResetBatch",
    "CartPole",
    "Env",
    "EnvSpec",
    "OWN_NAMES",
    "EpisodeTracker",
    "HumanoidGoal",
    "PointMaze",
    "PointReach",
    "State",
    "backends_for",
    "compiler_options",
    "goal_names",
    "is_goal_conditioned",
    "make",
    "names",
    "spec",
    "HumanoidMaze",
    "HalfCheetahGoal",
    "PusherGoal",
    "ReacherGoal",
    "AntBall",
    "AntPush",
    "ArmBinpick",
    "ArmPush",
    "ArmReach",
]
