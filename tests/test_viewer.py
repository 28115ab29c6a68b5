"""The viewer: view.html's content, `metrichmsr view`, and the page in a real headless browser
(Debian's chromium driven by playwright; those tests are skipped where it is missing)."""

import base64
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from metrichmsr.bench.viewer import browser_missing, canvas_image, open_page
from metrichmsr.errors import InputError
from metrichmsr.joints import JOINT_NAMES
from metrichmsr.viewer import folder_view_html, page_glb, view_html
from test_cli import EXIT_INPUT_ERROR, run_cli

ROOT = Path(__file__).resolve().parents[1]
needs_browser = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))


@pytest.fixture(scope="module")
def recovered(tmp_path_factory):
    """`recover` on the left 320 px of the sample photo (a few people, a floor), with its photo."""
    root = tmp_path_factory.mktemp("viewer")
    photo = np.asarray(Image.open(ROOT / "assets" / "sample.jpg").convert("RGB"))[:, :320]
    Image.fromarray(photo).save(root / "crop.png")
    out = root / "out"
    done = run_cli("recover", root / "crop.png", "-o", out, "--fov", "60", timeout=300)
    assert done.returncode == 0, done.stderr
    return out, photo, json.loads((out / "result.json").read_text())


def tracks_document() -> dict:
    """A tracks.json of one person walking 1 m to the right over 3 frames, 5 m ahead."""
    frames = []
    for index in range(3):
        x = -0.5 + 0.5 * index
        joints = {
            name: [x + 0.1 * ("left" in name) - 0.1 * ("right" in name), 0.7 - 0.05 * i, 5.0]
            for i, name in enumerate(JOINT_NAMES)
        }
        person = {"track_id": 7, "bbox": [0, 0, 1, 1], "score": 0.9, "translation": [x, 0.0, 5.0], "height_m": 1.7,
                  "floor_xy_m": [x, 5.0], "on_floor": True, "joints3d": joints}  # fmt: skip
        frames.append({"index": index, "time_s": index / 5, "people": [person]})
    return {
        "schema": "metrichmsr.tracks/1",
        "input": {"path": "walk.mp4", "width": 320, "height": 240, "every": 1},
        "camera": {"fx": 300.0, "fy": 300.0, "cx": 159.5, "cy": 119.5, "source": "user"},
        "fps": 5.0,
        "static_camera": True,
        "floor": {"up": [0.0, -1.0, 0.0], "camera_height_m": 1.0, "up_source": "people", "camera_height_source": "video"},
        "tracks": [{"track_id": 7, "first_frame": 0, "last_frame": 2, "frames": 3, "height_m": 1.7}],
        "frames": frames,
    }


def _small_scene_glb() -> bytes:
    """scene.glb of a 160x120 grey photo with nobody in it (fx = fy = 150 px, the centre):
    the camera and the photo's plane."""
    from metrichmsr.scene.export import write_scene_glb

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scene.glb"
        K = np.array([[150.0, 0, 79.5], [0, 150.0, 59.5], [0, 0, 1]])
        write_scene_glb(path, [], K, (160, 120), image=np.full((120, 160, 3), 90, np.uint8))
        return path.read_bytes()


def test_the_page_holds_its_data_and_nothing_ends_its_scripts_early():
    result = {"image": {"path": "photos/a<b>&c.jpg", "width": 4, "height": 3}, "people": [], "note": "</script><script>alert(1)"}
    glb = _small_scene_glb()
    page = view_html(result=result, scene_glb=glb)
    assert page.count("</script>") == 4  # result, tracks, scene, the viewer
    data = re.search(r'<script id="metrichmsr-result" type="application/json">(.*?)</script>', page, re.S).group(1)
    assert json.loads(data) == result
    assert "<title>a&lt;b&gt;&amp;c.jpg · metrichmsr</title>" in page  # the file name, escaped
    scene = re.search(r'<script id="metrichmsr-scene" type="application/octet-stream">(.*?)</script>', page, re.S).group(1)
    assert base64.b64decode(scene) == page_glb(glb)
    assert "{{" not in page.replace(json.dumps(result), "")
    with pytest.raises(ValueError):
        view_html()
    with pytest.raises(ValueError):
        view_html(result=result, tracks=tracks_document())


