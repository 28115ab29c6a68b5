import json

import numpy as np
import pytest

from _cutout_scene import FLOOR, SIZE, K, cutout_scene
from metrichmsr.bench.depth_bench import abs_rel, delta1
from metrichmsr.bench.depth_bench import corrupt as bench_corrupt
from metrichmsr.scene.anchors import composite_people, human_anchors
from metrichmsr.scene.refine import refine_depth, scene_summary


def corrupt(depth_m, scale=1.0, shift_m=0.0, drift=0.0):
    """scale * depth * (1 + drift * x) + shift, x from -1 at the left edge to 1 at the right."""
    return bench_corrupt(depth_m, scale, shift_m, drift, angle_rad=0.0)


@pytest.fixture(scope="module")
def scene():
    depth, people_depth_m, ids, contacts = cutout_scene()
    return depth, human_anchors(K, people_depth_m, ids, contacts, FLOOR)


@pytest.mark.parametrize("scale, shift_m", [(0.6, 0.0), (1.6, 0.0), (0.6, 0.8), (1.6, -0.5)])
def test_a_global_error_is_undone_by_the_global_fit(scene, scale, shift_m):
    gt, anchors = scene
    result = refine_depth(corrupt(gt, scale, shift_m), anchors)
    assert result.mode == "global"  # nothing varies across the image: the field is not kept
    assert result.scale == pytest.approx(1 / scale, rel=0.01)
    assert result.shift_m == pytest.approx(-shift_m / scale, abs=0.02)
    assert abs_rel(result.depth_m, gt) < 0.005
    assert delta1(result.depth_m, gt) > 0.99
    assert result.residual_after_m < 0.01 < result.residual_before_m
    assert result.feet_to_floor_m < 0.05


@pytest.mark.parametrize("scale, shift_m", [(0.6, 0.5), (1.6, 0.0)])
def test_a_drift_across_the_image_needs_the_spatial_field(scene, scale, shift_m):
    gt, anchors = scene
    corrupted = corrupt(gt, scale, shift_m, drift=0.2)
    spatial = refine_depth(corrupted, anchors)
    only_global = refine_depth(corrupted, anchors, spatial=False)
    assert spatial.mode == "spatial" and only_global.mode == "global"
    assert np.ptp(spatial.scale_field) > 0.1 and np.ptp(spatial.shift_field_m) == 0  # the scale drifts, one shift
    assert spatial.holdout_error_spatial < spatial.holdout_error_global
    assert abs_rel(spatial.depth_m, gt) <= 0.02  # the uncorrupted depth's AbsRel is 0
    assert delta1(spatial.depth_m, gt) >= 0.95
    assert abs_rel(spatial.depth_m, gt) < 0.5 * abs_rel(only_global.depth_m, gt)
    assert spatial.feet_to_floor_m < 0.05


def test_a_person_the_estimator_got_wrong_counts_little(scene):
    gt, anchors = scene
    corrupted = corrupt(gt, 1.3)
    corrupted[anchors.group == 2] *= 1.5  # one person's pixels half as far again
    result = refine_depth(corrupted, anchors, spatial=False)
    assert result.scale == pytest.approx(1 / 1.3, rel=0.01)


def test_one_person_close_together_fits_a_scale_only():
    gt, people_depth_m, ids, contacts = cutout_scene([(0.5, 5.0)])
    anchors = human_anchors(K, people_depth_m, ids, contacts, FLOOR)
    result = refine_depth(corrupt(gt, 0.7, 0.3), anchors, floor_reach=None)
    # A single person spans too little depth to tell a shift from a scale: no shift is fitted,
    # and the scale makes that person right.
    assert result.shift_m == 0.0
    assert result.mode == "global"
    assert result.floor_anchors == 0
    assert np.nanmedian(np.abs(result.depth_m - gt)[anchors.group >= 0]) < 0.02


def test_the_open_floor_tells_a_shift_from_a_scale_with_one_person():
    gt, people_depth_m, ids, contacts = cutout_scene([(0.5, 5.0)])
    anchors = human_anchors(K, people_depth_m, ids, contacts, FLOOR)
    result = refine_depth(corrupt(gt, 0.7, 0.3), anchors)
    assert result.floor_anchors > 1000
    assert result.scale == pytest.approx(1 / 0.7, rel=0.01)
    assert result.shift_m == pytest.approx(-0.3 / 0.7, abs=0.02)
    assert abs_rel(result.depth_m, gt) < 0.005


