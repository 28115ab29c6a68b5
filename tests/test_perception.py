"""Perception: BlazePose people finder on rendered Anny people with known ground truth.

The rendered scenes use an OpenCV camera (fx = fy = 1000 px, principal point at the image
centre, pixel-centre convention), ``metrichmsr.synth.render_people`` and the session body
model and renderer from ``conftest.py``; people stand in Anny's A-pose facing the camera on
the backdrop's floor.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from metrichmsr.body import POSE_BONES, BodyModel, BodyParams
from metrichmsr.camera import project
from metrichmsr.errors import InputError
from metrichmsr.joints import JOINT_NAMES
from metrichmsr.models.tokens import silhouette_from_segmentation, silhouette_window
from metrichmsr.perception import BLAZEPOSE_LANDMARK_NAMES, PersonObservation, PoseDetector, feet_seen
from metrichmsr.perception._tiles import (
    REFINED_BOXES_DECIDE_IOU,
    Crop,
    box_iou,
    crop_square,
    nested_in_bigger,
    scan_tiles,
    suppress_duplicates,
)
from metrichmsr.perception.motion import MovingPixels
from metrichmsr.scene.floor import FloorPlane
from metrichmsr.synth import render_people

pytestmark = pytest.mark.filterwarnings("ignore:SymbolDatabase.GetPrototype:UserWarning")

SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "sample.jpg"
WIDTH, HEIGHT, FOCAL = 1024, 768, 1000.0
K = np.array([[FOCAL, 0.0, (WIDTH - 1) / 2], [0.0, FOCAL, (HEIGHT - 1) / 2], [0.0, 0.0, 1.0]])
CAMERA_HEIGHT_M = 1.1  # the level camera above the backdrop's floor
# Phenotypes (PHENOTYPE_NAMES order): Anny's default man, and a shorter woman.
MAN = [0.0, 0.5, 0.5, 0.5, 0.5, 0.5]
WOMAN = [1.0, 0.5, 0.5, 0.5, 0.4, 0.5]
# The joints both skeletons share, checked against the rendered truth.
CHECKED_JOINTS = ("left_shoulder", "right_shoulder", "left_ankle", "right_ankle")


# --------------------------------------------------------------------------- rendering


def _render(body_model, renderer, phenotype, pixels, across) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Renders A-posed people facing the camera, standing on the floor CAMERA_HEIGHT_M below it.

    Person i, of ``phenotype[i]`` (6,), stands at the depth where it is ``pixels[i]`` tall, its
    hips ``across[i] * depth`` metres right of the optical axis. Returns the (H, W, 3) uint8
    image, the (N, 4) true boxes of the visible people and their (N, 23, 2) true joints in
    JOINT_NAMES order, all in pixels (pixel-centre convention).
    """
    phenotype = torch.tensor(phenotype)
    n = len(phenotype)
    pose, rotation = torch.zeros(n, len(POSE_BONES), 3), torch.eye(3).expand(n, 3, 3)
    with torch.no_grad():
        at_origin = body_model(phenotype, pose, rotation, torch.zeros(n, 3))
    depth = FOCAL * BodyModel.standing_height(at_origin.rest_vertices) / torch.tensor(pixels)
    # Hips at the origin: the soles are the lowest (largest y) vertices.
    hips_y = CAMERA_HEIGHT_M - at_origin.vertices[..., 1].max(dim=1).values
    translation = torch.stack([torch.tensor(across) * depth, hips_y, depth], dim=1)
    scene = render_people(
        body_model,
        renderer,
        BodyParams(phenotype, pose, rotation, translation),
        K,
        (WIDTH, HEIGHT),
        floor=FloorPlane.level(CAMERA_HEIGHT_M),
    )
    return scene.image, scene.boxes, project(torch.from_numpy(K), torch.from_numpy(scene.joints)).numpy()


