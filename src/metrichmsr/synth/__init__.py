"""Synthetic people with ground truth, rendered through a known camera."""

from metrichmsr.synth.people import SyntheticImage, backdrop, clothing_colors, render_people
from metrichmsr.synth.scenes import SceneConfig, sample_scene

__all__ = ["SceneConfig", "SyntheticImage", "backdrop", "clothing_colors", "render_people", "sample_scene"]