def test_one_person_and_the_open_floor_fit_a_drift():
    gt, people_depth_m, ids, contacts = cutout_scene([(0.3, 5.0)])
    anchors = human_anchors(K, people_depth_m, ids, contacts, FLOOR)
    corrupted = corrupt(gt, 1.3, 0.2, drift=0.2)
    spatial = refine_depth(corrupted, anchors)
    only_global = refine_depth(corrupted, anchors, spatial=False)
    assert spatial.mode == "spatial" and spatial.floor_anchors > 1000
    assert abs_rel(spatial.depth_m, gt) < 0.5 * abs_rel(only_global.depth_m, gt)
    # People alone are too few for a field.
    assert refine_depth(corrupted, anchors, floor_reach=None).mode == "global"


def test_a_drift_seen_on_one_side_goes_on_across_the_image():
    gt, people_depth_m, ids, contacts = cutout_scene([(0.7, 4.0), (0.9, 6.0)])  # anchors on the right only
    anchors = human_anchors(K, people_depth_m, ids, contacts, FLOOR)
    result = refine_depth(corrupt(gt, 1.3, 0.2, drift=0.2), anchors)
    left = np.s_[:, : SIZE[0] // 3]  # a third of the image with no person, where the drift is strongest
    assert result.mode == "spatial"
    assert abs_rel(result.depth_m[left], gt[left]) < 0.06
    assert abs_rel(result.depth_m, gt) < 0.025


def test_the_open_floor_is_found_when_a_person_and_a_shift_put_it_off_their_scale():
    gt, people_depth_m, ids, contacts = cutout_scene([(0.5, 3.0)])
    # The person recovered 20% too far on a floor placed right (say from a known camera
    # height), in a depth map shifted by -0.4 m: the floor's own scale is 1.3-1.5 times below
    # the person's, out of the first tolerance around it.
    anchors = human_anchors(K, people_depth_m * 1.2, ids, contacts * 1.2, FLOOR)
    result = refine_depth(corrupt(gt, 0.7, -0.4), anchors)
    assert result.floor_anchors > 1000
    # The fit then weighs the floor against the person (0.84 here), where the person alone
    # put the floor 1.4 times too far.
    floor = np.isfinite(gt) & (anchors.group < 0) & ~anchors.on_people
    alone = refine_depth(corrupt(gt, 0.7, -0.4), anchors, floor_reach=None)
    floor_error = abs(np.log(np.nanmedian(result.depth_m[floor] / gt[floor])))
    assert floor_error < 0.2 and 2 * floor_error < abs(np.log(np.nanmedian(alone.depth_m[floor] / gt[floor])))


def test_a_wall_close_behind_one_person_is_not_taken_for_the_floor():
    gt, people_depth_m, ids, contacts = cutout_scene([(0.5, 5.0)])
    gt = np.fmin(np.full_like(gt, 6.0), people_depth_m)  # a fronto-parallel wall hides the floor
    anchors = human_anchors(K, people_depth_m, ids, contacts, FLOOR)
    result = refine_depth(corrupt(gt, 0.7, 0.3), anchors)
    # Only the wall's foot matches the floor's depth: it spans too little depth for a shift.
    assert result.shift_m == 0.0
    assert result.scale == pytest.approx(refine_depth(corrupt(gt, 0.7, 0.3), anchors, floor_reach=None).scale, rel=0.02)


def test_too_few_anchors_leave_the_depth_unchanged():
    gt, people_depth_m, ids, _ = cutout_scene([(0.5, 60.0)])  # a few pixels, far away
    anchors = human_anchors(K, people_depth_m, ids)
    result = refine_depth(corrupt(gt, 2.0), anchors)
    assert result.mode == "none" and result.scale == 1.0
    np.testing.assert_allclose(result.depth_m, corrupt(gt, 2.0))
    assert result.feet_to_floor_m is None


def test_summary_is_json(scene):
    gt, anchors = scene
    result = refine_depth(corrupt(gt, 1.2, 0.0, drift=0.2), anchors)
    summary = scene_summary(None, result, FLOOR)
    json.dumps(summary)
    assert summary["refinement"]["mode"] == "spatial" and summary["floor"]["camera_pitch_deg"] == 0.0
    assert np.isnan(composite_people(np.full((2, 2), np.nan), np.ones((2, 2)))).sum() == 0
