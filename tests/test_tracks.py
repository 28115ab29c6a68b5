"""tracks.json, tracks.csv and trajectories.png from synthetic tracked frames (no models): a
fixed camera's people end on the clip's final floor, one walker's broken tracks are joined and
smoothed whole, a moving camera's people keep each frame's floor, both documents follow
docs/tracks.schema.json, and the files are written atomically."""

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from metrichmsr.camera import Intrinsics
from metrichmsr.joints import JOINT_NAMES
from metrichmsr.result import PersonResult, RecoveryResult
from metrichmsr.scene.floor import FloorPlane, foot_contacts
from metrichmsr.tracks import ClipTracks, TrackedFrame

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "tracks.schema.json").read_text())
INTRINSICS = Intrinsics(500.0, 500.0, 159.5, 119.5, "user")
SOLE = {"ankle": 0.092, "big_toe": 0.019, "small_toe": 0.017, "heel": 0.036}  # above the sole, as scene.floor has it


def person(root: np.ndarray, floor_depth_m: float) -> PersonResult:
    """A standing person (joints straight below the hip midpoint ``root``) whose soles lie ``floor_depth_m`` below the camera."""
    joints = np.repeat(root[None], len(JOINT_NAMES), axis=0)
    for i, name in enumerate(JOINT_NAMES):
        part = name.partition("_")[2]  # "left_big_toe" -> "big_toe"; "nose" -> ""
        if part in SOLE:
            joints[i, 1] = floor_depth_m - SOLE[part]
    x, y, z = root
    box = np.array([(x - 0.3) / z, (y - 0.9) / z, (x + 0.3) / z, floor_depth_m / z]) * 500 + [159.5, 119.5, 159.5, 119.5]
    zeros = np.zeros(1)
    return PersonResult(0, box, 0.9, root, 1.7, joints, np.zeros((33, 3)), zeros, zeros, zeros, np.eye(3))


def tracked(index: int, roots, floor: FloorPlane, depth_m: float, on_floor: bool = True, ids=None) -> TrackedFrame:
    people = [person(np.asarray(r, float), depth_m) for r in roots]
    result = RecoveryResult(np.zeros((240, 320, 3), np.uint8), "", INTRINSICS, people=people, floor=floor)
    ids = np.arange(len(people)) if ids is None else np.asarray(ids)
    return TrackedFrame(index, index / 10.0, result, ids, floor, np.full(len(people), on_floor))


def test_a_fixed_camera_ends_on_the_final_floor(tmp_path):
    clip = ClipTracks(INTRINSICS, (320, 240), fps=10.0)
    early = FloorPlane.level(1.4)
    final = FloorPlane(np.array([0.0, -1.0, 0.0]), 1.5, height_source="video")
    for i in range(6):  # the first frames were placed on a floor 1.4 m down, the last on 1.5 m
        floor = early if i < 3 else final
        clip.add(tracked(i, [[0.1 * i, floor.camera_height_m - 0.9, 6.0]], floor, floor.camera_height_m))
    clip.finish()
    for frame in clip.frames:
        joints = frame.people[0].joints3d
        # To the millimetre: the scale moves the foot joints, the sole stays a fixed few cm below them.
        assert final.below_ratio(foot_contacts(joints[None], final.up))[0] == pytest.approx(1.0, abs=2e-3)
    out = clip.save(tmp_path / "out")
    document = json.loads((out / "tracks.json").read_text())
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(document)) == []
    assert document["floor"]["camera_height_m"] == 1.5 and document["floor"]["frames"] == 6
    assert [t["frames"] for t in document["tracks"]] == [6]
    written = sorted(p.name for p in out.iterdir())
    assert written == [".metrichmsr-output.json", "tracks.csv", "tracks.json", "trajectories.png", "view.html"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_a_clip_where_nobody_is_seen_still_writes_every_file(tmp_path):
    import pygltflib

    clip = ClipTracks(INTRINSICS, (320, 240), fps=10.0, formats=("glb", "bvh"))
    for i in range(3):
        clip.add(tracked(i, [], None, 1.5))
    out = clip.save(tmp_path / "out")
    document = json.loads((out / "tracks.json").read_text())
    assert document["tracks"] == [] and document["floor"] is None
    gltf = pygltflib.GLTF2.load(out / "scene.glb")
    assert [node.name for node in gltf.nodes] == ["camera"] and gltf.animations == []  # the camera alone
    assert sorted(p.name for p in out.iterdir()) == [
        ".metrichmsr-output.json",
        "scene.glb",
        "tracks.csv",
        "tracks.json",
        "trajectories.png",
        "view.html",
    ]


def test_a_walker_hidden_for_a_while_is_one_track_and_glimpses_and_phantoms_are_dropped():
    clip = ClipTracks(INTRINSICS, (320, 240), fps=10.0)
    floor = FloorPlane(np.array([0.0, -1.0, 0.0]), 1.5, height_source="video")
    rng = np.random.default_rng(5)
    for i in range(55):  # crossing 8 m ahead at 1 m/s; hidden from 2 to 3.5 s, then a new track
        root = np.array([-2.5 + 0.1 * i, 0.6, 8.0]) + rng.normal(0, 0.03, 3) * [1, 0, 1]
        roots, ids = ([] if 20 <= i < 35 else [root]), ([] if 20 <= i < 35 else [0 if i < 20 else 1])
        if i == 40:  # seen once, never again
            roots, ids = roots + [[1.5, 0.6, 5.0]], ids + [2]
        if 5 <= i < 15:  # a coat on the floor, 0.25 m tall: no person
            roots, ids = roots + [[1.0, 1.3, 6.0]], ids + [3]
        frame = tracked(i, roots, floor, 1.5, ids=ids)
        for person, track_id in zip(frame.result.people, ids):
            if track_id == 3:
                person.bbox[1] = person.bbox[3] - 500 * 0.25 / 6.0
        clip.add(frame)
    offsets = {id(p): p.joints3d - p.translation for frame in clip.frames for p in frame.people}
    clip.finish()
    people = [p for frame in clip.frames for p in frame.people]
    assert {p.track_id for p in people} == {0} and len(people) == 40
    for p in people:  # smoothing moved each body whole
        assert np.allclose(p.joints3d - p.translation, offsets[id(p)])
    steps = np.diff([p.translation[0] for p in people[:20]])
    assert np.std(steps) < 0.5 * 0.03 * np.sqrt(2)  # the frame-to-frame noise mostly gone


def test_a_moving_camera_keeps_each_frames_floor(tmp_path):
    clip = ClipTracks(INTRINSICS, (320, 240), fps=10.0, static_camera=False)
    floors = [FloorPlane.level(1.2), FloorPlane.level(1.6), None]
    for i, floor in enumerate(floors):
        clip.add(tracked(i, [[1.0, 0.5, 5.0], [-1.0, 0.5, 8.0]], floor, 1.4, on_floor=False))
    clip.finish()
    document = clip.to_json()
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(document)) == []
    assert document["floor"] is None and document["static_camera"] is False
    assert [f["floor"]["camera_height_m"] if f["floor"] else None for f in document["frames"]] == [1.2, 1.6, None]
    assert document["frames"][0]["people"][0]["floor_xy_m"] == pytest.approx([1.0, 5.0])
    assert document["frames"][2]["people"][0]["floor_xy_m"] is None
    clip.save(tmp_path / "moving")  # no floor in the last frame: still drawn and written
    assert (tmp_path / "moving" / "trajectories.png").stat().st_size > 0
