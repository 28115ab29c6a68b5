"""End to end on rendered ground truth: Anny people at known metric positions, known K."""

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import roma
import torch

from metrichmsr.body import PHENOTYPE_NAMES, POSE_BONES, BodyParams
from metrichmsr.errors import InputError
from metrichmsr.perception import box_iou
from metrichmsr.scene.floor import FloorPlane, shared_floor_pull
from metrichmsr.synth import render_people

REPO = Path(__file__).resolve().parents[1]
W, H = 1024, 768
FOV_DEG = 60.0
CAMERA_HEIGHT_M = 1.5


@pytest.fixture(scope="module")
def recoverer():
    from metrichmsr.pipeline import Recoverer

    with Recoverer(device="cpu") as r:
        yield r


@pytest.fixture(scope="module")
def scene(body_model, session_renderer):
    """A 1.74 m man 4.5 m away left of centre and a 1.65 m woman 8 m away on the right.

    Both within a few cm of the population's adult mean (~1.70 m): sparse keypoints barely
    tell a tall adult from a short one, so that is the accuracy the fit can promise (see the
    benchmark for the population-wide numbers).
    """
    f = W / 2 / math.tan(math.radians(FOV_DEG) / 2)
    K = np.array([[f, 0, (W - 1) / 2], [0, f, (H - 1) / 2], [0, 0, 1]])
    phenotype = torch.tensor([[0.0, 0.79, 0.5, 0.5, 0.0, 0.5], [1.0, 0.79, 0.5, 0.5, 0.0, 0.5]])
    from metrichmsr.fit import ShapePrior

    typical = ShapePrior(body_model).typical(phenotype[:, 1], phenotype[:, 0])
    for name, value in typical.items():
        phenotype[:, PHENOTYPE_NAMES.index(name)] = value
    phenotype[:, PHENOTYPE_NAMES.index("height")] = torch.tensor([0.356, 0.395])
    bone_rotvec = torch.zeros(2, len(POSE_BONES), 3)
    bone_rotvec[:, POSE_BONES.index("upperarm01.L"), 1] = torch.tensor([0.4, -0.2])
    bone_rotvec[:, POSE_BONES.index("upperleg01.R"), 0] = torch.tensor([-0.3, 0.2])
    rotation = roma.rotvec_to_rotmat(torch.tensor([[0.0, 0.5, 0.0], [0.0, -0.4, 0.0]]))
    # Roots ~0.9 m above a floor CAMERA_HEIGHT_M below the camera.
    translation = torch.tensor([[-1.3, CAMERA_HEIGHT_M - 0.92, 4.5], [1.6, CAMERA_HEIGHT_M - 0.85, 8.0]])
    params = BodyParams(phenotype, bone_rotvec, rotation, translation)
    return render_people(body_model, session_renderer, params, K, (W, H), floor=FloorPlane.level(CAMERA_HEIGHT_M), seed=3)


def test_recover_rendered_adults_metrically(recoverer, scene):
    assert scene.height_m == pytest.approx([1.74, 1.65], abs=0.015)
    result = recoverer.infer(scene.image, K=scene.K)
    assert len(result.people) == 2
    for i, truth_box in enumerate(scene.boxes):
        person = max(result.people, key=lambda p: box_iou(p.bbox, truth_box))
        assert box_iou(person.bbox, truth_box) > 0.5
        true_depth = scene.params.translation[i, 2].item()
        assert person.translation[2] == pytest.approx(true_depth, rel=0.10), f"person {i} depth"
        assert abs(person.height_m - scene.height_m[i]) < 0.08, f"person {i} height"
        assert person.vertices.shape == (13718, 3)
    document = result.to_json()
    assert document["schema"] == "metrichmsr.result/1"
    assert set(document["people"][0]["joints3d"]) >= {"nose", "left_ankle", "right_hip"}