@pytest.fixture(scope="module")
def two_people(body_model, session_renderer):
    """A ~400 px man left of centre and a ~90 px woman right of centre, 1024 x 768."""
    return _render(body_model, session_renderer, [MAN, WOMAN], [400.0, 90.0], [-0.14, 0.2])


@pytest.fixture(scope="module")
def detector():
    with PoseDetector() as d:
        yield d


def _check_person(obs: PersonObservation, true_box: np.ndarray, true_joints: np.ndarray) -> None:
    assert box_iou(obs.bbox, true_box) > 0.5
    tolerance = 0.1 * (true_box[3] - true_box[1])
    for name in CHECKED_JOINTS:
        found = obs.landmarks2d[BLAZEPOSE_LANDMARK_NAMES.index(name)]
        assert found[2] > 0.5, name
        assert np.linalg.norm(found[:2] - true_joints[JOINT_NAMES.index(name)]) < tolerance, name


# --------------------------------------------------------------------------- detector


def test_landmark_names_follow_mediapipe():
    from mediapipe.python.solutions.pose import PoseLandmark

    assert BLAZEPOSE_LANDMARK_NAMES == tuple(p.name.lower() for p in PoseLandmark)


def test_feet_seen_needs_both_feet_seen_on_average():
    landmarks = np.zeros((5, len(BLAZEPOSE_LANDMARK_NAMES), 3))
    landmarks[:, :, 2] = 0.9  # everything seen ...
    feet = [i for i, name in enumerate(BLAZEPOSE_LANDMARK_NAMES) if name.endswith(("ankle", "heel", "foot_index"))]
    assert len(feet) == 6
    landmarks[1:, feet, 2] = 0.1  # ... but the feet of the others
    index = BLAZEPOSE_LANDMARK_NAMES.index
    landmarks[2, [index("right_heel"), index("left_foot_index")], 2] = 0.6  # a point of each foot
    landmarks[3, index("right_heel"), 2] = 0.9  # one foot well seen, the other hidden: (0.9 + 0.1) / 2
    # A body cut at the waist, its legs guessed: one point of one foot just seen, the other
    # foot hardly (basketball1.png's near man).
    landmarks[4, [index("left_ankle"), index("right_ankle")], 2] = [0.55, 0.28]
    assert feet_seen(landmarks).tolist() == [True, False, True, True, False]
    assert feet_seen(landmarks, min_visibility=0.7).tolist() == [True, False, False, False, False]


def test_finds_a_large_and_a_small_person(detector, two_people):
    image, true_boxes, true_joints = two_people
    people = detector.detect(image)
    assert len(people) == 2
    # Sorted left to right: the large person stands left of the small one.
    for obs, box, joints in zip(people, true_boxes, true_joints):
        _check_person(obs, box, joints)
        assert obs.bbox.shape == (4,) and obs.landmarks2d.shape == (33, 3)
        assert obs.world_landmarks.shape == (33, 3)
        assert 0.0 <= obs.score <= 1.0
        # World landmarks: metres around the hips, y down.
        hips = obs.world_landmarks[[23, 24]].mean(axis=0)
        assert np.linalg.norm(hips) < 0.1
        assert obs.world_landmarks[0, 1] < -0.3  # the nose is above the hips


def test_the_scan_segments_too(two_people):
    """A pose the scan found (kept for a small person the refinement crop misses) carries a
    mask too when segmentations are asked for: HumanMoE is trained with one for nearly everyone."""
    image, boxes, _ = two_people
    with PoseDetector(segmentation=True) as segmenting:
        tile = Crop.around_box(boxes[1], 0.5, 256, 256)  # the small woman, as a scan tile shows her
        poses = segmenting._run(segmenting._scan_graphs, image, tile, image.shape[1::-1])
    assert poses and all(p.segmentation is not None and p.segmentation_box is not None for p in poses)


