"""glTF scene export: named person nodes in the (x, -y, -z) frame, camera frustum, image
plane, a valid glb and atomic writes."""

import json
import os
import struct

import numpy as np
import pytest
import trimesh

from metrichmsr.render import PALETTE, srgb_to_linear
from metrichmsr.scene.export import camera_frustum_mesh, write_scene_glb

K = np.array([[500.0, 0.0, 159.5], [0.0, 500.0, 119.5], [0.0, 0.0, 1.0]])
SIZE = (320, 240)


def people():
    """Two small bodies in the OpenCV camera frame: an icosphere and a box (no duplicate
    vertices, so loading does not merge any)."""
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.3)
    cube = trimesh.creation.box(extents=[0.4, 1.7, 0.3])
    return [
        (sphere.vertices + [-0.5, -0.2, 3.0], sphere.faces),
        (cube.vertices + [0.6, 0.1, 4.0], cube.faces),
    ]


def glb_json(path):
    """The JSON chunk of a glb, after checking the 12-byte header."""
    data = path.read_bytes()
    magic, version, length = struct.unpack("<4sII", data[:12])
    assert (magic, version, length) == (b"glTF", 2, len(data))
    chunk_length, chunk_type = struct.unpack("<I4s", data[12:20])
    assert chunk_type == b"JSON"
    return json.loads(data[20 : 20 + chunk_length])


def test_people_round_trip_in_gltf_frame(tmp_path):
    path = tmp_path / "scene.glb"
    write_scene_glb(path, people(), K, SIZE)
    gltf = glb_json(path)
    assert {n["name"] for n in gltf["nodes"]} == {"person_0", "person_1", "camera"}

    scene = trimesh.load(path)
    for name, (vertices, faces) in zip(["person_0", "person_1"], people()):
        transform, geometry = scene.graph[name]
        loaded = trimesh.transform_points(scene.geometry[geometry].vertices, transform)
        assert loaded.shape == vertices.shape
        np.testing.assert_allclose(loaded, vertices * [1, -1, -1], atol=1e-6)
        np.testing.assert_array_equal(scene.geometry[geometry].faces, faces)

    # Opaque PBR materials in the palette's colours (glTF colour factors are linear).
    materials = gltf["materials"]
    for i, material in enumerate(materials[:2]):
        assert material["alphaMode"] == "OPAQUE"
        factor = material["pbrMetallicRoughness"]["baseColorFactor"]
        np.testing.assert_allclose(factor[:3], srgb_to_linear(PALETTE[i]), atol=1 / 255)


def test_camera_frustum_in_front_of_camera(tmp_path):
    path = tmp_path / "scene.glb"
    write_scene_glb(path, people(), K, SIZE)
    scene = trimesh.load(path)
    transform, geometry = scene.graph["camera"]
    frustum = trimesh.transform_points(scene.geometry[geometry].vertices, transform)
    # glTF frame: the camera at the origin looking down -z; far plane at 0.5 m (+ tube radius).
    np.testing.assert_allclose(frustum[:, 2].min(), -0.5, atol=0.003)
    assert frustum[:, 2].max() <= 0.003


def test_camera_frustum_mesh_reaches_image_corners():
    depth = 2.0
    frustum = camera_frustum_mesh(K, SIZE, depth_m=depth)
    radius = depth / 200
    # Outer corners (pixel edges) at depth 2: x = (-0.5 - 159.5) / 500 * 2 = -0.64, etc.
    half_w, half_h = 160 / 500 * depth, 120 / 500 * depth
    np.testing.assert_allclose(
        frustum.bounds,
        [[-half_w, -half_h, 0.0], [half_w, half_h, depth]],
        atol=radius * 1.01,
    )
    with pytest.raises(ValueError, match="depth_m"):
        camera_frustum_mesh(K, SIZE, depth_m=0.0)