def _floor_pixels(scene) -> np.ndarray:
    floor_m = scene.floor.depth_map(scene.K, (W, H))
    return np.isfinite(floor_m) & (np.abs(scene.depth_m / floor_m - 1) < 1e-3) & (scene.instance_ids < 0)


def test_planar_scene_finds_the_floor(recoverer, scene):
    """The floor is only as right as the people it comes from: here they are recovered 4% too
    near and 2% too far, which tilts the floor 1-2 degrees and lowers it ~10%."""
    result = recoverer.infer(scene.image, K=scene.K)
    floor = result.scene.summary["floor"]
    assert floor["camera_height_m"] == pytest.approx(CAMERA_HEIGHT_M, rel=0.15)
    assert abs(floor["camera_pitch_deg"]) < 3 and abs(floor["camera_roll_deg"]) < 3
    assert result.scene.summary["backend"] == "planar"
    on_floor = _floor_pixels(scene)
    error = np.abs(result.scene.depth_m[on_floor] / scene.depth_m[on_floor] - 1)
    assert np.median(error) < 0.15


@pytest.fixture
def depth_spec(recoverer):
    """Swap the recoverer's depth backend for one test."""
    from metrichmsr.scene.depth import depth_backend

    shipped = recoverer.depth

    def use(spec: str):
        recoverer.depth = depth_backend(spec)

    yield use
    recoverer.depth = shipped


def test_a_wrongly_scaled_depth_map_is_corrected_by_the_people(recoverer, scene, depth_spec, tmp_path):
    np.save(tmp_path / "mono.npy", scene.depth_m * 1.4 + 0.3)  # a monocular estimate, off in scale and shift
    depth_spec(f"file:{tmp_path / 'mono.npy'}")
    result = recoverer.infer(scene.image, K=scene.K)
    refinement = result.scene.summary["refinement"]
    assert refinement["mode"] in ("global", "spatial")
    assert refinement["residual_after_m"] < refinement["residual_before_m"]
    assert refinement["floor_anchors"] > 0  # the room's floor, seen between the people
    abs_rel = np.nanmean(np.abs(result.scene.depth_m / scene.depth_m - 1))
    assert abs_rel < 0.06  # from ~45% before
    recoverer.save(result, tmp_path / "out")
    assert np.load(tmp_path / "out" / "depth.npy").shape == (H, W)
    assert (tmp_path / "out" / "depth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import trimesh

    nodes = trimesh.load(tmp_path / "out" / "scene.glb").graph.nodes_geometry
    assert {"scene", "floor", "camera", "image_plane", "person_0", "person_1"} <= set(nodes)


def test_no_depth_backend_writes_no_scene(recoverer, scene, depth_spec, tmp_path):
    depth_spec("none")
    result = recoverer.infer(scene.image, K=scene.K)
    assert result.scene is None and "scene" not in result.to_json()
    recoverer.save(result, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        ".metrichmsr-output.json",
        "overlay.png",
        "people_rigged.glb",
        "result.json",
        "scene.glb",
        "view.html",
    ]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(K="500,500,512,384"), "K must"),
        (dict(K=np.eye(3) * [0, 1, 1]), "K must"),
        (dict(camera_height_m="1.6"), "camera height"),
        (dict(camera_height_m=250.0), "camera height"),
        (dict(boxes=[[2000, 10, 2100, 200]]), "outside the 1024x768 image"),
        (dict(boxes=[[10, 10], [50, 50]]), "expected a list"),
    ],
    ids=["K string", "K zero focal", "camera height string", "camera height 250 m", "box outside", "box point pairs"],
)
def test_python_api_refuses_what_the_cli_refuses(recoverer, scene, kwargs, match):
    with pytest.raises(InputError, match=match):
        recoverer.infer(scene.image, **kwargs)


def test_python_api_refuses_images_under_16_px_and_takes_no_boxes_as_nobody(recoverer, scene):
    with pytest.raises(InputError, match="too small"):
        recoverer.infer(np.zeros((15, 40, 3), np.uint8))
    assert recoverer.infer(scene.image, K=scene.K, boxes=[]).people == []


