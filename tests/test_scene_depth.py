import numpy as np
import pytest
from PIL import Image

from metrichmsr.errors import InputError
from metrichmsr.scene import depth as depth_module
from metrichmsr.scene.depth import DepthEstimate, HFDepth, PlanarDepth, depth_backend, edge_confidence

SIZE = (160, 120)  # (W, H)
K = np.array([[150.0, 0.0, 79.5], [0.0, 150.0, 59.5], [0.0, 0.0, 1.0]])
IMAGE = np.random.default_rng(0).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)


def half_size_depth() -> np.ndarray:
    """(60, 80) metres: a horizontal ramp from 2 to 10 m."""
    return np.tile(np.linspace(2.0, 10.0, 80, dtype=np.float32), (60, 1))


@pytest.mark.parametrize("spec", ["", "planar:x", "hf:", "file:", "midas", "HF:model"])
def test_bad_specs_list_the_valid_forms(spec):
    with pytest.raises(InputError, match="expected one of: hf:.*file:.*planar, none"):
        depth_backend(spec)


def test_none_gives_no_depth():
    assert depth_backend("none").estimate(IMAGE, K) is None


# --- file: -----------------------------------------------------------------------------


def check_ramp(estimate: DepthEstimate) -> None:
    assert estimate.depth_m.shape == estimate.confidence.shape == (SIZE[1], SIZE[0])
    assert estimate.depth_m.dtype == np.float32
    # Resized by nearest neighbour: the same values, each column twice.
    np.testing.assert_allclose(estimate.depth_m[:, ::2], np.repeat(half_size_depth(), 2, axis=0), rtol=1e-3)
    assert estimate.floor is None and not estimate.from_people


def test_file_npy_in_metres(tmp_path):
    path = tmp_path / "depth.npy"
    np.save(path, half_size_depth()[..., None])  # (h, w, 1) is accepted
    estimate = depth_backend(f"file:{path}").estimate(IMAGE, K)
    check_ramp(estimate)
    assert estimate.backend == f"file:{path}"


def test_file_png_in_millimetres_with_zero_unknown(tmp_path):
    depth_mm = np.round(half_size_depth() * 1000).astype(np.uint16)
    depth_mm[:10, :10] = 0
    path = tmp_path / "depth.png"
    Image.fromarray(depth_mm).save(path)
    estimate = depth_backend(f"file:{path}").estimate(IMAGE, K)
    assert np.isnan(estimate.depth_m[:20, :20]).all() and (estimate.confidence[:20, :20] == 0).all()
    Image.fromarray(np.round(half_size_depth() * 1000).astype(np.uint16)).save(path)
    check_ramp(depth_backend(f"file:{path}").estimate(IMAGE, K))


def test_file_exr_in_metres(tmp_path):
    OpenEXR = pytest.importorskip("OpenEXR")
    path = tmp_path / "depth.exr"
    with OpenEXR.File({"type": OpenEXR.scanlineimage}, {"Z": half_size_depth()}) as exr:
        exr.write(str(path))
    check_ramp(depth_backend(f"file:{path}").estimate(IMAGE, K))


def test_file_errors_are_one_line_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        depth_backend(f"file:{tmp_path / 'missing.npy'}")
    (tmp_path / "depth.txt").write_text("1 2 3")
    with pytest.raises(InputError, match="unsupported file type"):
        depth_backend(f"file:{tmp_path / 'depth.txt'}")

    def estimate_from(name: str, write) -> None:
        path = tmp_path / name
        write(path)
        depth_backend(f"file:{path}").estimate(IMAGE, K)

    cases = [
        ("junk.npy", lambda p: p.write_bytes(b"not numpy"), "unreadable .npy"),
        ("junk.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n broken"), "unreadable .png"),
        ("junk.exr", lambda p: p.write_bytes(b"v/1\x01 broken"), "unreadable .exr"),
        ("rgb.npy", lambda p: np.save(p, np.ones((60, 80, 3))), "2-D depth map"),
        ("nan.npy", lambda p: np.save(p, np.full((60, 80), np.nan)), "no positive finite depth"),
        ("negative.npy", lambda p: np.save(p, -np.ones((60, 80))), "no positive finite depth"),
        ("text.npy", lambda p: np.save(p, np.array([["a", "b"], ["c", "d"]])), "numeric"),
        ("square.npy", lambda p: np.save(p, np.ones((80, 80))), "aspect ratios differ"),
        ("8bit.png", lambda p: Image.fromarray(np.ones((60, 80), np.uint8)).save(p), "16-bit"),
    ]
    for name, write, message in cases:
        with pytest.raises(InputError, match=message) as error:
            estimate_from(name, write)
        assert "\n" not in str(error.value) and name in str(error.value)