def test_image_plane_is_upright_textured_quad(tmp_path):
    W, H = 1600, 1200  # downscaled to 1024 x 768 in the file
    K_image = np.array([[1500.0, 0.0, 799.5], [0.0, 1500.0, 599.5], [0.0, 0.0, 1.0]])
    image = np.zeros((H, W, 3), np.uint8)
    image[: H // 2, : W // 2] = [255, 0, 0]  # top-left red, the rest black
    path = tmp_path / "scene.glb"
    write_scene_glb(path, people(), K_image, (W, H), image=image, names=["ann", "bob"])

    gltf = glb_json(path)
    assert [img["mimeType"] for img in gltf["images"]] == ["image/jpeg"]
    scene = trimesh.load(path)
    assert {"ann", "bob", "camera", "image_plane"} <= set(scene.graph.nodes_geometry)
    transform, geometry = scene.graph["image_plane"]
    plane = scene.geometry[geometry]
    texture = np.asarray(plane.visual.material.baseColorTexture.convert("RGB"))
    assert texture.shape == (768, 1024, 3)

    # The vertex at the top-left in glTF (x < 0, y > 0) samples the red corner of the texture.
    vertices = trimesh.transform_points(plane.vertices, transform)
    top_left = np.argmin(vertices[:, 0] - vertices[:, 1])
    u, v = plane.visual.uv[top_left]
    # trimesh's uv origin is the bottom-left of the image.
    pixel = texture[round((1 - v) * 767), round(u * 1023)]
    assert pixel[0] > 200 and pixel[1] < 50 and texture[-1, -1].max() < 50
    np.testing.assert_allclose(vertices[top_left], [-800 / 1500 * 0.5, 600 / 1500 * 0.5, -0.5])
    # Its front faces look back at the camera (+z in glTF).
    assert np.all(plane.face_normals @ transform[:3, :3].T @ [0, 0, 1] > 0.99)


def test_failed_write_leaves_previous_file_and_no_partial(tmp_path, monkeypatch):
    path = tmp_path / "scene.glb"
    write_scene_glb(path, people()[:1], K, SIZE)
    before = path.read_bytes()

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_scene_glb(path, people(), K, SIZE)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.glb"]


def test_rejects_bad_inputs(tmp_path):
    path = tmp_path / "scene.glb"
    (vertices, faces), other = people()
    with pytest.raises(ValueError, match=r"people\[0\] vertices"):
        write_scene_glb(path, [(vertices[:, :2], faces), other], K, SIZE)
    with pytest.raises(ValueError, match="K"):
        write_scene_glb(path, people(), K[:2], SIZE)
    with pytest.raises(ValueError, match="names"):
        write_scene_glb(path, people(), K, SIZE, names=["a", "a"])
    with pytest.raises(ValueError, match="names"):
        write_scene_glb(path, people(), K, SIZE, names=["camera", "b"])
    with pytest.raises(ValueError, match="colors"):
        write_scene_glb(path, people(), K, SIZE, colors=[(1.0, 0.0, 0.0)])
    with pytest.raises(ValueError, match="image"):
        write_scene_glb(path, people(), K, SIZE, image=np.zeros((10, 10, 3), np.uint8))
    assert not path.exists()


def test_depth_mesh_lifts_pixels_and_cuts_at_discontinuities():
    from metrichmsr.scene.export import depth_mesh

    depth = np.full((240, 320), 4.0, np.float32)
    depth[:, 160:] = 8.0  # a step: two walls, no surface between them
    depth[:20, :20] = np.nan  # unknown corner
    image = np.zeros((240, 320, 3), np.uint8)
    mesh = depth_mesh(depth, K, image, max_side=80)
    opencv = mesh.vertices * [1, -1, -1]  # back from glTF
    assert set(np.round(opencv[:, 2], 3)) == {4.0, 8.0}
    # Every vertex lies on its pixel's ray: x / z = (u - cx) / fx for some sampled pixel column.
    u = opencv[:, 0] / opencv[:, 2] * K[0, 0] + K[0, 2]
    np.testing.assert_allclose(u, np.round(u), atol=1e-6)
    face_z = opencv[mesh.faces, 2]
    assert np.all(face_z.max(1) == face_z.min(1))  # no triangle spans the step
    assert len(mesh.faces) > 2 * 70 * 50
    assert depth_mesh(np.full((240, 320), np.nan, np.float32), K, image) is None


def test_floor_mesh_lies_on_the_plane():
    from metrichmsr.scene.export import floor_mesh
    from metrichmsr.scene.floor import FloorPlane

    up = np.array([0.0, -np.cos(0.2), -np.sin(0.2)])
    floor = FloorPlane(up, 1.6)
    square = floor_mesh(floor, np.array([0.5, 0.0, 6.0]), half_size_m=3.0)
    np.testing.assert_allclose(floor.height_above(square.vertices), 0.0, atol=1e-9)
    assert square.area == pytest.approx(36.0)


def test_scene_glb_with_depth_and_floor(tmp_path):
    from metrichmsr.scene.export import write_depth_png
    from metrichmsr.scene.floor import FloorPlane

    depth = np.full((240, 320), 5.0, np.float32)
    image = np.full((240, 320, 3), 90, np.uint8)
    path = tmp_path / "scene.glb"
    write_scene_glb(path, people(), K, SIZE, image=image, scene_depth_m=depth, floor=FloorPlane.level(1.5))
    nodes = trimesh.load(path).graph.nodes_geometry
    assert {"person_0", "person_1", "camera", "image_plane", "scene", "floor"} <= set(nodes)
    write_depth_png(tmp_path / "depth.png", depth)
    assert (tmp_path / "depth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
