"""Shared, expensive fixtures: one Anny body model and one offscreen renderer per test session."""

import os

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def body_model():
    from metrichmsr.body import BodyModel

    return BodyModel()


@pytest.fixture(scope="session")
def session_renderer():
    from metrichmsr.render import Renderer

    with Renderer() as renderer:
        yield renderer
