"""Synthetic people with ground truth, rendered through a known camera."""

from metrichmsr.synth.people import SyntheticImage, clothing_colors, level_axes, render_people, room_backdrop
from metrichmsr.synth.poses import EXTRA_POSE_FAMILIES, POSE_FAMILIES, sample_pose
from metrichmsr.synth.scenes import HELD_OUT_SEED_START, SceneConfig, sample_camera, sample_scene

__all__ = [
    "EXTRA_POSE_FAMILIES",
    "HELD_OUT_SEED_START",
    "POSE_FAMILIES",
    "SceneConfig",
    "SyntheticImage",
    "clothing_colors",
    "level_axes",
    "render_people",
    "room_backdrop",
    "sample_camera",
    "sample_pose",
    "sample_scene",
]