def test_python_api_save_replaces_only_its_own_results(recoverer, tmp_path):
    result = recoverer.infer(np.full((48, 64, 3), 128, np.uint8))
    out = recoverer.save(result, tmp_path / "out")
    with pytest.raises(InputError, match="overwrite"):
        recoverer.save(result, out)
    recoverer.save(result, out, overwrite=True)
    (out / "mine.txt").write_text("mine")
    with pytest.raises(InputError, match="did not write"):
        recoverer.save(result, out, overwrite=True)
    assert (out / "mine.txt").read_text() == "mine" and (out / "result.json").is_file()


def test_variants_in_one_batch_equal_separate_fits(recoverer, scene):
    from metrichmsr.bench.baselines import fit_people_variants

    observations = [o for o in recoverer.detect(scene.image) if o.score > 0]
    wide = scene.K.copy()
    wide[[0, 1], [0, 1]] *= 0.7
    variants = [(scene.K, "rays"), (wide, "rays"), (scene.K, "box")]
    batched = fit_people_variants(recoverer, observations, variants)
    for (K, camera_model), people in zip(variants, batched):
        alone = fit_people_variants(recoverer, observations, [(K, camera_model)])[0]
        assert [p.id for p in people] == list(range(len(observations)))
        for a, b in zip(alone, people):
            np.testing.assert_allclose(a.translation, b.translation, atol=5e-3)
            np.testing.assert_allclose(a.joints3d, b.joints3d, atol=5e-3)
    # The box variant keeps each person at their box: its root projects near the rays' one.
    for rays, box in zip(batched[0], batched[2]):
        assert np.linalg.norm(rays.translation - box.translation) < 0.1 * rays.translation[2]
    # The rays variant is what `recover` fits.
    for ours, bench in zip(recoverer.fit_people(observations, scene.K, image=scene.image), batched[0]):
        np.testing.assert_allclose(ours.translation, bench.translation, atol=5e-3)


def test_wrong_focal_changes_the_distance(recoverer, scene):
    """The true K matters: a 2x focal puts people ~2x further, as geometry says."""
    K = scene.K.copy()
    K[0, 0] *= 2
    K[1, 1] *= 2
    near = recoverer.infer(scene.image, K=scene.K).people
    far = recoverer.infer(scene.image, K=K).people
    ratio = sorted(p.translation[2] for p in far)[0] / sorted(p.translation[2] for p in near)[0]
    assert 1.7 < ratio < 2.3


def _recover_sample(out: Path, *flags: str) -> dict:
    command = [sys.executable, "-m", "metrichmsr", "recover", str(REPO / "assets" / "sample.jpg"), "-o", str(out), *flags]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads((out / "result.json").read_text())


def test_cli_on_the_sample_photo(tmp_path):
    out = tmp_path / "demo"
    result = _recover_sample(out)
    assert len(result["people"]) > 20  # a group photo: more than the detector's own default
    assert len(_recover_sample(tmp_path / "three", "--max-people", "3")["people"]) == 3
    assert result["camera"]["source"] in ("exif", "default")
    for person in result["people"]:
        assert 0.5 < person["translation"][2] < 100
        assert 0.5 < person["height_m"] < 2.3
    assert (out / "overlay.png").stat().st_size > 0
    assert (out / "scene.glb").read_bytes()[:4] == b"glTF"
    assert np.isfinite(np.load(out / "depth.npy")).mean() > 0.5
    assert result["scene"]["backend"] == "planar" and 0.5 < result["scene"]["floor"]["camera_height_m"] < 3