def placed_positions(gltf) -> dict[str, np.ndarray]:
    """Each plain (unskinned) mesh node's vertices placed by the node, (V, 3) metres, the
    glTF frame: float or normalized 16-bit positions (KHR_mesh_quantization) alike."""
    import pygltflib

    blob, placed = gltf.binary_blob(), {}
    for node in gltf.nodes:
        if node.mesh is None or node.skin is not None:
            continue
        accessor = gltf.accessors[gltf.meshes[node.mesh].primitives[0].attributes.POSITION]
        view = gltf.bufferViews[accessor.bufferView]
        start = (view.byteOffset or 0) + (accessor.byteOffset or 0)
        if accessor.componentType == pygltflib.FLOAT:
            stored = np.frombuffer(blob, np.float32, accessor.count * 3, start).reshape(-1, 3).astype(float)
        else:
            assert accessor.componentType == pygltflib.SHORT and accessor.normalized and view.byteStride == 8
            stored = np.frombuffer(blob, np.int16, accessor.count * 4, start).reshape(-1, 4)[:, :3] / 32767
        placed[node.name] = stored * (node.scale or [1.0] * 3) + (node.translation or [0.0] * 3)
    return placed


def test_the_page_copy_of_scene_glb_is_the_same_scene_in_fewer_bytes(recovered):
    """page_glb: no normals (the page computes them), plain meshes' positions in 16 bits to a
    tenth of a millimetre, every node, name, material and the photo kept, and a glb that
    reads back."""
    import pygltflib

    out, _, result = recovered
    glb = (out / "scene.glb").read_bytes()
    light = page_glb(glb)
    original, copy = pygltflib.GLTF2.load_from_bytes(glb), pygltflib.GLTF2.load_from_bytes(light)
    assert len(light) < 0.6 * len(glb)  # a person: 8 bytes a vertex, not 24; the triangles, shared, stay
    assert "KHR_mesh_quantization" in copy.extensionsRequired
    assert [n.name for n in copy.nodes] == [n.name for n in original.nodes]
    assert {f"person_{i}" for i in range(len(result["people"]))} <= {n.name for n in copy.nodes}
    assert [m.name for m in copy.materials] == [m.name for m in original.materials]
    assert all(p.attributes.NORMAL is None for mesh in copy.meshes for p in mesh.primitives)
    assert all(p.attributes.NORMAL is not None for mesh in original.meshes for p in mesh.primitives)
    before, after = placed_positions(original), placed_positions(copy)
    assert before.keys() == after.keys() and len(before) >= len(result["people"]) + 2
    for name, vertices in before.items():
        assert np.abs(after[name] - vertices).max() < 1e-4, name
    assert _photo_bytes(copy) == _photo_bytes(original)


def _photo_bytes(gltf) -> bytes:
    view = gltf.bufferViews[gltf.images[0].bufferView]
    return gltf.binary_blob()[view.byteOffset : view.byteOffset + view.byteLength]


def test_a_folder_without_results_is_refused(tmp_path):
    with pytest.raises(InputError, match="not a metrichmsr output folder"):
        folder_view_html(tmp_path)
    for argv, words in (
        ([tmp_path / "missing"], "no such folder"),
        ([tmp_path], "no view.html, result.json or tracks.json"),
        ([tmp_path, "--port", "70000"], "--port"),
    ):
        done = run_cli("view", *argv, "--no-browser")
        assert done.returncode == EXIT_INPUT_ERROR and done.stderr.count("\n") == 1 and words in done.stderr, done.stderr


