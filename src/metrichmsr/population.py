"""Who the people in a photo are: ``--population all`` (anyone, the default) or ``adults``.

``recover`` reads each person's build, age and height from BlazePose's landmarks (HumanMoE),
and their distance follows from that height: a person read 10% short stands 10% too near. For
a child against an adult the landmarks tell a lot (a head a quarter of the body, short legs);
for one adult against another very little. On renders of Anny's population, the network's
read of a true adult's height keeps only about a quarter of its log-deviation from the adult
median (the slope of the true on the read log-height: ``python -m
metrichmsr.bench.adult_heights``), and BlazePose's keypoints carry at best 7.0 cm of an adult's
height against the median's 8.4 cm (``bench.height_evidence``). On real footage the read is
also biased: adults walking on a plaza come out ~1.59 m (BENCHMARKS.md, real footage).

When the user knows everyone in the photo is an adult (a street, a platform, a team photo),
``--population adults`` says so: each person is made an adult (at least 18 years) whose
height is the adults' median height scaled by ``(read / median) ** ADULT_READ_WEIGHT``, and
is moved about the camera by the same factor (the image unchanged). The floor is then placed
by those people, and nobody is made a child to stand on it. ``all`` keeps the network's read:
on renders of all ages it places read adults better than any pull toward a median
(``bench.adult_heights``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from metrichmsr.defaults import POPULATIONS

Population = Literal["all", "adults"]

#: Median standing height (m) of Anny's population prior (``anny.shape_distribution.
#: SimpleShapeDistribution``, what ``synth`` draws) at 18 years and older: 1.686 m over 3,191
#: adults of 4,000 draws (log-std 0.061; men 1.74, women 1.63). ``tests/test_population.py``
#: draws it again.
ADULT_MEDIAN_HEIGHT_M = 1.686
#: The share of a read adult's log-deviation from :data:`ADULT_MEDIAN_HEIGHT_M` kept: the
#: least-squares slope of true on read log-height over true adults on training-split renders,
#: 0.22-0.24 (``bench.adult_heights`` on seeds 300000-300199: 179 adults), rounded up.
ADULT_READ_WEIGHT = 0.25


def check_population(population: str) -> Population:
    """``population`` if it is one of :data:`POPULATIONS`, else ValueError."""
    if population not in POPULATIONS:
        raise ValueError(f"population must be one of {', '.join(POPULATIONS)}, got {population!r}")
    return population  # type: ignore[return-value]


def adult_heights_m(read_m: np.ndarray, weight: float = ADULT_READ_WEIGHT) -> np.ndarray:
    """(N,) standing heights (m) of adults whose heights were read as ``read_m`` (N,) m:
    ``ADULT_MEDIAN_HEIGHT_M * (read_m / ADULT_MEDIAN_HEIGHT_M) ** weight``, the read pulled
    toward the adults' median in log units (0: the median, 1: the read)."""
    read_m = np.asarray(read_m, dtype=np.float64)
    if np.any(~(read_m > 0)):
        raise ValueError("heights must be positive")
    return ADULT_MEDIAN_HEIGHT_M * (read_m / ADULT_MEDIAN_HEIGHT_M) ** weight