def test_segmentation_covers_the_person(detector, two_people):
    """Each person's BlazePose segmentation, resampled onto HumanMoE's silhouette grid, is on
    down the middle of their torso, at their hips and nose, and off in the window's corners.

    Not at the shoulders: on the 32-cell grid they sit on the outline, where BlazePose's mask
    differs between CPUs (XNNPACK kernels): above 0.5 where the test was written, 0.23 and 0.42
    on another x86 CPU."""
    image, _, true_joints = two_people
    assert all(obs.segmentation is None and obs.segmentation_box is None for obs in detector.detect(image))  # not asked for
    with PoseDetector(segmentation=True) as segmenting:
        people = segmenting.detect(image)
    assert len(people) == 2
    for obs, joints in zip(people, true_joints):
        assert obs.segmentation.dtype == np.float32 and max(obs.segmentation.shape) <= 128
        box = obs.segmentation_box
        assert box[0] <= obs.bbox[0] and box[1] <= obs.bbox[1] and box[2] >= obs.bbox[2] and box[3] >= obs.bbox[3]
        silhouette = silhouette_from_segmentation(obs.segmentation, box, obs.bbox, 32).numpy()
        window = silhouette_window(torch.as_tensor(obs.bbox)[None])[0].numpy()

        def on_grid(points: np.ndarray) -> np.ndarray:
            """Silhouette values at (K, 2) pixel points."""
            col, row = ((points - window[:2]) / (window[2:] - window[:2]) * 32).astype(int).T
            return silhouette[row, col]

        inside = on_grid(joints[[JOINT_NAMES.index(n) for n in ("left_hip", "right_hip", "nose")]])
        assert (inside > 0.5).all(), inside
        hips = joints[[JOINT_NAMES.index("left_hip"), JOINT_NAMES.index("right_hip")]].mean(axis=0)
        shoulders = joints[[JOINT_NAMES.index("left_shoulder"), JOINT_NAMES.index("right_shoulder")]].mean(axis=0)
        torso = on_grid(hips + np.linspace(0.0, 1.0, 5)[:, None] * (shoulders - hips))
        assert (torso > 0.5).all(), torso
        assert silhouette[[0, 0, -1, -1], [0, -1, 0, -1]].max() < 0.1


def test_boxes_give_one_observation_each_in_order(detector, two_people):
    image, true_boxes, true_joints = two_people
    empty = np.array([10.0, 10.0, 110.0, 160.0])  # background only
    outside = true_boxes[1] + [0.0, 0.0, 2000.0, 0.0]  # reaches past the right edge
    boxes = np.stack([true_boxes[1], empty, true_boxes[0], outside])
    people = detector.detect(image, boxes=boxes)
    assert len(people) == 4
    _check_person(people[0], true_boxes[1], true_joints[1])
    _check_person(people[2], true_boxes[0], true_joints[0])
    np.testing.assert_allclose(people[2].bbox, true_boxes[0])
    placeholder = people[1]
    assert placeholder.score == 0.0
    assert np.all(placeholder.landmarks2d[:, 2] == 0.0)
    np.testing.assert_allclose(placeholder.landmarks2d[:, :2], [[60.0, 85.0]] * 33)
    assert np.isfinite(placeholder.world_landmarks).all()
    assert people[3].bbox[2] == WIDTH - 1
    assert detector.detect(image, boxes=np.zeros((0, 4))) == []


def test_follow_finds_the_people_again_from_where_they_were(detector, two_people):
    """Video mode: each person looked for around a box from an earlier frame (shifted as if
    they walked); the box over background and the one that left the image find nobody."""
    image, true_boxes, true_joints = two_people
    walked = true_boxes + [6.0, 3.0, 6.0, 3.0]
    empty = np.array([10.0, 10.0, 110.0, 160.0])
    gone = np.array([-300.0, 10.0, -100.0, 200.0])
    people = detector.follow(image, np.stack([walked[1], empty, walked[0], gone, walked[0] + 4.0]))
    assert len(people) == 2  # the two boxes on the large man found one person
    for obs, box, joints in zip(people, true_boxes, true_joints):  # left to right, as detect
        _check_person(obs, box, joints)
    scanned = detector.detect(image)
    for followed, found in zip(people, scanned):
        assert box_iou(followed.bbox, found.bbox) > 0.9  # each bbox the landmarks' own, as detect gives
    assert detector.follow(image, np.zeros((0, 4))) == []


