"""Who the people in a photo are: ``--population auto`` (the default), ``all`` or ``adults``.

``recover`` reads each person's build, age and height from BlazePose's landmarks (HumanMoE),
and their distance follows from that height: a person read 10% short stands 10% too near. For
a child against an adult the landmarks tell a lot (a head a quarter of the body, short legs);
for one adult against another very little. On renders of Anny's population, the network's
read of a true adult's height keeps only about a quarter of its log-deviation from the adult
median (the slope of the true on the read log-height: ``python -m
metrichmsr.bench.adult_heights``), and BlazePose's keypoints carry at best 7.0 cm of an adult's
height against the median's 8.4 cm (``bench.height_evidence``). On real footage the read is
also biased: adults walking on a plaza come out ~1.59 m (BENCHMARKS.md, real footage).

When everyone in the photo is an adult (a street, a platform, a team photo), ``adults`` says
so: each person is made an adult (at least 18 years) whose height is the adults' median
height scaled by ``(read / median) ** ADULT_READ_WEIGHT``, and is moved about the camera by
the same factor (the image unchanged). The floor is then placed by those people, and nobody is
made a child to stand on it. ``all`` keeps the network's read: on renders of all ages it
places read adults better than any pull toward a median (``bench.adult_heights``).

``auto`` (the default) lets the floor tell. People standing on one floor are measured
against each other by where their feet stand, whatever the network reads of each: once the
floor steps have brought them onto it, their heights relative to one another are the
geometry's. Where at least :data:`MIN_ADULT_GROUP` people stand on it and nobody is
shorter than :data:`ADULT_GROUP_SHORTEST` of their median height (:func:`all_adults`), they
are taken for adults, as ``adults`` takes them. Else, with fewer, or on a floor of known
height (which sets the scale itself), as ``all``. (One factor for the whole group instead,
the one that makes their median height an adult's, keeps what the floor measured of each
against the others, but did worse on both benchmarks: BENCHMARKS.md.)
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from metrichmsr.defaults import POPULATIONS

Population = Literal["auto", "all", "adults"]

#: Median standing height (m) of Anny's population prior (``anny.shape_distribution.
#: SimpleShapeDistribution``, what ``synth`` draws) at 18 years and older: 1.686 m over 3,191
#: adults of 4,000 draws (log-std 0.061; men 1.74, women 1.63). ``tests/test_population.py``
#: draws it again.
ADULT_MEDIAN_HEIGHT_M = 1.686
#: The share of a read adult's log-deviation from :data:`ADULT_MEDIAN_HEIGHT_M` kept: the
#: least-squares slope of true on read log-height over true adults on training-split renders,
#: 0.22-0.24 (``bench.adult_heights`` on seeds 300000-300199: 179 adults), rounded up.
ADULT_READ_WEIGHT = 0.25


#: Fewest people standing on one floor whose heights may say they are all adults.
MIN_ADULT_GROUP = 3
#: Nobody in a group of adults is shorter than this share of the group's median height: adults'
#: heights spread by a log-std of 0.061 (Anny's prior) and the floor measures each to ~5%
#: (the renders' median distance error), together 0.079; 0.85 is 2 of it below the median.
#: Wrongly taking a child for an adult costs that child a third of their distance, missing a
#: group of adults only what ``adults`` would have gained, hence 2 and not more: a child of
#: 12 (~1.45 m) among adults of 1.7 m falls under it. (At 0.8: held-out renders 5.2% median
#: depth error against 5.0%, PETS 8.2% against 8.4%; BENCHMARKS.md.)
ADULT_GROUP_SHORTEST = 0.85


def all_adults(heights_m: np.ndarray, standing: np.ndarray) -> bool:
    """Whether the people of ``heights_m`` (N,) metres, brought onto their floor, are all adults:
    at least :data:`MIN_ADULT_GROUP` stand on it (``standing`` (N,) bool) and nobody, standing
    or not, is shorter than :data:`ADULT_GROUP_SHORTEST` of the standing people's median."""
    heights_m, standing = np.asarray(heights_m, dtype=np.float64), np.asarray(standing, dtype=bool)
    if standing.sum() < MIN_ADULT_GROUP:
        return False
    return bool(np.all(heights_m >= ADULT_GROUP_SHORTEST * np.median(heights_m[standing])))


def adult_group_scale(heights_m: np.ndarray, standing: np.ndarray) -> float:
    """The factor that makes the standing people's median height (``heights_m`` (N,) metres,
    ``standing`` (N,) bool) the adults' height :func:`adult_heights_m` gives it, where they are
    all adults (:func:`all_adults`); else 1."""
    if not all_adults(heights_m, standing):
        return 1.0
    median = float(np.median(np.asarray(heights_m, dtype=np.float64)[np.asarray(standing, dtype=bool)]))
    return float(adult_heights_m(np.array([median]))[0] / median)


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
