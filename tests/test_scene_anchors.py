"""The people's anchors of the scene depth (``scene.anchors``): z-buffer, anchor pixels and
weights, feet above the scene."""

import numpy as np
import pytest
import trimesh

from _cutout_scene import CAMERA_HEIGHT_M, FLOOR, PEOPLE, SIZE, WALL_M, K, cutout_scene
from metrichmsr.scene.anchors import feet_to_floor_m, human_anchors, people_depth
from metrichmsr.scene.floor import FloorPlane


@pytest.fixture(scope="module")
def scene():
    depth, people_depth_m, ids, contacts = cutout_scene()
    return depth, human_anchors(K, people_depth_m, ids, contacts, FLOOR)


def test_anchors_drop_person_edges_and_weigh_each_person_once(scene):
    _, anchors = scene
    _, people_depth_m, ids, _ = cutout_scene()
    body = (anchors.group >= 0) & anchors.on_people
    assert body.sum() < (ids >= 0).sum()  # edge pixels left out
    assert np.all(np.isnan(anchors.depth_m[~body & ~(anchors.group >= 0)]))
    for person in range(len(PEOPLE)):
        mine = anchors.group == person
        assert anchors.weight[mine & anchors.on_people].sum() == pytest.approx(1.0, rel=1e-4)
        assert anchors.weight[mine & ~anchors.on_people].sum() == pytest.approx(1.0, rel=1e-4)
    # Floor anchors carry the floor's depth.
    floor_anchor = (anchors.group >= 0) & ~anchors.on_people
    np.testing.assert_allclose(anchors.depth_m[floor_anchor], FLOOR.depth_map(K, SIZE)[floor_anchor], rtol=1e-5)


def test_feet_to_floor_measures_height_of_the_feet_above_the_scene(scene):
    gt, anchors = scene
    contacts = anchors.contacts_m[1:]  # the first person's feet are below the image
    np.testing.assert_allclose(feet_to_floor_m(gt, K, contacts, FLOOR.up, anchors.on_people), 0.0, atol=1e-3)
    sunken = FloorPlane(FLOOR.up, CAMERA_HEIGHT_M + 0.1)  # the scene's floor 10 cm lower
    sunken_depth = np.where(anchors.on_people, gt, np.minimum(sunken.depth_map(K, SIZE), WALL_M))
    np.testing.assert_allclose(feet_to_floor_m(sunken_depth, K, contacts, FLOOR.up, anchors.on_people), 0.1, atol=1e-3)
    assert np.isnan(feet_to_floor_m(gt, K, anchors.contacts_m[:1], FLOOR.up)).all()


def test_people_depth_is_the_z_buffer(session_renderer):
    near = trimesh.creation.box((0.6, 1.8, 0.3))
    near.apply_translation((0.0, 0.6, 4.0))
    far = trimesh.creation.box((0.6, 1.8, 0.3))
    far.apply_translation((0.3, 0.6, 6.0))
    meshes = [(m.vertices, m.faces) for m in (near, far)]
    depth_m, ids = people_depth(session_renderer, K, SIZE, meshes)
    assert depth_m.shape == ids.shape == (SIZE[1], SIZE[0])
    assert np.isnan(depth_m[ids < 0]).all() and np.isfinite(depth_m[ids >= 0]).all()
    np.testing.assert_allclose(depth_m[ids == 0], 4.0 - 0.15, atol=1e-3)  # front face
    np.testing.assert_allclose(depth_m[ids == 1], 6.0 - 0.15, atol=1e-3)
    # The far box is partly hidden: the near one wins where they overlap.
    u_overlap = int(K[0, 0] * 0.2 / 4.0 + K[0, 2])
    assert ids[int(K[1, 2] + 40), u_overlap] == 0
