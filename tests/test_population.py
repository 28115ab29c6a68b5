"""metrichmsr.population: who the people are, and adults' heights."""

import numpy as np
import pytest
import torch

from metrichmsr.body import ADULT_AGE, PHENOTYPE_NAMES
from metrichmsr.population import ADULT_MEDIAN_HEIGHT_M, adult_heights_m, check_population


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


def test_only_known_populations_are_accepted():
    assert check_population("adults") == "adults"
    with pytest.raises(ValueError, match="all, adults"):
        check_population("teens")


def test_the_adults_median_is_that_of_annys_population_prior(body_model):
    from metrichmsr.synth.scenes import sample_phenotypes

    phenotype = sample_phenotypes(body_model, 1500, torch.Generator().manual_seed(7))
    adults = phenotype[phenotype[:, PHENOTYPE_NAMES.index("age")] >= ADULT_AGE]
    with torch.inference_mode():
        heights = body_model.standing_heights(adults).numpy()
    assert len(heights) > 1000
    assert np.median(heights) == pytest.approx(ADULT_MEDIAN_HEIGHT_M, abs=0.015)
