"""The BlazePose noise measurement (``bench.blazepose_noise``): BlazePose itself never runs here."""

import pytest

from metrichmsr.bench.blazepose_noise import measure_blazepose_noise
from metrichmsr.synth import HELD_OUT_SEED_START


def test_measurement_stays_in_the_training_split():
    with pytest.raises(ValueError, match="held-out"):
        measure_blazepose_noise(10, seed=HELD_OUT_SEED_START - 5)
