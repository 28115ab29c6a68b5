"""Renderer: metric depth, pinhole silhouettes (pixel-centre convention, axis flip), instance
ids, overlays, the reduced-size path for big images and a real Anny body."""

import itertools

import numpy as np
import pytest
import trimesh

from metrichmsr.render import Renderer

# An off-centre principal point and an off-axis box: a y flip, an x flip or a half-pixel error
# in the principal point all move the silhouette (each test checks its own sensitivity).
K = np.array([[500.0, 0.0, 150.1], [0.0, 520.0, 110.9], [0.0, 0.0, 1.0]])
SIZE = (320, 240)
BOX_CENTRE = np.array([0.3, -0.2, 3.0])
BOX_EXTENTS = np.array([0.4, 0.32, 0.2])


def box(centre, extents):
    mesh = trimesh.creation.box(extents=extents)
    return mesh.vertices + centre, mesh.faces


def projected_extent(K, vertices):
    """(u_min, v_min, u_max, v_max) of the pinhole projection K @ X / Z, pixel centres."""
    uvw = vertices @ K.T
    uv = uvw[:, :2] / uvw[:, 2:]
    return np.r_[uv.min(0), uv.max(0)]


def box_pixel_extent(K, centre, extents, margin=0.15):
    """First and last covered (column, row) of an axis-aligned box: the pixels whose centres
    lie strictly inside the projected extent (its extreme edges are image-axis-aligned).

    Asserts that each edge is at least ``margin`` px from a pixel centre, so the answer does
    not hinge on the rasteriser's tie-breaking.
    """
    corners = np.array([centre + extents / 2 * s for s in itertools.product([-1, 1], repeat=3)])
    extent = projected_extent(K, corners)
    assert np.all(np.abs(extent - np.round(extent)) >= margin), extent
    return np.floor(extent[:2]) + 1, np.ceil(extent[2:]) - 1


def dilate(mask):
    """``mask`` grown by one pixel (8-neighbourhood): where anti-aliased edges may reach."""
    out = mask.copy()
    for dy, dx in itertools.product([-1, 0, 1], repeat=2):
        out |= np.roll(mask, (dy, dx), axis=(0, 1))
    return out


def mask_extent(mask):
    rows, cols = np.nonzero(mask)
    return np.array([cols.min(), rows.min()]), np.array([cols.max(), rows.max()])


@pytest.fixture(scope="module")
def renderer():
    # One renderer for the whole module: creating and deleting EGL contexts is fragile.
    r = Renderer()
    yield r
    r.close()


def test_depth_and_silhouette_match_pinhole(renderer):
    color, depth, ids = renderer.render(K, SIZE, [box(BOX_CENTRE, BOX_EXTENTS)])
    assert color.shape == (240, 320, 3) and color.dtype == np.uint8
    assert depth.shape == (240, 320) and depth.dtype == np.float32
    assert ids.shape == (240, 320) and ids.dtype == np.int16

    # The ray through the box centre meets the front face, at z = 3.0 - 0.1.
    u, v, w = K @ BOX_CENTRE
    assert depth[round(v / w), round(u / w)] == pytest.approx(2.9, rel=0.01)

    first, last = box_pixel_extent(K, BOX_CENTRE, BOX_EXTENTS)
    np.testing.assert_array_equal(mask_extent(depth > 0), (first, last))
    # Sensitivity: pyrender counts the principal point from pixel edges; without the +0.5 the
    # picture would move half a pixel up-left, and these box edges would cover other pixels.
    K_edges = K - [[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0]]
    wrong = box_pixel_extent(K_edges, BOX_CENTRE, BOX_EXTENTS, margin=0.0)
    assert np.all(wrong[0] != first) and np.all(wrong[1] != last)
    np.testing.assert_array_equal(ids >= 0, depth > 0)
    assert np.all(depth[depth > 0] >= 2.9 - 1e-3) and np.all(depth[depth > 0] <= 3.1 + 1e-3)
    assert np.all(color[~dilate(depth > 0)] == 0)