def test_result_json_follows_the_contract(recoverer, scene, tmp_path):
    from metrichmsr.joints import COCO_JOINT_NAMES
    from metrichmsr.perception import BLAZEPOSE_LANDMARK_NAMES

    result = recoverer.infer(scene.image, K=scene.K)
    recoverer.save(result, tmp_path / "out")
    document = json.loads((tmp_path / "out" / "result.json").read_text())
    assert document["image"] == {"path": "", "width": W, "height": H}
    assert document["camera"]["fx"] == pytest.approx(scene.K[0, 0], rel=1e-5)
    assert document["camera"]["fov_deg"] == pytest.approx(FOV_DEG, abs=1e-3)
    for person in document["people"]:
        joints = person["joints3d"]
        assert set(COCO_JOINT_NAMES) <= set(joints)
        hips = (np.array(joints["left_hip"]) + np.array(joints["right_hip"])) / 2
        np.testing.assert_allclose(person["translation"], hips, atol=2e-3)  # the root is the hip midpoint
        assert list(person["keypoints2d"]) == list(BLAZEPOSE_LANDMARK_NAMES)
        assert person["body"]["model"] == "anny"
        assert set(person["body"]["phenotype"]) == set(PHENOTYPE_NAMES)
        assert set(person["body"]["pose"]["bones"]) == set(POSE_BONES)
        # The box holds the person's projected joints.
        x0, y0, x1, y1 = person["bbox"]
        nose = np.array(joints["nose"])
        u, v = scene.K[0, 0] * nose[0] / nose[2] + scene.K[0, 2], scene.K[1, 1] * nose[1] / nose[2] + scene.K[1, 2]
        assert x0 <= u <= x1 and y0 <= v <= y1


def test_boxes_give_exactly_those_people(recoverer, scene):
    empty_sky = np.array([10.0, 10.0, 120.0, 200.0])
    result = recoverer.infer(scene.image, K=scene.K, boxes=np.vstack((scene.boxes[::-1], empty_sky)))
    assert len(result.people) == 2
    assert result.boxes_without_person == [2]
    for person, box in zip(result.people, scene.boxes[::-1]):
        assert box_iou(person.bbox, box) > 0.9


def test_huge_photo_is_reported_in_its_own_pixels(recoverer, scene, tmp_path):
    """A 12000 x 9000 photo: detection runs on a downscaled copy, results are in full pixels."""
    from PIL import Image

    from metrichmsr.camera import scale_K

    big_size = (12000, 9000)
    scale = big_size[0] / W
    big = np.asarray(Image.fromarray(scene.image).resize(big_size, Image.BILINEAR))
    K = scale_K(scene.K, scale, scale)
    result = recoverer.infer(big, K=K)
    assert len(result.people) == 2
    for i, truth_box in enumerate(scene.boxes):
        big_box = (truth_box + 0.5) * scale - 0.5
        person = max(result.people, key=lambda p: box_iou(p.bbox, big_box))
        assert box_iou(person.bbox, big_box) > 0.5
        assert person.translation[2] == pytest.approx(scene.params.translation[i, 2].item(), rel=0.10)
    recoverer.save(result, tmp_path / "big")
    assert Image.open(tmp_path / "big" / "overlay.png").size == (2048, 1536)  # rendered at a capped size


def test_infer_reads_an_image_file(recoverer, scene, tmp_path):
    from PIL import Image

    path = tmp_path / "people.png"
    Image.fromarray(scene.image).save(path)
    result = recoverer.infer(str(path), K=scene.K)
    assert result.image_path == str(path)
    assert len(result.people) == 2
    assert result.to_json()["image"]["path"] == str(path)


