"""`metrichmsr track` as a user runs it: bad input fails before torch loads with one line and
nothing written; a tiny clip gives tracks.json by its schema (docs/tracks.schema.json), with
ids that persist, tracks.csv and trajectories.png."""

import copy
import csv
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from _schema import problems, schema_validator
from test_cli import EXIT_INPUT_ERROR, blank_png, run_cli, snapshot
from test_viewer import needs_browser

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workspace(tmp_path):
    w = SimpleNamespace(root=tmp_path)
    w.missing = tmp_path / "missing.mp4"
    w.text_video = tmp_path / "notes.mp4"
    w.text_video.write_text("not a video\n")
    w.text = tmp_path / "notes.txt"
    w.text.write_text("not a video\n")
    w.frames = tmp_path / "frames"
    w.frames.mkdir()
    for i in range(3):
        blank_png(w.frames / f"f{i:03d}.png")
    w.empty = tmp_path / "empty"
    w.empty.mkdir()
    w.theirs = tmp_path / "theirs"
    w.theirs.mkdir()
    (w.theirs / "thesis.txt").write_text("keep me")
    w.out = tmp_path / "out"
    return w


BAD_INPUT = {
    "missing file": lambda w: ["track", w.missing, "-o", w.out],
    "a text file named .mp4": lambda w: ["track", w.text_video, "-o", w.out],
    "not a video suffix": lambda w: ["track", w.text, "-o", w.out],
    "folder without frames": lambda w: ["track", w.empty, "-o", w.out],
    "output inside the input folder": lambda w: ["track", w.frames, "-o", w.frames / "out"],
    "output holds the user's files": lambda w: ["track", w.frames, "-o", w.theirs, "--overwrite"],
    "--every 0": lambda w: ["track", w.frames, "-o", w.out, "--every", "0"],
    "--fps negative": lambda w: ["track", w.frames, "-o", w.out, "--fps", "-5"],
    "--intrinsics 3 numbers": lambda w: ["track", w.frames, "-o", w.out, "--intrinsics", "1,2,3"],
    "--camera-height 1000": lambda w: ["track", w.frames, "-o", w.out, "--camera-height", "1000"],
    "--format fbx": lambda w: ["track", w.frames, "-o", w.out, "--format", "glb,fbx"],
    "--detect-every 0": lambda w: ["track", w.frames, "-o", w.out, "--detect-every", "0"],
    "--detect-every 2.5": lambda w: ["track", w.frames, "-o", w.out, "--detect-every", "2.5"],
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_fails_before_torch_with_one_line(workspace, case):
    """Exit 2, one line on stderr, nothing written or touched, torch not even imported."""
    argv = [str(arg) for arg in BAD_INPUT[case](workspace)]
    before = snapshot(workspace.root)
    code = f"import sys; from metrichmsr.cli import main; rc = main({argv!r}); print(rc, 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == [str(EXIT_INPUT_ERROR), "False"], done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("metrichmsr: error: "), done.stderr
    assert snapshot(workspace.root) == before


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 4-frame .avi: two people of the sample photo, the view panning 8 px a frame, then a
    grey frame with nobody; tracked (frames 1-3 follow frame 0's people: ``--detect-every`` 10),
    with the animated scene.glb, a BVH file per track and overlay.mp4."""
    import cv2

    root = tmp_path_factory.mktemp("track")
    photo = np.asarray(Image.open(ROOT / "assets" / "sample.jpg").convert("RGB"))
    video = root / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (256, photo.shape[0]))
    for shift in (0, 8, 16):
        writer.write(cv2.cvtColor(np.ascontiguousarray(photo[:, shift : shift + 256]), cv2.COLOR_RGB2BGR))
    writer.write(np.full((photo.shape[0], 256, 3), 128, np.uint8))
    writer.release()
    out = root / "out"
    done = run_cli("track", video, "-o", out, "--fov", "60", "--format", "glb,bvh", "--overlay-video", timeout=300)
    return SimpleNamespace(out=out, done=done, document=json.loads((out / "tracks.json").read_text()), video=video)


@pytest.fixture(scope="module")
def validator():
    return schema_validator("tracks.schema.json")


def test_a_tiny_clip_is_tracked(clip, validator):
    assert clip.done.returncode == 0, clip.done.stderr
    assert "frames/s" in clip.done.stdout and "track(s)" in clip.done.stdout
    bvh = {f"track_{t['track_id']}.bvh" for t in clip.document["tracks"]}
    assert {p.name for p in clip.out.iterdir()} == {
        "tracks.json",
        "tracks.csv",
        "trajectories.png",
        "view.html",
        "scene.glb",
        "overlay.mp4",
        ".metrichmsr-output.json",
    } | bvh
    document = clip.document
    assert problems(validator, document) == []
    assert [f["index"] for f in document["frames"]] == [0, 1, 2, 3] and document["frames"][3]["people"] == []
    assert document["fps"] == 10.0 and document["frames"][2]["time_s"] == pytest.approx(0.2)
    assert document["population"] == "auto"
    floor = document["floor"]
    assert floor["camera_height_source"] == "video" and 0.5 < floor["camera_height_m"] < 3.0

    # The two people seen in every frame keep their ids, and stand where they stood (the view moved 8 px).
    first = {p["track_id"]: p for p in document["frames"][0]["people"]}
    assert len(first) >= 2
    for frame in document["frames"][1:3]:
        ids = [p["track_id"] for p in frame["people"]]
        assert len(ids) == len(set(ids))
        for person in frame["people"]:
            if person["track_id"] in first:
                moved = np.subtract(person["floor_xy_m"], first[person["track_id"]]["floor_xy_m"])
                assert np.linalg.norm(moved) < 0.5
    lasting = [t for t in document["tracks"] if t["frames"] == 3]
    assert len(lasting) >= 2 and {t["track_id"] for t in lasting} <= set(first)


def test_the_overlay_video_draws_the_people_on_each_frame(clip):
    """overlay.mp4: one frame per recovered frame at the clip's rate; the frames with people
    differ from the input where their boxes are, the empty grey one does not."""
    import cv2

    def frames(path):
        capture = cv2.VideoCapture(str(path))
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame.astype(int)

    overlay = cv2.VideoCapture(str(clip.out / "overlay.mp4"))
    assert overlay.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
    pairs = list(zip(frames(clip.video), frames(clip.out / "overlay.mp4"), clip.document["frames"], strict=True))
    for source, drawn, record in pairs:
        changed = np.abs(drawn - source).max(axis=2) > 40  # well above the two codecs' noise
        boxes = np.zeros_like(changed)
        for person in record["people"]:
            x0, y0, x1, y1 = np.round(person["bbox"]).astype(int)
            boxes[max(y0, 0) : y1, max(x0, 0) : x1] = True
        if record["people"]:
            assert changed[boxes].mean() > 0.2 and changed[~boxes].mean() < 0.1, f"frame {record['index']}"
        else:
            assert changed.mean() < 0.01


def test_the_csv_matches_the_json(clip):
    with open(clip.out / "tracks.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    people = [(f, p) for f in clip.document["frames"] for p in f["people"]]
    assert len(rows) == len(people)
    for row, (frame, person) in zip(rows, people):
        assert int(row["frame"]) == frame["index"] and int(row["track_id"]) == person["track_id"]
        assert [float(row["x_m"]), float(row["y_m"])] == pytest.approx(person["floor_xy_m"], abs=1e-3)
        assert [float(row[f"cam_{a}_m"]) for a in "xyz"] == pytest.approx(person["translation"], abs=1e-3)
        assert row["on_floor"] == str(int(person["on_floor"]))


@pytest.mark.parametrize(
    "break_it",
    [
        lambda d: d.update(schema="metrichmsr.tracks/2"),
        lambda d: d.pop("fps"),
        lambda d: d["floor"].update(camera_height_m=-1.0),
        lambda d: d["frames"][0]["people"][0].pop("track_id"),
        lambda d: d["frames"][0]["people"][0].update(translation=[1.0, 2.0]),
        lambda d: d["frames"][0]["people"][0]["joints3d"].pop("left_heel"),
        lambda d: d["camera"].update(source="guess"),
    ],
    ids=["other schema", "no fps", "negative height", "no track id", "translation of 2", "joint missing", "camera source"],
)
def test_a_broken_document_fails(clip, validator, break_it):
    broken = copy.deepcopy(clip.document)
    break_it(broken)
    assert problems(validator, broken) != []


def test_each_track_is_a_bvh_at_the_clips_rate(clip):
    """bvhio reads each track_<id>.bvh: Anny's 104 bones, one frame per frame from the track's
    first to its last, 1 / fps apart."""
    bvhio = pytest.importorskip("bvhio")
    for track in clip.document["tracks"]:
        seen = [(f["index"], p) for f in clip.document["frames"] for p in f["people"] if p["track_id"] == track["track_id"]]
        bvh = bvhio.readAsBvh(str(clip.out / f"track_{track['track_id']}.bvh"))
        assert bvh.FrameCount == seen[-1][0] - seen[0][0] + 1 and bvh.FrameTime == pytest.approx(0.1)
        assert len(bvh.Root.layout()) == 104 and bvh.Root.Name == "root"


def test_scene_glb_plays_each_track(clip, body_model):
    """scene.glb's animation at each frame's time, skinned, gives tracks.json's joints: within
    a few millimetres at a track's first frame (the body its skeleton is; the pose smoothing
    averages the joints' positions and the bones' rotations, which agree to second order:
    measured 4 mm); later frames are that body in their pose and at their height, off by how
    much the frame's own body differs in its proportions (measured: up to 16 mm)."""
    import pygltflib

    from metrichmsr.bench.rig_roundtrip import track_joint_errors_mm
    from metrichmsr.viewer import page_glb

    glb = (clip.out / "scene.glb").read_bytes()
    for gltf in (pygltflib.GLTF2.load_from_bytes(glb), pygltflib.GLTF2.load_from_bytes(page_glb(glb))):  # and view.html's copy
        errors = track_joint_errors_mm(gltf, clip.document, body_model.keypoints)
        assert sorted(errors) == [t["track_id"] for t in clip.document["tracks"]]
        assert max(mm[0] for mm in errors.values()) <= 10.0
        assert max(mm.max() for mm in errors.values()) <= 30.0


@needs_browser
def test_the_track_page_animates_the_people_where_the_video_saw_them(clip):
    """view.html plays scene.glb's animation: in the camera's view at each frame's time, the
    bodies stand in that frame's boxes."""
    from metrichmsr.bench.viewer import canvas_image, open_page

    document = clip.document
    width, height = document["input"]["width"], document["input"]["height"]
    with open_page(clip.out / "view.html", width, height) as (page, problems):
        assert page.evaluate("window.metrichmsrViewer.peopleCount") == len(document["tracks"])
        page.evaluate("window.metrichmsrViewer.setSilhouettes(true)")
        for frame in document["frames"]:
            page.evaluate(f"window.metrichmsrViewer.showFrame({frame['index']})")
            drawn = canvas_image(page).max(axis=2) > 127
            boxes = np.zeros_like(drawn)
            for person in frame["people"]:
                x0, y0, x1, y1 = np.round(person["bbox"]).astype(int)
                boxes[max(y0, 0) : y1, max(x0, 0) : x1] = True
            if not frame["people"]:
                assert not drawn.any(), f"frame {frame['index']}: nobody was seen, nobody is shown"
                continue
            inside = (drawn & boxes).sum() / drawn.sum()
            assert inside >= 0.9, f"frame {frame['index']}: {inside:.2f} of the bodies inside the boxes"
        assert problems == []
