"""result.json as `recover` writes it validates against the published schema, docs/result.schema.json
(the output contract, docs/output.md): with people and the planar scene, with a depth map the
people correct, with no scene, and with nobody in the photo. A broken document does not."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _people_on_floor import ROOM_K, room_image
from _schema import problems, schema_validator


@pytest.fixture(scope="module")
def validator():
    return schema_validator("result.schema.json")


@pytest.fixture(scope="module")
def scene(body_model, session_renderer):
    """A held-out synthetic room with three people 2-6 m away (as the benchmark renders them)."""
    from metrichmsr.synth import HELD_OUT_SEED_START, SceneConfig, sample_scene

    config = SceneConfig(long_side_px=640, people=(3, 3), distance_m=(2.0, 6.0), fov_deg=(50.0, 70.0), min_separation_m=1.5)
    return sample_scene(body_model, session_renderer, HELD_OUT_SEED_START + 11, config)


@pytest.fixture(scope="module")
def outputs(scene, tmp_path_factory):
    """Output folders written by one Recoverer: name -> folder."""
    from metrichmsr import Recoverer
    from metrichmsr.scene.depth import depth_backend

    root = tmp_path_factory.mktemp("result_schema")
    photo = root / "room.png"
    Image.fromarray(scene.image).save(photo)
    nobody = root / "sky.png"
    sky = np.tile(np.linspace([90, 140, 210], [170, 200, 235], 240)[:, None], (1, 320, 1))
    Image.fromarray(sky.astype(np.uint8)).save(nobody)
    lines = root / "lines.png"
    Image.fromarray(room_image(14.0, 4.0, K=ROOM_K)[0]).save(lines)
    monocular = root / "mono.npy"
    np.save(monocular, scene.depth_m * 1.3 + 0.2)  # a depth map off in scale and shift

    folders = {}
    with Recoverer(device="cpu") as recoverer:
        for name, image, spec, K in [
            ("planar", photo, "planar", scene.K),
            ("file", photo, f"file:{monocular}", scene.K),
            ("none", photo, "none", scene.K),
            ("nobody", nobody, "planar", None),
            ("lines, no K", lines, "none", None),
        ]:
            recoverer.depth = depth_backend(spec)
            result = recoverer.infer(str(image), K=K)
            folders[name] = recoverer.save(result, root / name)
    return folders


def read(folder: Path) -> dict:
    return json.loads((folder / "result.json").read_text())


def test_people_with_the_planar_scene(validator, outputs):
    document = read(outputs["planar"])
    assert problems(validator, document) == []
    assert len(document["people"]) >= 2 and "floor" in document["scene"]
    assert {p.name for p in outputs["planar"].iterdir()} >= {"result.json", "scene.glb", "overlay.png", "depth.npy", "depth.png"}


def test_people_correcting_a_depth_map(validator, outputs):
    document = read(outputs["file"])
    assert problems(validator, document) == []
    assert document["scene"]["backend"].startswith("file:") and "refinement" in document["scene"]


def test_no_scene(validator, outputs):
    document = read(outputs["none"])
    assert problems(validator, document) == []
    assert "scene" not in document and document["people"]


def test_nobody_in_the_photo(validator, outputs):
    document = read(outputs["nobody"])
    assert problems(validator, document) == []
    assert document["people"] == [] and "no_depth" in document["scene"]


def test_the_camera_estimated_from_lines_or_the_default_with_why(validator, outputs):
    estimated = read(outputs["lines, no K"])["camera"]
    assert problems(validator, read(outputs["lines, no K"])) == []
    assert estimated["source"] == "estimated" and "vertical" in estimated["note"]
    true_fov = 2 * np.degrees(np.arctan(320 / ROOM_K[0, 0]))
    assert abs(estimated["fov_deg"] - true_fov) < 2.0
    low, high = estimated["fov_deg_68"]
    assert low < estimated["fov_deg"] < high
    default = read(outputs["nobody"])["camera"]
    assert default["source"] == "default" and default["fov_deg"] == 60.0 and "no straight lines" in default["note"]


@pytest.mark.parametrize(
    "break_it",
    [
        lambda d: d.pop("schema"),
        lambda d: d.update(schema="metrichmsr.result/2"),
        lambda d: d["people"][0].update(translation=d["people"][0]["translation"][:2]),
        lambda d: d["people"][0]["joints3d"].pop("left_hip"),
        lambda d: d["people"][0]["keypoints2d"].update(nose=[1.0, 2.0]),
        lambda d: d["people"][0].update(bbox=[0, 0, 10]),
        lambda d: d["camera"].update(source="guess"),
        lambda d: d["scene"]["floor"].update(camera_height_m="1.6"),
    ],
    ids=[
        "no schema",
        "other schema",
        "translation of 2",
        "joint missing",
        "keypoint of 2",
        "bbox of 3",
        "camera source",
        "height as text",
    ],
)
def test_a_broken_document_fails(validator, outputs, break_it):
    document = read(outputs["planar"])
    broken = copy.deepcopy(document)
    break_it(broken)
    assert problems(validator, broken) != []


def test_new_fields_are_allowed(validator, outputs):
    """Later versions may add fields; a reader of version 1 must not reject them."""
    document = read(outputs["planar"])
    document["tracks"] = []
    document["people"][0]["track_id"] = 7
    document["scene"]["floor"]["material"] = "tiles"
    assert problems(validator, document) == []