def test_a_network_with_silhouette_tokens_sees_the_segmentation(scene, tmp_path):
    """``weights=`` loads the user's own network; one with silhouette tokens makes the detector
    keep segmentations, and each person's silhouette reaches the network."""
    from metrichmsr.models import HumanMoE, HumanMoEConfig
    from metrichmsr.pipeline import Recoverer

    torch.manual_seed(0)
    weights = tmp_path / "humanmoe.pt"
    HumanMoE(HumanMoEConfig(depth=1, silhouette_grid=16, silhouette_patch=8)).save(weights)
    seen = []
    with Recoverer(device="cpu", weights=weights, depth="none") as recoverer:
        recoverer.init_model.register_forward_pre_hook(lambda module, args: seen.append(args[0].silhouette))
        result = recoverer.infer(scene.image, K=scene.K)
    assert len(result.people) == 2 and len(seen) == 1
    assert seen[0].shape == (2, 16, 16)
    occupied = seen[0].flatten(1).mean(1)
    assert torch.all((occupied > 0.05) & (occupied < 0.6))  # a person in the window, not the whole of it


def _adults_with_feet_below(recoverer, feet_below_camera_m: list[float], ahead_m: list[float]):
    """Upright adults (PersonResult list), feet ``feet_below_camera_m`` below a level camera,
    ``ahead_m`` metres ahead; then its K and a blank 640x480 image (no lines)."""
    from types import SimpleNamespace

    from metrichmsr.result import posed_bodies, posed_people

    n = len(feet_below_camera_m)
    params = BodyParams(
        torch.tensor([[0.5, 0.85, 0.5, 0.5, 0.5, 0.5]]).repeat(n, 1),
        torch.zeros(n, len(POSE_BONES), 3),
        torch.eye(3).repeat(n, 1, 1),
        torch.zeros(n, 3),
    )
    sole_below_hip_m = np.array([body["joints3d"][:, 1].max() for body in posed_bodies(recoverer.body, params)]) + 0.03
    params.translation = torch.tensor([[x, 0.0, z] for x, z in zip(np.linspace(-1.0, 1.0, n), ahead_m)], dtype=torch.float32)
    params.translation[:, 1] = torch.tensor(np.array(feet_below_camera_m) - sole_below_hip_m, dtype=torch.float32)
    seen = SimpleNamespace(bbox=np.array([0.0, 0.0, 50.0, 200.0]), score=0.9, landmarks2d=np.full((33, 3), 0.9))
    K = np.array([[800.0, 0.0, 320.0], [0.0, 800.0, 240.0], [0.0, 0.0, 1.0]])
    return posed_people(recoverer.body, [seen] * n, params), K, np.full((480, 640, 3), 128, np.uint8)


def test_a_person_sunk_below_the_others_floor_is_a_nearer_child(recoverer):
    """Two adults on a floor 1.5 m below the camera, and an adult body twice too far away (its
    feet 3 m below the camera): what a child half as far, read as an adult, looks like."""
    from metrichmsr.body import ADULT_AGE

    people, K, image = _adults_with_feet_below(recoverer, [1.5, 1.5, 3.0], [4.0, 6.0, 10.0])
    placed, floor, contacts = recoverer.stand_on_floor(people, image, K)
    assert floor.camera_height_m == pytest.approx(1.5, abs=0.05)
    assert [p.floor_scale for p in placed[:2]] == [1.0, 1.0] and placed[:2] == people[:2]
    child = placed[2]
    # Its feet tilt the first floor (a blank image gives no lines); the second one is level.
    assert child.floor_scale == pytest.approx(0.5, abs=0.02) and child.shared_floor_scale == 1.0
    np.testing.assert_allclose(child.translation, child.floor_scale * people[2].translation, rtol=1e-5)
    assert child.height_m == pytest.approx(child.floor_scale * people[2].height_m, abs=0.02)
    assert child.phenotype[PHENOTYPE_NAMES.index("age")] < ADULT_AGE
    assert abs(floor.height_above(contacts[2])) < 0.03  # now standing on it
    assert json.loads(json.dumps(child.to_json()))["floor_scale"] == pytest.approx(child.floor_scale, abs=1e-4)