def _serve(folder: Path):
    server = subprocess.Popen(
        [sys.executable, "-m", "metrichmsr", "view", str(folder), "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stdout.readline().startswith(f"serving {folder}")
    return server, server.stdout.readline().strip()


def test_view_serves_the_page_and_makes_one_for_an_older_folder(recovered, tmp_path):
    out, _, result = recovered
    older = tmp_path / "older"
    shutil.copytree(out, older)
    (older / "view.html").unlink()  # written before recover wrote pages
    for folder in (out, older):
        server, url = _serve(folder)
        try:
            assert url.endswith("/view.html")
            page = urllib.request.urlopen(url, timeout=30).read().decode()
            assert json.dumps(result["camera"], separators=(",", ":")) in page
            assert urllib.request.urlopen(url.replace("view.html", "result.json"), timeout=30).read()
        finally:
            server.send_signal(signal.SIGINT)  # Ctrl-C: how the server is meant to stop
            assert server.wait(timeout=30) == 0, server.stderr.read()
    assert not (older / "view.html").exists()  # served from memory: nothing written into the folder


def _overlay_silhouettes(out: Path, photo: np.ndarray) -> np.ndarray:
    """Where overlay.png differs from the photo: the people as the renderer drew them."""
    overlay = np.asarray(Image.open(out / "overlay.png").convert("RGB")).astype(int)
    return np.abs(overlay - photo.astype(int)).max(axis=2) > 0


@needs_browser
def test_the_page_lines_up_with_the_photo_and_measures_in_metres(recovered):
    out, photo, result = recovered
    height, width = photo.shape[:2]
    people = result["people"]
    assert people, "the crop holds people"
    with open_page(out / "view.html", width, height) as (page, problems):
        state = page.evaluate("({ready: window.metrichmsrViewer.ready, n: window.metrichmsrViewer.peopleCount})")
        assert state == {"ready": True, "n": len(people)}

        # The camera's view, people only: where the overlay drew them (viewport = photo size).
        page.evaluate("window.metrichmsrViewer.setSilhouettes(true)")
        drawn = canvas_image(page).max(axis=2) > 127
        assert drawn.shape == (height, width)
        expected = _overlay_silhouettes(out, photo)
        iou = (drawn & expected).sum() / (drawn | expected).sum()
        assert iou >= 0.8, f"silhouette IoU {iou:.3f}"
        page.evaluate("window.metrichmsrViewer.setSilhouettes(false)")

        # A click on the nearest person's hips names them (the panels put away first: the page is small).
        page.keyboard.press("h")
        fx, fy, cx, cy = (result["camera"][k] for k in ("fx", "fy", "cx", "cy"))
        nearest = min(people, key=lambda p: p["translation"][2])
        x, y, z = nearest["translation"]
        page.mouse.click(fx * x / z + cx + 0.5, fy * y / z + cy + 0.5)
        assert f"person {nearest['id']}" in page.text_content("#info")

        # The ruler: two clicks on bare floor, the distance between the floor points those pixels see.
        floor = result["scene"]["floor"]
        up, camera_height = np.array(floor["up"]), floor["camera_height_m"]
        free = ~expected
        v = height - 6
        u0, u1 = (
            next(u for u in columns if free[v - 3 : v + 4, u - 3 : u + 4].all())
            for columns in (range(6, width), range(width - 7, 0, -1))
        )
        points = []
        for u in (u0, u1):
            ray = np.array([(u - cx) / fx, (v - cy) / fy, 1.0])
            assert ray @ up < 0, "the bottom row of the photo sees the floor"
            points.append(ray * camera_height / -(ray @ up))
        page.keyboard.press("r")
        for u in (u0, u1):
            page.mouse.click(u + 0.5, v + 0.5)
        measured = float(page.text_content("#ruler-readout").split()[0])
        assert measured == pytest.approx(np.linalg.norm(points[1] - points[0]), rel=0.01)
        assert problems == []


@needs_browser
def test_a_track_page_plays_its_timeline(tmp_path):
    (tmp_path / "view.html").write_text(view_html(tracks=tracks_document()))
    with open_page(tmp_path / "view.html", 320, 240) as (page, problems):
        assert page.evaluate("window.metrichmsrViewer.peopleCount") == 1
        assert "frame 0" in page.inner_text("#time") and page.is_visible("#timeline-bar")
        first = canvas_image(page)
        page.click("#play")
        page.wait_for_function("document.querySelector('#time').textContent.includes('frame 2')", timeout=10_000)
        assert page.inner_text("#play") == "Play"  # stopped at the end
        # The skeleton walked right: the picture changed.
        assert np.abs(canvas_image(page).astype(int) - first.astype(int)).max() > 50
        assert problems == []


@needs_browser
def test_a_result_with_nobody_and_no_scene_opens(tmp_path):
    result = {
        "schema": "metrichmsr.result/1",
        "image": {"path": "empty.png", "width": 160, "height": 120},
        "camera": {"fx": 150.0, "fy": 150.0, "cx": 79.5, "cy": 59.5, "source": "user"},
        "people": [],
    }
    (tmp_path / "view.html").write_text(view_html(result=result, scene_glb=_small_scene_glb()))
    with open_page(tmp_path / "view.html", 400, 300) as (page, problems):
        assert page.evaluate("window.metrichmsrViewer.ready") and page.evaluate("window.metrichmsrViewer.peopleCount") == 0
        assert page.is_hidden("#people-panel") and page.is_hidden("label:has([data-layer=grid])")  # no floor: no grid
        page.keyboard.press("c")  # to the orbit and back
        page.keyboard.press("c")
        assert problems == []
