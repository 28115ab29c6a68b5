"""Perception: person boxes and 2D/3D keypoints (BlazePose from the mediapipe wheel), and faces
(BlazeFace, from the same wheel) where a crowd shows little else."""

import warnings

# mediapipe 0.10.14 calls a protobuf API deprecated in the protobuf it runs with.
warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)

from metrichmsr.perception._tiles import box_containment, box_iou, match_boxes
from metrichmsr.perception.blazepose import PersonObservation, PoseDetector
from metrichmsr.perception.faces import FaceDetector
from metrichmsr.perception.landmarks import BLAZEPOSE_FOR_JOINT, BLAZEPOSE_LANDMARK_NAMES, feet_seen

__all__ = [
    "BLAZEPOSE_FOR_JOINT",
    "BLAZEPOSE_LANDMARK_NAMES",
    "FaceDetector",
    "PersonObservation",
    "PoseDetector",
    "box_containment",
    "box_iou",
    "feet_seen",
    "match_boxes",
]