def test_instance_ids_separate_meshes_and_nearest_wins(renderer):
    far = box([0.0, 0.0, 4.0], [1.0, 1.0, 0.2])
    near = box([0.25, 0.0, 2.0], [0.2, 0.2, 0.2])
    _, depth, ids = renderer.render(K, SIZE, [far, near], background=(1.0, 1.0, 1.0))
    assert set(np.unique(ids)) == {-1, 0, 1}
    # Off-axis boxes show a side face too, hence a depth range rather than one value.
    assert 3.9 - 1e-3 <= depth[ids == 0].min() and depth[ids == 0].max() <= 4.1 + 1e-3
    assert 1.9 - 1e-3 <= depth[ids == 1].min() and depth[ids == 1].max() <= 2.1 + 1e-3
    assert np.all(depth[ids == -1] == 0)
    # The near box sits entirely inside the far one's silhouette and hides part of it.
    near_alone = renderer.render(K, SIZE, [near])[2] == 0
    np.testing.assert_array_equal(ids == 1, near_alone)


def test_instance_ids_beyond_one_byte(renderer):
    # 300 boxes on a 20 x 15 grid, 20 px apart: ids >= 255 use the second colour channel.
    K_grid = np.array([[500.0, 0.0, 199.5], [0.0, 500.0, 149.5], [0.0, 0.0, 1.0]])
    cols, rows = np.meshgrid(np.arange(20), np.arange(15))
    centres_px = np.stack([cols.ravel() * 20 + 10, rows.ravel() * 20 + 10], axis=1)
    centres = np.c_[(centres_px - [199.5, 149.5]) / 500 * 5.0, np.full(300, 5.0)]
    meshes = [box(c, [0.1, 0.1, 0.1]) for c in centres]
    ids = renderer.render(K_grid, (400, 300), meshes)[2]
    np.testing.assert_array_equal(ids[centres_px[:, 1], centres_px[:, 0]], np.arange(300))
    assert set(np.unique(ids)) == set(range(-1, 300))


def test_colors_and_vertex_colors(renderer):
    mesh = box(BOX_CENTRE, BOX_EXTENTS)
    red = renderer.render(K, SIZE, [mesh], colors=[(1.0, 0.0, 0.0)])[0]
    green_vertices = np.tile(np.uint8([0, 255, 0]), (len(mesh[0]), 1))
    green = renderer.render(K, SIZE, [mesh], vertex_colors=[green_vertices])[0]
    inside = renderer.render(K, SIZE, [mesh])[2] == 0
    # Lit: shading darkens and a weak specular term whitens, but the hue stays.
    r, g, b = red[inside].astype(int).T
    assert np.all((r > 2 * g) & (r > 2 * b))
    r, g, b = green[inside].astype(int).T
    assert np.all((g > 2 * r) & (g > 2 * b))


def test_overlay_changes_only_mesh_pixels(renderer):
    image = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    meshes = [box(BOX_CENTRE, BOX_EXTENTS)]
    out = renderer.overlay(image, K, meshes)
    assert out.shape == image.shape and out.dtype == np.uint8

    ids = renderer.render(K, SIZE, meshes)[2]
    changed = np.any(out != image, axis=2)
    # Anti-aliased edges may touch pixels next to the silhouette, never further out.
    assert not np.any(changed & ~dilate(ids >= 0))
    assert changed[ids >= 0].mean() > 0.95
    np.testing.assert_array_equal(renderer.overlay(image, K, meshes, alpha=0.0), image)