def test_with_population_adults_everyone_is_an_adult_and_the_sunk_one_a_shorter_adult(recoverer, monkeypatch):
    """The scene above told that everyone is an adult: each is first given the adults' height
    for their read (``population.adult_heights_m``), then the one whose feet sink below the
    others' floor is brought nearer as a shorter adult, not a child."""
    from metrichmsr.body import ADULT_AGE
    from metrichmsr.population import adult_heights_m

    people, K, image = _adults_with_feet_below(recoverer, [1.5, 1.5, 3.0], [4.0, 6.0, 10.0])
    half = replace(people[0], phenotype=people[0].phenotype * [1, 0.5, 1, 1, 1, 1])  # read as a child: as old, no other change
    people = [half, *people[1:]]
    monkeypatch.setattr(recoverer, "population", "adults")
    placed, floor, _ = recoverer.stand_on_floor(people, image, K)
    age = PHENOTYPE_NAMES.index("age")
    read = np.array([p.height_m for p in people])
    expected = adult_heights_m(read) / read
    np.testing.assert_allclose([p.population_scale for p in placed], expected, rtol=1e-4)
    assert all(p.phenotype[age] >= ADULT_AGE for p in placed)
    assert placed[0].height_m == pytest.approx(
        adult_heights_m(read[:1])[0] * placed[0].floor_scale * placed[0].shared_floor_scale, abs=0.02
    )
    sunk = placed[2]
    assert sunk.floor_scale < 0.6 and sunk.phenotype[age] >= ADULT_AGE  # nearer, shorter, still an adult
    total = sunk.population_scale * sunk.floor_scale * sunk.shared_floor_scale
    np.testing.assert_allclose(sunk.translation, total * people[2].translation, rtol=1e-4)
    assert json.loads(json.dumps(sunk.to_json()))["population_scale"] == pytest.approx(sunk.population_scale, abs=1e-4)
    monkeypatch.setattr(recoverer, "population", "all")
    assert [p.population_scale for p in recoverer.stand_on_floor(people, image, K)[0]] == [1.0] * 3


def test_auto_population_takes_a_group_on_one_floor_for_adults_only_where_nobody_is_child_sized(recoverer, monkeypatch):
    """``auto`` (the default): three adults standing on one floor are made adults as
    ``adults`` makes them; not on a floor of known height, which sets the scale itself; and
    with a child among them (an adult body twice too far, whose feet sink) the floor makes
    that one a nearer child and nobody is pulled toward the adults."""
    from metrichmsr.body import ADULT_AGE

    people, K, image = _adults_with_feet_below(recoverer, [1.5, 1.5, 1.5], [4.0, 6.0, 8.0])
    monkeypatch.setattr(recoverer, "population", "adults")
    as_adults, _, _ = recoverer.stand_on_floor(people, image, K)
    monkeypatch.setattr(recoverer, "population", "auto")
    placed, floor, _ = recoverer.stand_on_floor(people, image, K)
    assert all(p.population_scale != 1.0 for p in placed)
    np.testing.assert_allclose([p.translation for p in placed], [p.translation for p in as_adults])
    placed, _, _ = recoverer.stand_on_floor(people, image, K, camera_height_m=1.5)
    assert [p.population_scale for p in placed] == [1.0] * 3
    people, K, image = _adults_with_feet_below(recoverer, [1.5, 1.5, 1.5, 3.0], [4.0, 6.0, 8.0, 10.0])
    placed, floor, _ = recoverer.stand_on_floor(people, image, K)
    assert [p.population_scale for p in placed] == [1.0] * 4
    assert placed[3].floor_scale < 0.6 and placed[3].phenotype[PHENOTYPE_NAMES.index("age")] < ADULT_AGE