def test_edge_confidence_is_low_at_depth_jumps():
    depth = np.full((10, 10), 4.0, np.float32)
    depth[:, 5:] = 8.0
    depth[0, 0] = np.nan
    confidence = edge_confidence(depth)
    assert (confidence[1:, [0, 1, 2, 3, 6, 7, 8, 9]] == 1).all()
    assert (confidence[:, [4, 5]] == 0).all() and confidence[0, 0] == 0


# --- planar ------------------------------------------------------------------------------


def test_planar_floor_depth_from_people(body_model):
    from _people_on_floor import people_on_floor

    joints, _, truth = people_on_floor(body_model, [(-1.5, 5.0), (0.5, 8.0), (1.8, 4.0)], 1.4, pitch_deg=8.0)
    estimate = depth_backend("planar").estimate(IMAGE, K, joints)
    assert estimate.from_people and estimate.backend == "planar"
    true_floor_m = truth.depth_map(K, SIZE)
    backdrop_m = np.max(joints[..., 2]) + 2.0  # 2 m behind the farthest person (pitch is small)
    floor = true_floor_m < backdrop_m
    assert floor.mean() > 0.3
    abs_rel = np.abs(estimate.depth_m[floor] - true_floor_m[floor]) / true_floor_m[floor]
    assert np.median(abs_rel) < 0.03
    assert np.isfinite(estimate.depth_m).all() and (estimate.depth_m > 0).all()
    # Above the horizon: the backdrop, with low confidence; the floor near the feet is trusted most.
    assert (estimate.confidence[0] == pytest.approx(0.1)) and (estimate.depth_m[0] > np.max(joints[..., 2])).all()
    assert 0.1 < estimate.confidence.max() <= 1.0 and estimate.confidence[floor].min() >= 0.3


def test_planar_backdrop_stands_at_the_wall_the_lines_found_unless_people_are_behind_it(body_model):
    from dataclasses import replace

    from _people_on_floor import people_on_floor
    from metrichmsr.geometry import image_rays_z1

    joints, _, truth = people_on_floor(body_model, [(-1.5, 5.0), (0.5, 8.0)], 1.4, pitch_deg=8.0)
    true_floor_m = truth.depth_map(K, SIZE)
    ahead_per_depth = image_rays_z1(K, SIZE) @ truth.forward  # metres ahead per metre of depth

    walled = PlanarDepth().estimate(IMAGE, K, joints, floor=replace(truth, wall_distance_m=20.0))
    on_floor = true_floor_m * ahead_per_depth < 20.0
    np.testing.assert_allclose(walled.depth_m[on_floor], true_floor_m[on_floor], rtol=1e-4)
    np.testing.assert_allclose((walled.depth_m * ahead_per_depth)[~on_floor], 20.0, rtol=1e-4)
    # A wall in front of the farthest person is not believed: the backdrop goes behind them.
    fallback = PlanarDepth().estimate(IMAGE, K, joints, floor=replace(truth, wall_distance_m=6.0))
    plain = PlanarDepth().estimate(IMAGE, K, joints, floor=truth)
    np.testing.assert_array_equal(fallback.depth_m, plain.depth_m)
    assert (plain.depth_m * ahead_per_depth).max() == pytest.approx(np.nanmax(joints @ truth.forward) + 2.0, rel=1e-4)
    # No wall stands nearer than the floor's own lines are seen, found or not.
    seen = PlanarDepth().estimate(IMAGE, K, joints, floor=replace(truth, floor_seen_m=15.0))
    assert (seen.depth_m * ahead_per_depth).max() == pytest.approx(15.0, rel=1e-4)
    seen_past_wall = PlanarDepth().estimate(IMAGE, K, joints, floor=replace(truth, wall_distance_m=12.0, floor_seen_m=15.0))
    np.testing.assert_array_equal(seen_past_wall.depth_m, seen.depth_m)
    short = PlanarDepth().estimate(IMAGE, K, joints, floor=replace(truth, wall_distance_m=20.0, floor_seen_m=15.0))
    np.testing.assert_array_equal(short.depth_m, walled.depth_m)


