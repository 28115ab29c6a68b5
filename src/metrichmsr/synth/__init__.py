"""Synthetic people with ground truth, rendered through a known camera."""

from metrichmsr.synth.people import SyntheticImage, backdrop, clothing_colors, render_people

__all__ = ["SyntheticImage", "backdrop", "clothing_colors", "render_people"]