def test_a_fixed_cameras_frame_floor_is_scaled_as_a_group_of_adults_before_pooling(recoverer, monkeypatch):
    """``track`` on a fixed camera with ``auto``: the frame's people are placed as read, and the
    floor they place goes into the clip's pool at the height a group of adults gives it."""
    from metrichmsr.population import adult_group_scale
    from metrichmsr.result import RecoveryResult
    from metrichmsr.scene.floor import standing_on

    monkeypatch.setattr(recoverer, "population", "auto")
    people, K, image = _adults_with_feet_below(recoverer, [1.5, 1.5, 1.5], [4.0, 6.0, 8.0])
    placed, floor, contacts = recoverer.stand_on_floor(people, image, K, adults_by_floor=False)
    assert [p.population_scale for p in placed] == [1.0] * 3
    result = RecoveryResult(image, "", None, people=placed, floor=floor)
    scale = adult_group_scale(np.array([p.height_m for p in placed]), standing_on(floor, contacts))
    assert scale != pytest.approx(1.0, abs=1e-3)
    assert recoverer._adults_floor(result, contacts).camera_height_m == pytest.approx(floor.camera_height_m * scale)
    monkeypatch.setattr(recoverer, "population", "all")
    assert recoverer._adults_floor(result, contacts) is floor


def test_people_on_one_floor_are_moved_toward_the_depth_their_feet_agree_on(recoverer, monkeypatch):
    """Three adults on one floor, read 10% too far, 8% too near and right: their feet lie 1.1,
    0.92 and 1.0 times 1.5 m below the camera. The floor says how each is off against the
    others (taken as read: ``auto`` would first make them the adults the test above makes)."""
    monkeypatch.setattr(recoverer, "population", "all")
    people, K, image = _adults_with_feet_below(recoverer, [1.65, 1.38, 1.5], [6.6, 4.6, 5.0])
    placed, floor, contacts = recoverer.stand_on_floor(people, image, K)
    scales = np.array([p.shared_floor_scale for p in placed])
    assert scales[0] < 0.95 and scales[1] > 1.05 and [p.floor_scale for p in placed] == [1.0] * 3
    for before, after, scale in zip(people, placed, scales):
        np.testing.assert_allclose(after.translation, scale * before.translation, rtol=1e-5)
        # The same adult, taller or shorter: only Anny's height parameter changed.
        assert after.height_m == pytest.approx(scale * before.height_m, abs=0.01)
        changed = np.flatnonzero(~np.isclose(after.phenotype, before.phenotype))
        assert set(changed) <= {PHENOTYPE_NAMES.index("height")}
    below = -(contacts @ floor.up)
    assert np.ptp(below) < 0.35 * np.ptp([1.65, 1.38, 1.5])  # their feet now nearly agree
    assert json.loads(json.dumps(placed[0].to_json()))["shared_floor_scale"] == pytest.approx(scales[0], abs=1e-4)


def test_a_known_camera_height_places_one_person(recoverer):
    """One adult read 10% too far: their feet lie 1.65 m below a camera that is 1.5 m up.
    Alone they have nobody to agree with; the camera's known height is enough."""
    people, K, image = _adults_with_feet_below(recoverer, [1.65], [5.5])
    placed, floor, _ = recoverer.stand_on_floor(people, image, K)
    assert placed == people and floor.height_source == "people"
    placed, floor, contacts = recoverer.stand_on_floor(people, image, K, camera_height_m=1.5)
    assert floor.camera_height_m == 1.5 and floor.height_source == "user"
    pull = shared_floor_pull(1.5)
    assert placed[0].shared_floor_scale == pytest.approx(1.1**-pull, rel=0.02)
    assert placed[0].height_m == pytest.approx(placed[0].shared_floor_scale * people[0].height_m, abs=0.01)
    # 0.86 of the way onto it (1.1**0.14 = 1.013), give or take the re-posed legs' length
    assert 1.0 < floor.below_ratio(contacts[0]) < 1.03
    with pytest.raises(InputError, match="camera height"):
        recoverer.infer(image, K=K, camera_height_m=-1.0)