def test_follow_tracks_people_from_their_landmarks_without_the_detector(two_people, monkeypatch):
    """BlazePose's video mode: from an earlier frame's landmarks (shifted as if they walked) the
    landmark network alone finds each person again, mask included; the detector is never
    asked. Landmarks over the background find nobody there, and then the box is looked at."""
    image, true_boxes, true_joints = two_people
    with PoseDetector(segmentation=True) as segmenting:
        scanned = segmenting.detect(image)
        walked = np.array([6.0, 3.0, 0.0])
        monkeypatch.setattr(segmenting, "_find_again", lambda image, box: pytest.fail("the detector was asked"))
        boxes, landmarks = np.stack([o.bbox for o in scanned]), np.stack([o.landmarks2d for o in scanned])
        people = segmenting.follow(image, boxes, landmarks + walked)
        assert len(people) == 2
        for obs, box, joints in zip(people, true_boxes, true_joints):
            _check_person(obs, box, joints)
            hips = joints[[JOINT_NAMES.index("left_hip"), JOINT_NAMES.index("right_hip")]].mean(axis=0)
            silhouette = silhouette_from_segmentation(obs.segmentation, obs.segmentation_box, obs.bbox, 32).numpy()
            window = silhouette_window(torch.as_tensor(obs.bbox)[None])[0].numpy()
            col, row = ((hips - window[:2]) / (window[2:] - window[:2]) * 32).astype(int)
            assert silhouette[row, col] > 0.5
        background = scanned[0].landmarks2d.copy()
        background[:, :2] += [-scanned[0].landmarks2d[:, 0].min() + 5.0, 0.0]  # moved onto the empty left edge
        looked_at = []
        monkeypatch.setattr(segmenting, "_find_again", lambda image, box: looked_at.append(box))
        assert segmenting.follow(image, scanned[0].bbox[None], background[None]) == []
        assert len(looked_at) == 1
        with pytest.raises(ValueError, match="landmarks"):
            segmenting.follow(image, boxes, background[None])


def test_rescan_scans_only_where_the_picture_moves(detector, two_people):
    """A fixed camera's scan: the man followed from his box (or scanned afresh where he moves);
    the woman, followed by nobody, is found only when the picture moves where she is."""
    image, true_boxes, true_joints = two_people
    man, woman = true_boxes
    on = lambda box: _mask(image, box)  # noqa: E731
    both = detector.rescan(image, man[None], on(woman))
    assert len(both) == 2
    for obs, box, joints in zip(both, true_boxes, true_joints):
        _check_person(obs, box, joints)
    alone = detector.rescan(image, man[None], on(man))
    assert len(alone) == 1 and box_iou(alone[0].bbox, man) > 0.5
    assert len(detector.rescan(image, man[None], np.zeros(image.shape[:2], bool))) == 1
    newcomers = detector.rescan(image, np.zeros((0, 4)), on(woman))  # the whole-image tile holds her too
    assert any(box_iou(o.bbox, woman) > 0.5 for o in newcomers)
    assert detector.rescan(image, np.zeros((0, 4)), np.zeros(image.shape[:2], bool)) == []
    assert detector.detect(image, where=np.zeros(image.shape[:2], bool)) == []


