"""Brax's humanoid walking to a goal: on a circle (`HumanoidGoal`) or through a maze
(`HumanoidMaze`, the depth-scaling paper's humanoid U-maze and big maze)."""

from __future__ import annotations

from xml.etree import ElementTree

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import State
from brax.envs.humanoid import Humanoid
from brax.io import mjcf
from etils import epath

from envs.goal import GoalConditioned, MazeMixin, add_walls, sample_on_circle

# Collision bits: brax's humanoid has contype 1 on its feet only and the floor conaffinity 1,
# so only feet touch the floor. Walls use a second bit that every body geom carries: the whole
# body is stopped by walls while its floor contacts (and the absence of self-collisions)
# stay brax's.
_WALL_BIT = 2


def humanoid_maze_mjcf(walls, wall_height: float) -> str:
    """brax's humanoid MJCF (read from brax's installed assets) with box `walls` ((centre x,
    centre y, half size x, half size y) each, metres, `wall_height` tall) that every geom of
    the humanoid collides with (capsule-box and sphere-box pairs)."""
    xml = (epath.resource_path("brax") / "envs/assets/humanoid.xml").read_text()
    root = ElementTree.fromstring(xml)
    default_contype = int(root.find("default/geom").get("contype", "1"))
    for geom in root.find("worldbody/body[@name='torso']").iter("geom"):
        geom.set("contype", str(int(geom.get("contype", default_contype)) | _WALL_BIT))
    xml = ElementTree.tostring(root, encoding="unicode")
    return add_walls(
        xml, walls, wall_height, contype=0, conaffinity=_WALL_BIT, rgba="0.6 0.6 0.7 1"
    )


class _GoalHumanoid(GoalConditioned, Humanoid):
    """brax's `Humanoid` (positions kept in the observation) plus a goal for the torso,
    through `GoalConditioned`; subclasses choose start and goal.

    Observation (248,) float32 = brax's humanoid observation with current positions included
    (q (24, torso x, y first), qd (23), com inertia (110), com velocity (66), actuator forces
    (23)) followed by the goal (2,); achieved goal = torso (x, y) at indices (0, 1), goal at
    (246, 247). Success radius default 0.5; reward = success. Dynamics, action (17,), reset
    noise and termination (torso height outside (1.0, 2.0)) are brax's. With `xml`, the
    simulated model is that MJCF (brax's humanoid with additions such as walls: same bodies
    and actuators) under brax's per-backend settings.
    """

    achieved_goal_indices = (0, 1)
    default_success_radius = 0.5
    backends = ("generalized", "spring", "positional", "mjx")

    def __init__(
        self,
        success_radius: float | None,
        single_goal: bool,
        backend: str,
        xml: str | None = None,
        **kwargs,
    ):
        kwargs["exclude_current_positions_from_observation"] = False
        super().__init__(success_radius, single_goal, backend, **kwargs)
        if xml is not None:
            # brax's Humanoid tunes the timestep, solver (`opt`) and gears (`actuator`) per
            # backend on the model it loads; carry those over to ours.
            self.sys = mjcf.loads(xml).replace(opt=self.sys.opt, actuator=self.sys.actuator)
        size = self.observation_size
        self.goal_indices = (size - 2, size - 1)

    def _sample_start_xy(self, rng: jax.Array, goal: jax.Array) -> jax.Array | None:
        """Torso (x, y) at reset before brax's reset noise, shape (2,); None: the origin."""
        return None

    def _start(self, rng: jax.Array, goal: jax.Array):
        """brax's humanoid reset (noise on q and qd), moved to `_sample_start_xy`."""
        body_key, start_key = jax.random.split(rng)
        body = super()._start(body_key, goal)
        start = self._sample_start_xy(start_key, goal)
        if start is None:
            return body
        return self.pipeline_init(body.q.at[:2].add(start), body.qd)

    def _state_features(self, pipeline_state) -> jax.Array:
        # At rest: brax's observation with no actuator force, as brax's reset gives.
        return self._get_obs(pipeline_state, jnp.zeros(self.sys.act_size()))

    def _stepped_features(self, stepped: State) -> jax.Array:
        return stepped.obs  # brax's, with the actuator forces of the action just taken

    @property
    def observation_size(self) -> int:
        # Static (brax's property would run an uncompiled reset): q, qd, 10 inertia and 6
        # velocity numbers per link, one actuator force per degree of freedom, and the goal.
        return 2 * self.sys.qd_size() + self.sys.q_size() + 16 * self.sys.num_links() + 2


class HumanoidGoal(_GoalHumanoid):
    """brax's humanoid starting at the origin, goal uniform on the circle of `goal_radius`
    (default 5 m) around it; `single_goal_position` = (goal_radius, 0). See `_GoalHumanoid`
    for the observation, action, metrics and termination.
    """

    def __init__(
        self,
        success_radius: float | None = None,
        single_goal: bool = False,
        goal_radius: float = 5.0,
        backend: str = "generalized",
        **kwargs,
    ):
        super().__init__(success_radius, single_goal, backend, **kwargs)
        self.goal_radius = goal_radius
        self.single_goal_position = np.array([goal_radius, 0.0], np.float32)

    def _sample_goal(self, rng: jax.Array) -> jax.Array:
        return sample_on_circle(rng, self.goal_radius)


class HumanoidMaze(MazeMixin, _GoalHumanoid):
    """brax's humanoid in a maze of `cell_size` cells (default: the U-maze with JaxGCRL's
    humanoid-maze geometry: 2 m cells, 1 m tall walls, which a humanoid can vault).

    Starts and goals follow `envs.goal.MazeMixin`: by default both are uniform free cells
    (different ones) plus a uniform offset at least `margin` (0.5 m) from the cell's edges;
    with `fixed_start=True` every episode starts at the centre of the layout's start cell
    ('S', the paper's protocol) and goals avoid that cell. brax's reset noise (+-0.01) is
    added. Every geom of the humanoid collides with the walls (`humanoid_maze_mjcf`); `xml`
    is the model simulated. See `_GoalHumanoid` for the observation (248,), action (17,),
    metrics and termination. Success radius default 0.5.

    layout: a name in `envs.goal.LAYOUTS` or rows of '#'/'.'/'S'.
    """

    def __init__(
        self,
        success_radius: float | None = None,
        single_goal: bool = False,
        layout: str | tuple[str, ...] = "umaze",
        cell_size: float = 2.0,
        margin: float = 0.5,
        fixed_start: bool = False,
        wall_height: float = 1.0,
        backend: str = "generalized",
        **kwargs,
    ):
        self._init_maze(layout, cell_size, margin, fixed_start, wall_height)
        self.xml = humanoid_maze_mjcf(self.walls, self.wall_height)
        super().__init__(success_radius, single_goal, backend, xml=self.xml, **kwargs)
