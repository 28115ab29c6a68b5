"""Camera: projection and rays (round trips, unit length, batches), the bounding camera ray map
(resolution independence, what it depends on), Fourier encoding, intrinsics sources (user flag,
EXIF, default field of view), EXIF focal lengths end to end through Pillow, and rescaling."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from metrichmsr.camera import (
    DEFAULT_FOV_DEG,
    Intrinsics,
    box_ray_map,
    focal_from_exif,
    focal_from_fov,
    fourier_encode,
    project,
    resolve_intrinsics,
    scale_K,
    unit_rays,
)
from metrichmsr.errors import InputError
from metrichmsr.image_io import load_image

FOCAL_LENGTH, FOCAL_35MM = 0x920A, 0xA405
FOCAL_PLANE_X_RES, FOCAL_PLANE_RES_UNIT = 0xA20E, 0xA210
EXIF_IFD = 0x8769


def random_K(generator, batch=(), dtype=torch.float32):
    """(*batch, 3, 3) intrinsics with fx != fy and an off-centre principal point."""
    f = 200.0 + 1500.0 * torch.rand(*batch, 2, generator=generator, dtype=torch.float64)
    c = 100.0 + 800.0 * torch.rand(*batch, 2, generator=generator, dtype=torch.float64)
    K = torch.zeros(*batch, 3, 3, dtype=torch.float64)
    K[..., 0, 0], K[..., 1, 1] = f[..., 0], f[..., 1]
    K[..., 0, 2], K[..., 1, 2] = c[..., 0], c[..., 1]
    K[..., 2, 2] = 1.0
    return K.to(dtype)


def K_of(fx, fy, cx, cy, dtype=torch.float64):
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=dtype)


# --- projection and rays -------------------------------------------------------------------


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-2), (torch.float64, 1e-8)])
def test_unit_rays_then_project_returns_the_pixel(dtype, tol):
    g = torch.Generator().manual_seed(0)
    K = random_K(g, (5,), dtype)
    uv = (torch.rand(5, 100, 2, generator=g, dtype=torch.float64) * 2000.0 - 200.0).to(dtype)
    rays = unit_rays(K, uv)
    assert rays.shape == (5, 100, 3) and rays.dtype == dtype
    # Any positive depth along the ray projects back to the same pixel.
    depth = (0.5 + 10.0 * torch.rand(5, 100, 1, generator=g, dtype=torch.float64)).to(dtype)
    assert torch.allclose(project(K, rays * depth), uv, atol=tol, rtol=0)


def test_project_then_unit_rays_returns_the_direction():
    g = torch.Generator().manual_seed(1)
    K = random_K(g, (), torch.float64)
    points = torch.randn(50, 3, generator=g, dtype=torch.float64)
    points[:, 2] = points[:, 2].abs() + 1.0
    rays = unit_rays(K, project(K, points))
    assert torch.allclose(rays, points / points.norm(dim=-1, keepdim=True), atol=1e-10)


def test_rays_are_unit_and_point_forward():
    g = torch.Generator().manual_seed(2)
    K = random_K(g, (3,), torch.float64)
    uv = torch.rand(3, 64, 2, generator=g, dtype=torch.float64) * 5000.0 - 2000.0
    rays = unit_rays(K, uv)
    assert torch.allclose(rays.norm(dim=-1), torch.ones(3, 64, dtype=torch.float64), atol=1e-12)
    assert (rays[..., 2] > 0).all()


def test_ray_follows_opencv_axes():
    """A pixel right of and below the principal point looks right (+x) and down (+y)."""
    K = K_of(500.0, 400.0, 320.0, 240.0)
    ray = unit_rays(K, torch.tensor([[320.0 + 500.0, 240.0 + 400.0]], dtype=torch.float64))[0]
    assert torch.allclose(ray, torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64) / math.sqrt(3.0))


def test_project_known_point():
    K = K_of(500.0, 400.0, 320.0, 240.0)
    uv = project(K, torch.tensor([[1.0, -0.5, 2.0]], dtype=torch.float64))
    assert torch.allclose(uv, torch.tensor([[320.0 + 250.0, 240.0 - 100.0]], dtype=torch.float64))


# --- bounding camera ray map ---------------------------------------------------------------


def test_box_ray_map_does_not_depend_on_grid_resolution():
    """Cell i of a 16-cell grid and cell 3i + 1 of a 48-cell grid share a centre: same ray."""
    g = torch.Generator().manual_seed(3)
    K = random_K(g, (), torch.float64)
    box = torch.tensor([113.0, 57.0, 301.0, 522.0], dtype=torch.float64)
    coarse = box_ray_map(K, box, (16, 16))
    fine = box_ray_map(K, box, (48, 48))
    assert coarse.shape == (16, 16, 3) and fine.shape == (48, 48, 3)
    index = torch.arange(16) * 3 + 1
    assert torch.allclose(fine[index][:, index], coarse, atol=1e-12)
    # Non-square grids too (rows and columns are independent): 8 x 4 against 24 x 12.
    assert torch.allclose(
        box_ray_map(K, box, (24, 12))[torch.arange(8) * 3 + 1][:, torch.arange(4) * 3 + 1],
        box_ray_map(K, box, (8, 4)),
        atol=1e-12,
    )


def test_box_ray_map_spans_the_box_pixel_edges():
    """The grid cells tile the box's pixel extent x0 - 0.5 .. x1 + 0.5 evenly: a w-cell row's
    rays hit the image plane at x0 - 0.5 + (j + 0.5) (x1 - x0 + 1) / w."""
    K = K_of(600.0, 650.0, 300.0, 200.0)
    x0, y0, x1, y1 = 40.0, 30.0, 119.0, 229.0  # 80 x 200 pixels
    rays = box_ray_map(K, torch.tensor([x0, y0, x1, y1], dtype=torch.float64), (4, 2))
    uv = project(K, rays.reshape(-1, 3)).reshape(4, 2, 2)
    assert torch.allclose(uv[0, :, 0], torch.tensor([59.5, 99.5], dtype=torch.float64))
    assert torch.allclose(uv[:, 0, 1], torch.tensor([54.5, 104.5, 154.5, 204.5], dtype=torch.float64))


def test_box_ray_map_one_pixel_box_is_that_pixel_ray():
    K = K_of(700.0, 700.0, 320.0, 240.0)
    rays = box_ray_map(K, torch.tensor([100.0, 50.0, 100.0, 50.0], dtype=torch.float64), (1, 1))
    expected = unit_rays(K, torch.tensor([[100.0, 50.0]], dtype=torch.float64))[0]
    assert torch.allclose(rays[0, 0], expected)


def test_box_ray_map_depends_only_on_K_and_box():
    g = torch.Generator().manual_seed(4)
    K = random_K(g, (), torch.float64)
    box = torch.tensor([200.0, 100.0, 380.0, 460.0], dtype=torch.float64)
    reference = box_ray_map(K, box, (9, 7))
    # Deterministic, and the same whether batched alone or next to other boxes.
    assert torch.equal(box_ray_map(K.clone(), box.clone(), (9, 7)), reference)
    others = torch.tensor([[0.0, 0.0, 50.0, 80.0], [500.0, 300.0, 900.0, 700.0]], dtype=torch.float64)
    batched = box_ray_map(K, torch.cat((box[None], others)), (9, 7))
    assert torch.allclose(batched[0], reference, atol=1e-12)
    # It does depend on each of them: the focal length, the principal point, the box.
    assert not torch.allclose(box_ray_map(K * torch.tensor([[1.1], [1.0], [1.0]], dtype=torch.float64), box, (9, 7)), reference)
    moved_K = K.clone()
    moved_K[0, 2] += 20.0
    assert not torch.allclose(box_ray_map(moved_K, box, (9, 7)), reference)
    assert not torch.allclose(box_ray_map(K, box + 20.0, (9, 7)), reference)
    bigger = box.clone()
    bigger[2:] += 40.0
    assert not torch.allclose(box_ray_map(K, bigger, (9, 7)), reference)


def test_box_centred_on_principal_point_has_forward_centre_ray():
    cx, cy = 311.5, 207.25
    K = K_of(800.0, 760.0, cx, cy)
    box = torch.tensor([cx - 60.0, cy - 140.0, cx + 60.0, cy + 140.0], dtype=torch.float64)
    rays = box_ray_map(K, box, (15, 11))
    assert torch.allclose(rays[7, 5], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), atol=1e-12)
    # Mirror symmetry about the centre ray: left/right flip x, top/bottom flip y.
    assert torch.allclose(rays.flip(1)[..., 0], -rays[..., 0], atol=1e-12)
    assert torch.allclose(rays.flip(0)[..., 1], -rays[..., 1], atol=1e-12)


def test_box_ray_map_batch_shapes():
    g = torch.Generator().manual_seed(5)
    B = 6
    K = random_K(g, (B,))
    xy = torch.rand(B, 2, generator=g) * 500.0
    wh = 10.0 + torch.rand(B, 2, generator=g) * 300.0
    boxes = torch.cat((xy, xy + wh), dim=-1)
    rays = box_ray_map(K, boxes, (12, 8))
    assert rays.shape == (B, 12, 8, 3) and rays.dtype == torch.float32
    # Each batch entry equals the unbatched call with its own K and box.
    for b in range(B):
        assert torch.allclose(rays[b], box_ray_map(K[b], boxes[b], (12, 8)), atol=1e-6)
    # One K shared by every box broadcasts.
    shared = box_ray_map(K[0], boxes, (12, 8))
    assert shared.shape == (B, 12, 8, 3)
    assert torch.allclose(shared[3], box_ray_map(K[0], boxes[3], (12, 8)), atol=1e-6)
    # Extra leading dimensions.
    assert box_ray_map(K[0], boxes.reshape(2, 3, 4), (5, 5)).shape == (2, 3, 5, 5, 3)


# --- Fourier encoding ----------------------------------------------------------------------


@pytest.mark.parametrize("num_bands", [1, 4, 8])
def test_fourier_encode_shape_and_raw_input(num_bands):
    g = torch.Generator().manual_seed(6)
    x = torch.rand(2, 5, 3, generator=g) * 2.0 - 1.0
    features = fourier_encode(x, num_bands=num_bands, max_frequency=16.0)
    assert features.shape == (2, 5, 3 * (1 + 2 * num_bands))
    per_dim = features.reshape(2, 5, 3, 1 + 2 * num_bands)
    assert torch.equal(per_dim[..., 0], x)
    sin, cos = per_dim[..., 1 : 1 + num_bands], per_dim[..., 1 + num_bands :]
    assert torch.allclose(sin**2 + cos**2, torch.ones_like(sin), atol=1e-5)


def test_fourier_encode_frequencies_span_one_to_max():
    x = torch.tensor([[0.25]], dtype=torch.float64)
    features = fourier_encode(x, num_bands=5, max_frequency=32.0)[0]
    sin = features[1:6]
    expected = torch.sin(math.pi * 0.25 * torch.tensor([1.0, 2.3784142, 5.6568542, 13.4543426, 32.0], dtype=torch.float64))
    assert torch.allclose(sin, expected, atol=1e-6)


def test_fourier_encode_follows_input_dtype():
    assert fourier_encode(torch.zeros(4, 3, dtype=torch.float64)).dtype == torch.float64


# --- intrinsics sources --------------------------------------------------------------------


def test_resolve_user_intrinsics():
    cam = resolve_intrinsics(640, 480, intrinsics=(500.0, 510.0, 300.0, 250.0), exif={FOCAL_35MM: 26})
    assert (cam.fx, cam.fy, cam.cx, cam.cy, cam.source) == (500.0, 510.0, 300.0, 250.0, "user")


def test_resolve_user_focal_beats_exif_and_centres_principal_point():
    cam = resolve_intrinsics(640, 480, focal_px=900.0, exif={FOCAL_35MM: 26})
    assert (cam.fx, cam.fy, cam.source) == (900.0, 900.0, "user")
    assert (cam.cx, cam.cy) == (319.5, 239.5)


def test_resolve_user_fov():
    cam = resolve_intrinsics(1000, 600, fov_deg=90.0, exif={FOCAL_35MM: 26})
    assert cam.source == "user"
    assert cam.fx == pytest.approx(500.0) and cam.fy == pytest.approx(500.0)
    assert cam.horizontal_fov_deg(1000) == pytest.approx(90.0)


def test_resolve_exif_then_default():
    exif = resolve_intrinsics(4000, 3000, exif={FOCAL_35MM: 27})
    assert exif.source == "exif" and exif.fx == pytest.approx(27 / 36 * 4000)
    assert (exif.cx, exif.cy) == (1999.5, 1499.5)
    for no_focal in (None, {}, {FOCAL_LENGTH: 4.2}):
        default = resolve_intrinsics(4000, 3000, exif=no_focal)
        assert default.source == "default"
        assert default.horizontal_fov_deg(4000) == pytest.approx(DEFAULT_FOV_DEG)
        assert default.fx == default.fy == pytest.approx(2000.0 / math.tan(math.radians(DEFAULT_FOV_DEG / 2)))
        assert (default.cx, default.cy) == (1999.5, 1499.5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"intrinsics": (500.0, 500.0, 1.0, 1.0), "focal_px": 500.0},
        {"focal_px": 500.0, "fov_deg": 60.0},
        {"intrinsics": (500.0, 500.0, 1.0, 1.0), "fov_deg": 60.0},
    ],
)
def test_more_than_one_user_source_is_an_input_error(kwargs):
    with pytest.raises(InputError, match="only one"):
        resolve_intrinsics(640, 480, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"focal_px": 0.0},
        {"focal_px": -3.0},
        {"focal_px": math.nan},
        {"fov_deg": 0.0},
        {"fov_deg": 180.0},
        {"fov_deg": math.nan},
        {"intrinsics": (-500.0, 500.0, 320.0, 240.0)},
        {"intrinsics": (500.0, math.nan, 320.0, 240.0)},
        {"intrinsics": (500.0, 500.0, math.inf, 240.0)},
    ],
)
def test_bad_user_values_are_input_errors(kwargs):
    with pytest.raises(InputError):
        resolve_intrinsics(640, 480, **kwargs)


def test_focal_from_fov():
    assert focal_from_fov(90.0, 800) == pytest.approx(400.0)
    assert focal_from_fov(60.0, 800) == pytest.approx(400.0 * math.sqrt(3.0))


# --- EXIF focal length ---------------------------------------------------------------------


def test_focal_from_exif_35mm_equivalent_uses_long_side():
    assert focal_from_exif({FOCAL_35MM: 24}, 4032, 3024) == pytest.approx(24 / 36 * 4032)
    # Portrait: the long side is the height.
    assert focal_from_exif({FOCAL_35MM: 24}, 3024, 4032) == pytest.approx(24 / 36 * 4032)
    # The 35 mm equivalent wins over the sensor-based focal length.
    tags = {FOCAL_35MM: 50, FOCAL_LENGTH: 4.0, FOCAL_PLANE_X_RES: 1000.0, FOCAL_PLANE_RES_UNIT: 4}
    assert focal_from_exif(tags, 3000, 2000) == pytest.approx(50 / 36 * 3000)


@pytest.mark.parametrize("unit, mm_per_unit", [(2, 25.4), (3, 10.0), (4, 1.0)])
def test_focal_from_exif_focal_plane_resolution(unit, mm_per_unit):
    tags = {FOCAL_LENGTH: 35.0, FOCAL_PLANE_X_RES: 3200.0, FOCAL_PLANE_RES_UNIT: unit}
    assert focal_from_exif(tags, 6000, 4000) == pytest.approx(35.0 * 3200.0 / mm_per_unit)


def test_focal_from_exif_without_enough_tags_is_none():
    assert focal_from_exif({}, 640, 480) is None
    assert focal_from_exif({FOCAL_LENGTH: 4.2}, 640, 480) is None  # no sensor size
    assert focal_from_exif({FOCAL_PLANE_X_RES: 3200.0, FOCAL_PLANE_RES_UNIT: 2}, 640, 480) is None
    assert focal_from_exif({FOCAL_35MM: 0}, 640, 480) is None  # 0 means unknown in EXIF


def test_focal_from_exif_ignores_garbage_values():
    assert focal_from_exif({FOCAL_35MM: "abc", FOCAL_LENGTH: b"\x00"}, 640, 480) is None
    tags = {FOCAL_LENGTH: 35.0, FOCAL_PLANE_X_RES: 3200.0, FOCAL_PLANE_RES_UNIT: "inches"}
    assert focal_from_exif(tags, 640, 480) is None
    assert resolve_intrinsics(640, 480, exif=tags).source == "default"


def save_jpeg(path, size, exif_ifd_tags=None):
    image = Image.new("RGB", size, (90, 120, 150))
    exif = Image.Exif()
    for tag, value in (exif_ifd_tags or {}).items():
        exif.get_ifd(EXIF_IFD)[tag] = value
    image.save(path, exif=exif)
    return path


def test_exif_focal_end_to_end_35mm(tmp_path):
    path = save_jpeg(tmp_path / "phone.jpg", (96, 72), {FOCAL_35MM: 26})
    pixels, tags = load_image(path)
    height, width = pixels.shape[:2]
    cam = resolve_intrinsics(width, height, exif=tags)
    assert cam.source == "exif"
    assert cam.fx == cam.fy == pytest.approx(26 / 36 * 96)
    assert (cam.cx, cam.cy) == (47.5, 35.5)


def test_exif_focal_end_to_end_focal_plane(tmp_path):
    tags = {FOCAL_LENGTH: 50.0, FOCAL_PLANE_X_RES: 2.0, FOCAL_PLANE_RES_UNIT: 4}  # 2 px per mm
    pixels, exif = load_image(save_jpeg(tmp_path / "dslr.jpg", (80, 64), tags))
    cam = resolve_intrinsics(pixels.shape[1], pixels.shape[0], exif=exif)
    assert cam.source == "exif" and cam.fx == pytest.approx(100.0)
    # A user flag still wins over the file's EXIF.
    assert resolve_intrinsics(pixels.shape[1], pixels.shape[0], exif=exif, focal_px=300.0).source == "user"


def test_jpeg_without_focal_tags_uses_default(tmp_path):
    pixels, exif = load_image(save_jpeg(tmp_path / "plain.jpg", (80, 64), {FOCAL_LENGTH: 50.0}))
    cam = resolve_intrinsics(pixels.shape[1], pixels.shape[0], exif=exif)
    assert cam.source == "default"
    assert cam.horizontal_fov_deg(80) == pytest.approx(DEFAULT_FOV_DEG)


# --- rescaling and parsing -----------------------------------------------------------------


def test_scaled_intrinsics_keep_pixel_centres():
    """A pixel's ray is unchanged when the image and the pixel are resized together, with
    pixel centres at integers: u' = (u + 0.5) s - 0.5."""
    cam = Intrinsics(812.0, 790.0, 301.3, 245.8, "exif")
    uv = torch.tensor([[0.0, 0.0], [639.0, 479.0], [301.3, 245.8], [17.25, 402.5]], dtype=torch.float64)
    for sx, sy in ((0.25, 0.25), (0.5, 0.4), (1.7, 1.7)):
        small = scale_K(cam.K, sx, sy)
        uv_scaled = (uv + 0.5) * torch.tensor([sx, sy], dtype=torch.float64) - 0.5
        before = unit_rays(torch.as_tensor(cam.K), uv)
        after = unit_rays(torch.as_tensor(small), uv_scaled)
        assert torch.allclose(before, after, atol=1e-12)


def test_scaled_whole_image_centre():
    """The centre of a 640 x 480 image stays the centre of its 160 x 120 version."""
    K = scale_K(resolve_intrinsics(640, 480, focal_px=500.0).K, 0.25, 0.25)
    assert (K[0, 2], K[1, 2]) == pytest.approx((79.5, 59.5))
    assert K[0, 0] == pytest.approx(125.0)


def test_intrinsics_K_matrix():
    K = Intrinsics(1.0, 2.0, 3.0, 4.0, "user").K
    assert K.shape == (3, 3) and K.dtype == np.float64
    np.testing.assert_array_equal(K, [[1.0, 0.0, 3.0], [0.0, 2.0, 4.0], [0.0, 0.0, 1.0]])