def test_planar_without_people_gives_none():
    planar = PlanarDepth()
    assert planar.estimate(IMAGE, K) is None
    assert planar.estimate(IMAGE, K, np.zeros((0, 23, 3))) is None
    assert planar.estimate(IMAGE, K, np.full((1, 23, 3), np.nan)) is None


# --- hf: -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_depth_anything(tmp_path_factory):
    """A random-weight Depth Anything (metric head) with a tiny DINOv2 backbone, saved like a hub model."""
    transformers = pytest.importorskip("transformers")
    import torch

    backbone = transformers.Dinov2Config(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=56,
        patch_size=14,
        out_features=["stage1", "stage2", "stage3", "stage4"],
        reshape_hidden_states=False,
    )
    config = transformers.DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=32,
        neck_hidden_sizes=[16, 16, 16, 16],
        fusion_hidden_size=16,
        head_hidden_size=8,
        depth_estimation_type="metric",
        max_depth=20,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-depth-anything")
    transformers.DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    transformers.DPTImageProcessor(
        size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14
    ).save_pretrained(folder)
    return folder


def test_hf_model_from_a_local_folder(tiny_depth_anything):
    backend = depth_backend(f"hf:{tiny_depth_anything}")
    estimate = backend.estimate(IMAGE, K)
    assert estimate.depth_m.shape == (SIZE[1], SIZE[0]) and estimate.depth_m.dtype == np.float32
    assert np.isfinite(estimate.depth_m).all() and (estimate.depth_m > 0).all() and (estimate.depth_m <= 20).all()
    assert estimate.backend == f"hf:{tiny_depth_anything}"
    model = backend._model
    backend.estimate(IMAGE[:60], K)  # another size, same model: loaded once
    assert backend._model is model


def test_hf_relative_depth_model_is_refused(tiny_depth_anything, tmp_path):
    import transformers

    model = transformers.AutoModelForDepthEstimation.from_pretrained(tiny_depth_anything)
    model.config.depth_estimation_type = "relative"
    model.save_pretrained(tmp_path)
    transformers.AutoImageProcessor.from_pretrained(tiny_depth_anything).save_pretrained(tmp_path)
    with pytest.raises(InputError, match="relative-depth model"):
        depth_backend(f"hf:{tmp_path}").load()


def test_hf_errors_are_one_line_input_errors(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="no such model folder"):
        depth_backend(f"hf:{tmp_path / 'missing'}")
    # Not in the cache and no network: fails fast offline, with one line.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    backend = depth_backend("hf:nobody/no-such-depth-model")
    with pytest.raises(InputError, match="cannot load the model .not in the local Hugging Face cache") as error:
        backend.estimate(IMAGE, K)
    assert "\n" not in str(error.value)
    monkeypatch.setattr(depth_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match="needs the transformers package"):
        depth_backend("hf:depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf")


def test_hf_depth_pro_depth_follows_the_known_focal():
    """Depth Pro's depth is f_px / (W * inverse depth): with K known, the scene gets K's focal."""
    import torch
    from transformers import BatchFeature

    class FakeProcessor:
        def __init__(self, focal_px):
            self.focal_px = focal_px

        def __call__(self, images, return_tensors):
            return BatchFeature({"pixel_values": torch.zeros(1, 3, 8, 8)})

        def post_process_depth_estimation(self, outputs, target_sizes):
            depth = torch.full(target_sizes[0], 5.0)  # metres, for the focal it assumed
            return [{"predicted_depth": depth, "field_of_view": torch.tensor(60.0), "focal_length": self.focal_px}]

    backend = HFDepth("apple/DepthPro-hf")
    backend._model = lambda **inputs: None
    for focal_px, expected_m in ((150.0, 5.0), (75.0, 10.0)):  # K's fx is 150
        backend._processor = FakeProcessor(torch.tensor(focal_px))
        np.testing.assert_allclose(backend.estimate(IMAGE, K).depth_m, expected_m)
    backend._processor = FakeProcessor(None)  # no field-of-view head: depth in units of the width
    np.testing.assert_allclose(backend.estimate(IMAGE, K).depth_m, 5.0 * 150.0 / SIZE[0], rtol=1e-6)


def test_every_backend_loads_and_a_backend_without_a_network_loads_nothing():
    from metrichmsr.scene.depth import DepthBackend, NoDepth, PlanarDepth

    class Constant(DepthBackend):
        spec = "constant"

        def estimate(self, image, K, people_joints=None, floor=None):
            return None

    for backend in (NoDepth(), PlanarDepth(), Constant()):
        assert backend.load() is None