def test_big_image_renders_at_reduced_size(renderer):
    # 5000 x 4000 -> 2048 x 1638: per-axis scales s = 2048 / 5000 and 1638 / 4000.
    K_big = np.array([[5000.0, 0.0, 2499.5], [0.0, 5000.0, 1999.5], [0.0, 0.0, 1.0]])
    centre, extents = np.array([0.29, 0.27, 6.0]), np.array([0.41, 0.49, 0.3])
    color, depth, ids = renderer.render(K_big, (5000, 4000), [box(centre, extents)])
    assert color.shape == (1638, 2048, 3) and depth.shape == ids.shape == (1638, 2048)

    # Pixel edges map to pixel edges: u' + 0.5 = s (u + 0.5).
    sx, sy = 2048 / 5000, 1638 / 4000
    K_small = np.array([[5000.0 * sx, 0.0, 2500.0 * sx - 0.5], [0.0, 5000.0 * sy, 2000.0 * sy - 0.5], [0, 0, 1]])
    first, last = box_pixel_extent(K_small, centre, extents)
    np.testing.assert_array_equal(mask_extent(ids == 0), (first, last))
    assert depth[ids == 0].min() == pytest.approx(6.0 - 0.15, rel=1e-3)
    # Sensitivity: scaling c by s alone (a 0.3 px shift) would cover other pixels.
    K_naive = np.diag([sx, sy, 1.0]) @ K_big
    wrong = box_pixel_extent(K_naive, centre, extents, margin=0.0)
    assert np.all(wrong[0] != first) and np.all(wrong[1] != last)

    image = np.zeros((4000, 5000, 3), dtype=np.uint8)
    assert renderer.overlay(image, K_big, [box(centre, extents)]).shape == (1638, 2048, 3)


def test_rejects_bad_inputs(renderer):
    mesh = box(BOX_CENTRE, BOX_EXTENTS)
    with pytest.raises(ValueError, match="K"):
        renderer.render(np.eye(2), SIZE, [mesh])
    with pytest.raises(ValueError, match="image_size"):
        renderer.render(K, (320.0, 240.0), [mesh])
    with pytest.raises(ValueError, match=r"meshes\[0\] faces"):
        renderer.render(K, SIZE, [(mesh[0], mesh[1] + 8)])
    with pytest.raises(ValueError, match="colors"):
        renderer.render(K, SIZE, [mesh], colors=[(1.0, 0.0, 0.0), (0.0, 1.0, 0.0)])
    with pytest.raises(ValueError, match="image"):
        renderer.overlay(np.zeros((240, 320), np.uint8), K, [mesh])


@pytest.fixture(scope="module")
def anny_body():
    """The default Anny body in the OpenCV camera frame, standing 4 m in front of the camera.

    Anny is z-up facing -y: x_cam = x, y_cam = -z, z_cam = y puts it upright, facing the camera.
    """
    anny = pytest.importorskip("anny")
    torch = pytest.importorskip("torch")
    model = anny.Anny().float()  # the first call in a fresh cache compiles warp kernels (~60 s)
    with torch.no_grad():
        vertices = model()["vertices"][0].numpy()
    faces = model.get_triangular_faces().numpy()
    vertices = np.stack([vertices[:, 0], -vertices[:, 2], vertices[:, 1]], axis=1)
    return vertices + [0.0, 0.0, 4.0], faces


def test_anny_body_renders_upright_at_its_depth(renderer, anny_body):
    vertices, faces = anny_body
    assert vertices.shape == (13718, 3)
    K_anny = np.array([[600.0, 0.0, 319.5], [0.0, 600.0, 239.5], [0.0, 0.0, 1.0]])
    _, depth, ids = renderer.render(K_anny, (640, 480), [(vertices, faces)])

    visible = depth[ids == 0]
    assert visible.min() >= vertices[:, 2].min() - 1e-3
    assert visible.max() <= vertices[:, 2].max() + 1e-3
    # The silhouette spans the projected vertices (extreme points such as finger tips may
    # cover no pixel centre, hence 1.5 px).
    lo_u, lo_v, hi_u, hi_v = projected_extent(K_anny, vertices)
    first, last = mask_extent(ids == 0)
    np.testing.assert_allclose(np.r_[first, last], [lo_u, lo_v, hi_u, hi_v], atol=1.5)