def test_rescan_scans_only_where_nobody_followed_moves(detector, two_people, monkeypatch):
    """A followed walker's own motion is no reason to scan; motion where nobody is followed is."""
    image, (man, woman), _ = two_people
    scanned_where = []
    scan = detector.detect

    def recorded_scan(*args, **kwargs):
        scanned_where.append(kwargs["where"])
        return scan(*args, **kwargs)

    monkeypatch.setattr(detector, "detect", recorded_scan)
    followed = detector.rescan(image, man[None], _mask(image, man))
    assert len(followed) == 1 and box_iou(followed[0].bbox, man) > 0.5
    assert scanned_where == []
    both = detector.rescan(image, man[None], _mask(image, man) | _mask(image, woman))
    assert len(both) == 2 and len(scanned_where) == 1
    where = scanned_where[0]
    centre = lambda box: (int((box[1] + box[3]) / 2), int((box[0] + box[2]) / 2))  # noqa: E731
    assert where[centre(woman)] and not where[centre(man)]


def _mask(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(H, W) bool, True inside the pixel-centre ``box``."""
    mask = np.zeros(image.shape[:2], bool)
    x0, y0, x1, y1 = np.round(box).astype(int)
    mask[y0 : y1 + 1, x0 : x1 + 1] = True
    return mask


def test_moving_pixels_are_what_moves_against_the_background():
    rng = np.random.default_rng(0)
    background = rng.integers(60, 200, (240, 320, 3), dtype=np.uint8)
    motion = MovingPixels()
    assert not motion.update(background).any()  # the first frame is the background
    for step in range(30):
        frame = background.copy()
        frame[100:160, 10 + 5 * step : 40 + 5 * step] = 250  # a bright walker crossing
        moving = motion.update(frame)
    assert moving[100:160, 160:180].mean() > 0.8  # where it is now (x 155-185)
    outside = np.ones_like(moving)
    outside[90:170, :] = False
    assert moving[outside].mean() < 0.01


def test_uniform_image_has_nobody(detector):
    assert detector.detect(np.full((HEIGHT, WIDTH, 3), 128, np.uint8)) == []


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((64, 64, 3), np.float32),
        np.zeros((64, 64), np.uint8),
        np.zeros((64, 64, 4), np.uint8),
        np.zeros((0, 64, 3), np.uint8),
        [[[0, 0, 0]]],
    ],
    ids=["float", "grey", "rgba", "empty", "list"],
)
def test_bad_image_is_input_error(detector, image):
    with pytest.raises(InputError):
        detector.detect(image)


@pytest.mark.parametrize(
    "boxes",
    [
        [0.0, 0.0, 10.0, 10.0],
        np.zeros((2, 3)),
        [[0.0, 0.0, np.nan, 10.0]],
        [[20.0, 20.0, 10.0, 30.0]],
        [[200.0, 10.0, 300.0, 50.0]],  # right of the 64 px wide image
        "box",
    ],
    ids=["flat", "three-columns", "nan", "inverted", "outside", "text"],
)
def test_bad_boxes_are_input_error(detector, boxes):
    with pytest.raises(InputError):
        detector.detect(np.zeros((48, 64, 3), np.uint8), boxes=boxes)


def test_huge_image_reports_original_pixels(body_model, session_renderer):
    small, true_boxes, true_joints = _render(body_model, session_renderer, [MAN], [500.0], [0.1])
    scale = 6000 / WIDTH
    huge = cv2.resize(small, (6000, 4500), interpolation=cv2.INTER_LINEAR)
    # Pixel centres scale about the pixel edge at 0.
    big_box = (true_boxes[0] + 0.5) * scale - 0.5
    big_joints = (true_joints[0] + 0.5) * scale - 0.5
    # The person is ~970 px tall in the 1920 px detection image: skip the fine tiles.
    with PoseDetector(min_person_px=300.0) as detector:
        people = detector.detect(huge)
    assert len(people) == 1
    _check_person(people[0], big_box, big_joints)


def test_detector_is_closed_by_context_manager():
    with PoseDetector(workers=1) as detector:
        pass
    with pytest.raises(RuntimeError):
        detector.detect(np.zeros((8, 8, 3), np.uint8))


@pytest.mark.skipif(not SAMPLE.exists(), reason="assets/sample.jpg not added yet")
def test_specks_far_shorter_than_the_smallest_person_sought_are_dropped(detector, two_people, monkeypatch):
    from metrichmsr.perception import blazepose

    image, true_boxes, _ = two_people
    # The 90 px woman counts as a speck once specks are anything under 2 x min_person_px (120 px).
    monkeypatch.setattr(blazepose, "_SPECK_FRACTION", 2.0)
    people = detector.detect(image)
    assert len(people) == 1 and box_iou(people[0].bbox, true_boxes[0]) > 0.5


def test_sample_photo(detector):
    from PIL import Image, ImageOps

    image = np.asarray(ImageOps.exif_transpose(Image.open(SAMPLE)).convert("RGB"))
    people = detector.detect(image)
    assert people, "the sample photo shows people"
    for obs in people:
        assert np.isfinite(obs.landmarks2d).all() and np.isfinite(obs.world_landmarks).all()
        assert 0 <= obs.bbox[0] < obs.bbox[2] <= image.shape[1] - 1
        assert 0 <= obs.bbox[1] < obs.bbox[3] <= image.shape[0] - 1
    assert [obs.bbox[0] for obs in people] == sorted(obs.bbox[0] for obs in people)


# --------------------------------------------------------------------------- geometry


@pytest.mark.parametrize(
    "crop",
    [Crop(30, 20, 100, 256), Crop(-40, 50, 300, 128), Crop(40, 60, 61, 61), Crop(0, 0, 500, 97)],
    ids=["upscale", "downscale-outside", "identity", "odd-factor"],
)
def test_crop_square_maps_back_exactly(crop):
    """A bright blob in the source lands where ``Crop.to_source`` says."""
    image = np.zeros((300, 400, 3), np.uint8)
    centre = np.array([70.0, 90.0])  # pixel centres
    yy, xx = np.mgrid[0:300, 0:400]
    blob = np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * 6.0**2))
    image[...] = (255 * blob)[..., None]
    patch = crop_square(image, crop).astype(np.float64)[..., 0]
    assert patch.shape == (crop.size, crop.size)
    py, px = np.mgrid[0 : crop.size, 0 : crop.size]
    peak = np.array([(patch * px).sum(), (patch * py).sum()]) / patch.sum()
    back = crop.to_source((peak + 0.5)[None] / crop.size)[0] - 0.5
    assert np.linalg.norm(back - centre) < 0.1 * crop.side / crop.size + 0.1


def test_scan_tiles_cover_every_scale():
    tiles = scan_tiles(1024, 768, min_side=171.0, size=256)
    whole = tiles[0]
    assert (whole.x0, whole.y0, whole.side) == (0, -128, 1024)
    for side in {t.side for t in tiles[1:]}:
        level = [t for t in tiles[1:] if t.side == side]
        covered = np.zeros((768, 1024), bool)
        for t in level:
            assert 0 <= t.x0 and t.x0 + t.side <= 1024 and 0 <= t.y0 and t.y0 + t.side <= 768
            covered[t.y0 : t.y0 + t.side, t.x0 : t.x0 + t.side] = True
        assert covered.all()
        # Neighbouring tiles overlap by at least a third of the side.
        xs = sorted({t.x0 for t in level})
        assert all(b - a <= side * 2 / 3 + 1 for a, b in zip(xs, xs[1:]))
    sides = sorted({t.side for t in tiles[1:]})
    assert sides[0] == 171 and sides[-1] == 768
    assert all(b / a <= 2.0 for a, b in zip(sides, sides[1:]))
    # A panorama's people are short next to its width: tiles reach its full height.
    assert max(t.side for t in scan_tiles(1280, 332, min_side=171.0, size=256)[1:]) == 332
    assert scan_tiles(100, 80, min_side=171.0, size=256) == [Crop(0, -10, 100, 256)]


def test_duplicates_merge_but_nested_people_stay():
    rng = np.random.default_rng(0)
    adult = np.column_stack([rng.uniform(100, 200, 33), rng.uniform(0, 400, 33), np.ones(33)])
    adult_box = np.array([90.0, -10.0, 210.0, 410.0])
    # The same adult seen by a tile that cut the legs: upper landmarks agree.
    upper = adult.copy()
    upper[:, 2] = (adult[:, 1] < 200).astype(float)
    upper_box = np.array([90.0, -10.0, 210.0, 200.0])
    # A child standing in front of the adult, inside the adult's box.
    child = np.column_stack([rng.uniform(120, 180, 33), rng.uniform(250, 400, 33), np.ones(33)])
    child_box = np.array([115.0, 240.0, 185.0, 405.0])
    kept = suppress_duplicates([adult_box, upper_box, child_box], [adult, upper, child], [0.9, 0.5, 0.8])
    assert kept == [0, 2]


def test_one_box_read_as_two_skeletons_merges_but_people_side_by_side_stay():
    rng = np.random.default_rng(1)
    box = np.array([100.0, 0.0, 200.0, 300.0])

    def skeleton(box: np.ndarray) -> np.ndarray:
        return np.column_stack([rng.uniform(box[0], box[2], 33), rng.uniform(box[1], box[3], 33), np.ones(33)])

    # Another tile's misreading of the same person: nearly the same box, landmarks elsewhere in it.
    misread_box = box + [5.0, 10.0, 5.0, 10.0]
    assert box_iou(box, misread_box) > 0.6
    skeletons = [skeleton(box), skeleton(misread_box)]
    assert suppress_duplicates([box, misread_box], skeletons, [0.9, 0.8], REFINED_BOXES_DECIDE_IOU) == [0]
    # Before refinement the landmarks decide: each crop may refine to the better reading.
    assert suppress_duplicates([box, misread_box], skeletons, [0.9, 0.8]) == [0, 1]
    # Two people hugging: their boxes overlap by half, their landmarks differ.
    neighbour_box = box + [50.0, 0.0, 50.0, 0.0]
    assert 0.3 < box_iou(box, neighbour_box) < 0.6
    kept = suppress_duplicates(
        [box, neighbour_box], [skeleton(box), skeleton(neighbour_box)], [0.9, 0.8], REFINED_BOXES_DECIDE_IOU
    )
    assert kept == [0, 1]


def test_small_poor_poses_inside_a_person_are_nested():
    adult = np.array([100.0, 0.0, 300.0, 600.0])
    child = np.array([150.0, 270.0, 250.0, 590.0])  # inside, but over half the adult's height
    hand = np.array([120.0, 280.0, 160.0, 380.0])  # a limb read as a small person
    beside = np.array([280.0, 450.0, 340.0, 590.0])  # small, mostly outside the adult
    nested = nested_in_bigger([adult, child, hand, beside], [0.9, 0.8, 0.5, 0.6])
    assert nested.tolist() == [False, False, True, False]
    # A well seen small person inside a poorly seen big one stays.
    assert not nested_in_bigger([adult, hand], [0.4, 0.9])[1]


def test_a_pose_seen_by_a_few_landmarks_is_no_person():
    from metrichmsr.perception.blazepose import _MIN_SEEN_LANDMARKS, _TORSO, _Pose

    landmarks = np.zeros((33, 3))
    landmarks[_TORSO[:2], 2] = 0.9  # both shoulders: a torso, but nothing else
    pose = _Pose(np.array([0.0, 0.0, 10.0, 30.0]), landmarks, np.zeros((33, 3)))
    assert not pose.is_person
    landmarks[:_MIN_SEEN_LANDMARKS, 2] = 0.9  # the face's first points too
    assert pose.is_person
    landmarks[_TORSO, 2] = 0.0  # a face alone
    assert not pose.is_person


def test_detect_drops_poses_seen_by_too_few_landmarks(detector, two_people, monkeypatch):
    from metrichmsr.perception import blazepose

    image, _, _ = two_people
    monkeypatch.setattr(blazepose, "_MIN_SEEN_LANDMARKS", 34)  # more than BlazePose has
    assert detector.detect(image) == []
