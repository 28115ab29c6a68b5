"""metrichmsr.population: who the people are, and adults' heights."""

import numpy as np
import pytest
import torch

from metrichmsr.body import ADULT_AGE, PHENOTYPE_NAMES
from metrichmsr.population import (
    ADULT_GROUP_SHORTEST,
    ADULT_MEDIAN_HEIGHT_M,
    MIN_ADULT_GROUP,
    adult_group_scale,
    adult_heights_m,
    all_adults,
    check_population,
)


def test_adult_heights_pull_the_read_toward_the_adults_median_in_log_units():
    read = np.array([1.20, 1.50, ADULT_MEDIAN_HEIGHT_M, 2.00])
    heights = adult_heights_m(read, weight=0.25)
    assert heights[2] == pytest.approx(ADULT_MEDIAN_HEIGHT_M)
    np.testing.assert_allclose(np.log(heights / ADULT_MEDIAN_HEIGHT_M), 0.25 * np.log(read / ADULT_MEDIAN_HEIGHT_M))
    assert np.all(np.diff(heights) > 0)  # the order of the reads is kept
    np.testing.assert_allclose(adult_heights_m(read, weight=1.0), read)
    np.testing.assert_allclose(adult_heights_m(read, weight=0.0), ADULT_MEDIAN_HEIGHT_M)
    with pytest.raises(ValueError, match="positive"):
        adult_heights_m(np.array([1.7, 0.0]))


def test_a_group_on_one_floor_is_all_adults_only_where_nobody_is_child_sized():
    walkers = np.array([1.62, 1.81, 1.70, 1.55])
    standing = np.ones(4, dtype=bool)
    assert all_adults(walkers, standing)
    assert MIN_ADULT_GROUP == 3 and not all_adults(walkers[:2], standing[:2])  # two tell nothing
    # A child of ten among them, standing or with their feet unseen: not all adults.
    child = ADULT_GROUP_SHORTEST * 1.66 - 0.05
    assert not all_adults(np.append(walkers, child), np.append(standing, True))
    assert not all_adults(np.append(walkers, child), np.append(standing, False))
    # Only those standing count toward the group; the others must still be adult-sized.
    assert not all_adults(walkers, np.array([True, True, False, False]))
    assert all_adults(np.append(walkers, 1.75), np.append(standing, False))


def test_a_group_of_adults_is_scaled_so_its_median_height_is_an_adults():
    walkers = np.array([1.50, 1.55, 1.60, 1.58])
    standing = np.array([True, True, True, False])
    scale = adult_group_scale(walkers, standing)
    assert scale == pytest.approx(adult_heights_m(np.array([1.55]))[0] / 1.55)
    assert scale > 1.0  # read short: farther and taller
    assert adult_group_scale(np.append(walkers, 1.0), np.append(standing, True)) == 1.0  # a child among them


def test_only_known_populations_are_accepted():
    assert check_population("adults") == "adults"
    assert check_population("auto") == "auto"
    with pytest.raises(ValueError, match="auto, all, adults"):
        check_population("teens")


def test_the_adults_median_is_that_of_annys_population_prior(body_model):
    from metrichmsr.synth.scenes import sample_phenotypes

    phenotype = sample_phenotypes(body_model, 1500, torch.Generator().manual_seed(7))
    adults = phenotype[phenotype[:, PHENOTYPE_NAMES.index("age")] >= ADULT_AGE]
    with torch.inference_mode():
        heights = body_model.standing_heights(adults).numpy()
    assert len(heights) > 1000
    assert np.median(heights) == pytest.approx(ADULT_MEDIAN_HEIGHT_M, abs=0.015)