def test_recover_names_who_was_brought_onto_the_floor(tmp_path, monkeypatch, capsys):
    """The sample photo has nobody sunk below the floor or floating above it; two people are marked as if they were."""

    from metrichmsr import cli
    from metrichmsr.pipeline import Recoverer

    placed = Recoverer.stand_on_floor

    def two_moved(self, people, image, K, camera_height_m=None, lines=None, **kwargs):
        people, floor, contacts = placed(self, people, image, K, camera_height_m, lines, **kwargs)
        return [replace(p, floor_scale={1: 0.5, 2: 1.8}.get(p.id, 1.0)) for p in people], floor, contacts

    monkeypatch.setattr(Recoverer, "stand_on_floor", two_moved)
    out = tmp_path / "out"
    assert cli.main(["recover", str(REPO / "assets" / "sample.jpg"), "-o", str(out), "--depth", "none"]) == 0
    said = capsys.readouterr().out
    assert "(brought nearer onto the others' floor, as children: person 1)" in said
    assert "(brought farther onto the floor: person 2)" in said
    people = json.loads((out / "result.json").read_text())["people"]
    assert [p["floor_scale"] for p in people[:4]] == [1.0, 0.5, 1.8, 1.0]


def test_recover_places_the_floor_at_the_given_camera_height(tmp_path, capsys):
    from metrichmsr import cli

    out = tmp_path / "out"
    assert cli.main(["recover", str(REPO / "assets" / "sample.jpg"), "-o", str(out), "--camera-height", "1.25"]) == 0
    assert "unused" not in capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    floor = result["scene"]["floor"]
    assert floor["camera_height_m"] == 1.25 and floor["camera_height_source"] == "user"
    assert any(p["shared_floor_scale"] != 1.0 for p in result["people"])


def test_recover_says_when_the_camera_height_went_unused(tmp_path, monkeypatch, capsys):
    """People found, but none the floor could be placed under (as if all were specks)."""
    from metrichmsr import cli
    from metrichmsr.pipeline import Recoverer

    def no_floor(self, people, image, K, camera_height_m=None, lines=None, **kwargs):
        return people, None, None

    monkeypatch.setattr(Recoverer, "stand_on_floor", no_floor)
    args = [
        "recover",
        str(REPO / "assets" / "sample.jpg"),
        "-o",
        str(tmp_path / "out"),
        "--depth",
        "none",
        "--camera-height",
        "1.5",
    ]
    assert cli.main(args) == 0
    assert "(--camera-height unused: no floor could be placed under these people)" in capsys.readouterr().out


def test_recover_pools_one_camera_over_a_folder_and_warns_when_it_cannot_tell(tmp_path, capsys):
    """--same-camera: one focal length from every image's lines; an image without lines
    (and no K) gets the default, and a warning saying so."""
    from PIL import Image

    from _people_on_floor import ROOM_K, room_image
    from metrichmsr import cli

    photos = tmp_path / "photos"
    photos.mkdir()
    for name, pitch in (("a.png", 12.0), ("b.png", 18.0)):
        Image.fromarray(room_image(pitch, 3.0, K=ROOM_K)[0]).save(photos / name)
    assert cli.main(["recover", str(photos), "-o", str(tmp_path / "out"), "--same-camera", "--depth", "none"]) == 0
    assert "--same-camera: focal length" in capsys.readouterr().err
    cameras = [json.loads((tmp_path / "out" / stem / "result.json").read_text())["camera"] for stem in "ab"]
    assert cameras[0] == cameras[1]
    assert cameras[0]["source"] == "estimated" and "pooled over 2 of 2 images" in cameras[0]["note"]
    assert abs(cameras[0]["fx"] / ROOM_K[0, 0] - 1) < 0.04

    Image.new("RGB", (320, 240), (128, 128, 128)).save(tmp_path / "blank.png")
    assert cli.main(["recover", str(tmp_path / "blank.png"), "-o", str(tmp_path / "blank"), "--depth", "none"]) == 0
    assert "warning: blank.png: focal length unknown (no straight lines" in capsys.readouterr().err
