"""MuJoCo / MJX validation of grasps (DESIGN.md section 8).

validate(hand, obj, grasps, part=None, backend="mujoco" | "mjx", config=None)
    -> ValidationReport (per-grasp flags and measurements + a summary)
"""

# jaxgrasp's package imports sim's modules (evaluation, pipeline) and sim's modules import
# jaxgrasp's (sdf, object model): load jaxgrasp first, so that `import sim` as a script's
# first import resolves the cycle in the one order that works.
import jaxgrasp  # noqa: F401  (isort: skip)
from sim.checks import GeometryChecks, caption, check_grasps
from sim.config import SimConfig
from sim.disturbance import DisturbanceResult, closed_contacts, disturbance_test_mujoco
from sim.grasps import GraspPoses, back_off, grasp_stages
from sim.scene import Scene, SceneError, build_scene
from sim.validate import BACKENDS, CRITERIA, ValidationReport, summarize, validate

__all__ = [
    "BACKENDS",
    "CRITERIA",
    "DisturbanceResult",
    "GeometryChecks",
    "GraspPoses",
    "Scene",
    "SceneError",
    "SimConfig",
    "ValidationReport",
    "back_off",
    "build_scene",
    "caption",
    "check_grasps",
    "closed_contacts",
    "disturbance_test_mujoco",
    "grasp_stages",
    "summarize",
    "validate",
]
