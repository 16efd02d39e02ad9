"""jaxgrasp: JAX-native differentiable dexterous grasp synthesis.

The public API re-exported here; hands and kinematics live in the `kinematics` package.
"""

from jaxgrasp import objects
from jaxgrasp.cache import enable_compilation_cache
from jaxgrasp.evaluation import EvalConfig, choose_open_by, choose_temperature, evaluate
from jaxgrasp.generator import GenerationError, GraspGenerator, generate
from jaxgrasp.grasp_set import GraspSet
from jaxgrasp.hand_report import write_hand_report
from jaxgrasp.object_loading import load_object
from jaxgrasp.object_model import ObjectError, PreparedObject
from jaxgrasp.sdf import SDFGrid
from jaxgrasp.synthesis import SynthesisConfig, synthesize
from jaxgrasp.training import TrainConfig, TrainingError, train
from jaxgrasp.visualize import render_hand
from kinematics import (
    HandModel,
    HandModelError,
    HandSpec,
    LinkPoses,
    available_hands,
    forward_kinematics,
    load_hand,
    register_hand,
)

__version__ = "0.1.0"

__all__ = [
    "EvalConfig",
    "GenerationError",
    "GraspGenerator",
    "GraspSet",
    "SynthesisConfig",
    "TrainConfig",
    "TrainingError",
    "choose_open_by",
    "choose_temperature",
    "enable_compilation_cache",
    "evaluate",
    "generate",
    "synthesize",
    "train",
    "HandModel",
    "HandModelError",
    "HandSpec",
    "LinkPoses",
    "ObjectError",
    "PreparedObject",
    "SDFGrid",
    "available_hands",
    "forward_kinematics",
    "load_hand",
    "load_object",
    "objects",
    "register_hand",
    "render_hand",
    "write_hand_report",
]
