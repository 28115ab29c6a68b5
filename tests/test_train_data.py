"""Training data: the shipped BlazePose noise model, its simulation, and the synthetic people sampler.

BlazePose itself never runs here (slow): the measured model is the shipped json.
"""

import dataclasses

import numpy as np
import pytest
import roma
import torch

from metrichmsr.camera import project
from metrichmsr.fit import evidence_from_blazepose
from metrichmsr.geometry import project_points
from metrichmsr.joints import JOINT_NAMES
from metrichmsr.models.tokens import HumanInputs, silhouette_window
from metrichmsr.synth import HELD_OUT_SEED_START
from metrichmsr.train.data import ParallelPeople, SyntheticPeople, splat_silhouettes
from metrichmsr.train.noise import (
    GROSS_THRESHOLD,
    PRESENT,
    SWAP_PAIRS,
    NoiseModel,
    crop_rotation,
)

INPUT_KEYS = {"keypoints2d", "world3d", "bbox", "K"}  # and ``silhouette``, None without silhouette_grid


@pytest.fixture(scope="module")
def noise():
    return NoiseModel.load()


@pytest.fixture(scope="module")
def batch(body_model, noise):
    """A batch of 512 people through the measured noise."""
    return SyntheticPeople(body_model, noise, seed=11, pool_size=256, fresh_per_batch=16).sample(512)


@pytest.fixture(scope="module")
def truth(batch):
    """Many true people (B = 4096) for the noise statistics: the batch's, repeated."""
    _, targets = batch
    repeat = 8
    return (
        targets.joints.double().numpy().repeat(repeat, 0),
        targets.params.translation.double().numpy().repeat(repeat, 0),
        batch[0].K.double().numpy().repeat(repeat, 0),
        targets.image_size.double().numpy().repeat(repeat, 0),
    )


def _robust_std(x: np.ndarray, axis=None) -> np.ndarray:
    return 1.4826 * np.median(np.abs(x - np.median(x, axis=axis, keepdims=True)), axis=axis)


def _size(points: np.ndarray) -> np.ndarray:
    return np.sqrt(((points - points.mean(-2, keepdims=True)) ** 2).sum(-1).mean(-1))


def test_shipped_model_is_complete(noise):
    assert noise.core_std.shape == (23,) and np.all(noise.core_std[PRESENT] > 0) and np.all(noise.core_std[~PRESENT] == 0)
    assert np.all((noise.gross_share >= 0) & (noise.gross_share < 0.5))
    assert np.allclose(noise.visibility_in_frame.sum(-1), 1.0, atol=1e-3)
    assert noise.swap_rate.shape == (len(SWAP_PAIRS),)
    assert noise.world_std_m.shape == (23, 3) and 0.3 < noise.world_size_m < 0.8
    assert noise.miss_probability(np.array([10.0, 1000.0]))[0] >= noise.miss_probability(np.array([1000.0]))[0]


def test_wrong_schema_is_refused():
    with pytest.raises(ValueError, match="schema"):
        NoiseModel.from_dict({"schema": "something else"})


def test_seeds_stay_in_the_training_split(body_model, noise):
    with pytest.raises(ValueError, match="training split"):
        SyntheticPeople(body_model, noise, seed=HELD_OUT_SEED_START)
    with pytest.raises(ValueError, match="training split"):
        SyntheticPeople(body_model, noise, seed=-1)


def test_shapes_and_targets(body_model, batch):
    inputs, targets = batch
    assert isinstance(inputs, HumanInputs) and {f.name for f in dataclasses.fields(inputs)} == INPUT_KEYS | {"silhouette", "crop"}
    assert inputs.silhouette is None and inputs.crop is None  # simulated people have no pixels
    inputs.validate()
    assert inputs.keypoints2d.shape == (512, 23, 3) and inputs.world3d.shape == (512, 23, 3)
    assert inputs.bbox.shape == (512, 4) and inputs.K.shape == (512, 3, 3)
    assert all(getattr(inputs, k).dtype == torch.float32 for k in INPUT_KEYS)
    p = targets.params
    assert p.phenotype.shape == (512, 6) and p.bone_rotvec.shape == (512, 18, 3)
    assert p.global_rotation.shape == (512, 3, 3) and p.translation.shape == (512, 3)
    # The targets are one consistent body: its joints are the fast path's for its parameters.
    with torch.no_grad():
        joints = body_model.joints(p.phenotype, p.bone_rotvec, p.global_rotation, p.translation)
    assert torch.allclose(joints, targets.joints, atol=1e-4)
    # 1-30 m ahead on the level floor; sideways up to tan(60 deg) x 30 m at the edge of a 120 deg view.
    assert 0.8 < float(p.translation[:, 2].min()) and float(p.translation.norm(dim=-1).max()) < 65.0
    assert float(p.phenotype[:, 1].min()) < 0.67 < float(p.phenotype[:, 1].max())  # children and adults


def test_deterministic_per_seed(body_model, noise):
    def two_batches(seed):
        people = SyntheticPeople(body_model, noise, seed=seed, pool_size=64, fresh_per_batch=64)  # renewed every batch
        return [people.sample(32) for _ in range(2)]

    first, again, other = two_batches(5), two_batches(5), two_batches(6)
    for (a_in, a_t), (b_in, b_t) in zip(first, again):
        assert all(torch.equal(getattr(a_in, k), getattr(b_in, k)) for k in INPUT_KEYS)
        assert torch.equal(a_t.joints, b_t.joints)
    assert not torch.equal(first[0][0].keypoints2d, other[0][0].keypoints2d)
    assert not torch.equal(first[0][0].keypoints2d, first[1][0].keypoints2d)


def test_parallel_streams_are_reproducible_and_their_own(body_model, noise):
    def batches(seed):
        people = ParallelPeople(2, 16, seed=seed, pool_size=32)
        return [people.sample(16) for _ in range(3)] + [people.sample(5)]

    first, again, other = batches(5), batches(5), batches(6)
    for (a_in, a_t), (b_in, b_t) in zip(first, again):
        assert all(torch.equal(getattr(a_in, k), getattr(b_in, k)) for k in INPUT_KEYS)
        assert torch.equal(a_t.joints, b_t.joints)
    assert len(first[-1][0]) == 5 and len(first[-1][1].joints) == 5
    # Workers take turns, each with its own stream (not the seed's own, nor each other's).
    own = SyntheticPeople(body_model, noise, seed=5, pool_size=32, fresh_per_batch=4).sample(16)
    keypoints = [inputs.keypoints2d for inputs, _ in first[:3]] + [own[0].keypoints2d]
    assert all(not torch.equal(a, b) for i, a in enumerate(keypoints) for b in keypoints[i + 1 :])
    assert not torch.equal(first[0][0].keypoints2d, other[0][0].keypoints2d)
    with pytest.raises(ValueError, match="batch_size must be in"):
        ParallelPeople(1, 8, pool_size=8).sample(9)
    with pytest.raises(ValueError, match="workers must be"):
        ParallelPeople(0, 8)


def test_noiseless_keypoints_are_the_projection(body_model):
    inputs, targets = SyntheticPeople(body_model, NoiseModel.noiseless(0.5), seed=2, pool_size=64, fresh_per_batch=8).sample(128)
    keypoints = inputs.keypoints2d
    assert torch.allclose(keypoints[:, PRESENT, :2], project(inputs.K, targets.joints)[:, PRESENT], atol=1e-3)
    assert torch.all(keypoints[:, ~PRESENT] == 0)
    size = targets.image_size[:, None]
    inside = ((keypoints[..., :2] >= 0) & (keypoints[..., :2] <= size - 1)).all(-1)
    assert torch.equal(keypoints[..., 2] == 1, inside & torch.as_tensor(PRESENT))
    # World landmarks: the root-relative joints in the crop frame, at a fixed size.
    world = inputs.world3d[:, PRESENT].double()
    assert np.allclose(_size(world.numpy()), 0.5, atol=1e-5)
    rotation = crop_rotation(inputs.K.double().numpy(), ((inputs.bbox[:, :2] + inputs.bbox[:, 2:]) / 2).double().numpy())
    rel = (targets.joints - targets.params.translation[:, None]).double()[:, PRESENT]
    crop = torch.einsum("bji,bkj->bki", torch.as_tensor(rotation), rel)
    assert torch.allclose(world, crop * 0.5 / torch.as_tensor(_size(crop.numpy()))[:, None, None], atol=1e-5)


def test_crop_rotation_matches_the_fit():
    """``evidence_from_blazepose`` turns crop-frame landmarks into the camera frame by the same rotation."""
    rng = np.random.default_rng(0)
    K = np.array([[[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]] * 4)
    box = np.concatenate((rng.uniform(0, 300, (4, 2)), rng.uniform(340, 600, (4, 2))), -1)
    world = rng.normal(size=(4, 33, 3))
    evidence = evidence_from_blazepose(np.zeros((4, 33, 3)), world, box, K)
    rotation = crop_rotation(K, (box[:, :2] + box[:, 2:]) / 2)
    index = [i for i, present in enumerate(PRESENT) if present]
    expected = np.einsum("nij,nkj->nki", rotation, evidence_world(world))[:, index]
    assert np.allclose(evidence.keypoints3d.numpy()[:, index], expected, atol=1e-5)
    centre_ray = np.linalg.inv(K[0]) @ np.array([*(box[0, :2] + box[0, 2:]) / 2, 1.0])
    assert np.allclose(rotation[0] @ [0, 0, 1], centre_ray / np.linalg.norm(centre_ray))


def evidence_world(world: np.ndarray) -> np.ndarray:
    """BlazePose's 33 world landmarks (N, 33, 3) in JOINT_NAMES order (N, 23, 3), as the fit maps them."""
    from metrichmsr.perception.landmarks import BLAZEPOSE_FOR_JOINT

    return world[:, [BLAZEPOSE_FOR_JOINT[name] or 0 for name in JOINT_NAMES]]


def test_2d_noise_statistics_match_the_model(noise, truth):
    joints, root, K, size = truth
    model = dataclasses.replace(noise, swap_body_rate=0.0, swap_rate=np.zeros_like(noise.swap_rate))
    seen = model.simulate(joints, root, K, size, np.random.default_rng(1))
    uv = project_points(K, joints)
    error = (seen["keypoints2d"][..., :2] - uv) / np.ptp(uv[..., 1], axis=-1)[:, None, None]
    norm = np.linalg.norm(error, axis=-1)
    for k in np.nonzero(PRESENT)[0]:
        core = error[norm[:, k] <= GROSS_THRESHOLD, k].ravel()
        assert _robust_std(core) == pytest.approx(noise.core_std[k], rel=0.1), JOINT_NAMES[k]
        share = (norm[:, k] > GROSS_THRESHOLD).mean()
        tolerance = 4 * np.sqrt(noise.gross_share[k] / len(norm)) + 0.005
        assert abs(share - noise.gross_share[k]) < tolerance, JOINT_NAMES[k]


def test_swaps_and_world_noise_match_the_model(noise, truth):
    joints, root, K, size = truth
    # Swaps alone: a swapped landmark sits exactly on the other side's projection.
    swaps_only = dataclasses.replace(
        noise,
        core_std=np.zeros(23),
        gross_share=np.zeros(23),
        world_std_m=np.zeros((23, 3)),
        world_size_log_std=0.0,
        world_rotation_std_deg=np.zeros(3),
    )
    seen = swaps_only.simulate(joints, root, K, size, np.random.default_rng(2))
    uv = project_points(K, joints)
    for p, (left, right) in enumerate(SWAP_PAIRS):
        swapped = np.all(np.abs(seen["keypoints2d"][:, left, :2] - uv[:, right]) < 1e-9, axis=-1)
        swapped &= np.linalg.norm(uv[:, left] - uv[:, right], axis=-1) > 1e-6
        rate = noise.swap_body_rate * (1 - noise.swap_rate[p]) + (1 - noise.swap_body_rate) * noise.swap_rate[p]
        assert abs(swapped.mean() - rate) < 4 * np.sqrt(rate / len(uv)) + 0.005

    # World noise alone, against the exact normalised crop-frame joints.
    world_only = dataclasses.replace(swaps_only, world_std_m=noise.world_std_m)
    noisy = world_only.simulate(joints, root, K, size, np.random.default_rng(3))["world3d"]
    exact = swaps_only.simulate(joints, root, K, size, np.random.default_rng(3))["world3d"]
    residual = noisy - exact
    std = residual[:, PRESENT].std(0)
    assert np.allclose(std, noise.world_std_m[PRESENT], rtol=0.1)


def test_boxes_contain_the_keypoints(batch):
    inputs, targets = batch
    keypoints, box = inputs.keypoints2d, inputs.bbox
    confident = keypoints[..., 2] > 0.5
    inside = (keypoints[..., :2] >= box[:, None, :2] - 1e-3) & (keypoints[..., :2] <= box[:, None, 2:] + 1e-3)
    assert torch.all(inside.all(-1) | ~confident)
    assert torch.all(box[:, 2:] > box[:, :2])
    assert torch.all(box[:, :2] >= 0) and torch.all(box[:, 2:] <= targets.image_size - 1)


def test_visibility_is_zero_outside_the_image(batch, noise):
    inputs, targets = batch
    keypoints = inputs.keypoints2d
    size = targets.image_size[:, None]
    outside = ((keypoints[..., :2] < 0) | (keypoints[..., :2] > size - 1)).any(-1)
    assert outside.any(), "some people are cut by the image border"
    assert torch.all(keypoints[..., 2][outside] == 0)
    assert torch.all(keypoints[:, ~PRESENT] == 0) and torch.all(inputs.world3d[:, ~PRESENT] == 0)
    in_frame = ~outside[:, PRESENT]
    mean_visibility = float(keypoints[:, PRESENT, 2][in_frame].mean())
    edges = noise.visibility_edges
    expected = float((noise.visibility_in_frame[PRESENT] @ ((edges[:-1] + edges[1:]) / 2)).mean())
    assert mean_visibility == pytest.approx(expected, abs=0.1)


def test_world3d_carries_no_absolute_scale(batch, noise):
    inputs, targets = batch
    world = inputs.world3d[:, PRESENT].double().numpy()
    size = _size(world)
    assert np.exp(np.log(size).mean()) == pytest.approx(noise.world_size_m, rel=0.05)
    true_size = _size((targets.joints - targets.params.translation[:, None])[:, PRESENT].double().numpy())
    assert abs(np.corrcoef(size, true_size)[0, 1]) < 0.2  # children and adults come out the same size
    # Hip-centred (up to noise), and its pose matches the truth up to a similarity.
    hips = inputs.world3d[:, [JOINT_NAMES.index("left_hip"), JOINT_NAMES.index("right_hip")]].mean(1)
    assert float(hips.norm(dim=-1).median()) < 0.1  # the hips' own noise is ~4-6 cm per axis
    rel = torch.as_tensor((targets.joints - targets.params.translation[:, None])[:, PRESENT].double())
    rotation, shift, scale = roma.rigid_points_registration(rel, torch.as_tensor(world), compute_scaling=True)
    aligned = scale[:, None, None] * rel @ rotation.transpose(-1, -2) + shift[:, None]
    assert float((aligned - torch.as_tensor(world)).norm(dim=-1).median()) < 0.1


def test_splat_fills_the_body_and_stops_at_the_image_edge():
    """A dense sheet of points over a 100 x 200 px rectangle fills those cells of a grid over
    the window, up to the image's right edge; points off the image leave nothing."""
    u, v = np.meshgrid(np.arange(300.0, 400.0, 3.0), np.arange(100.0, 300.0, 3.0))
    sheet = np.stack((u.ravel(), v.ravel()), -1)
    window = np.array([[250.0, 100.0, 450.0, 300.0]])  # 200 px square: a 20 x 20 grid of 10 px cells
    full = splat_silhouettes(sheet[None], np.array([[640, 480]]), window, 20)[0]
    assert full.shape == (20, 20) and full.dtype == np.float32
    assert np.all(full[:, 5:15] == 1.0) and np.all(full[:, :4] == 0.0) and np.all(full[:, 16:] == 0.0)
    cut = splat_silhouettes(sheet[None], np.array([[350, 480]]), window, 20)[0]  # image ends at u = 349.5
    assert np.all(cut[:, 5:9] == 1.0) and np.all(cut[:, 11:] == 0.0)
    assert not splat_silhouettes(sheet[None] + 1000.0, np.array([[640, 480]]), window, 20).any()


def test_splat_dresses_the_upper_and_lower_body_apart():
    """Smaller horizontal erosions (clothes) widen the outline without lengthening it, above
    and below the waist separately; a raise (hair) lengthens only the upper outline upward."""
    u, v = np.meshgrid(np.arange(330.0, 370.0, 2.0), np.arange(120.0, 280.0, 2.0))
    sheet = np.stack((u.ravel(), v.ravel()), -1)[None]
    window, size = np.array([[200.0, 100.0, 500.0, 400.0]]), np.array([[640, 480]])
    waist = np.array([(200.0 - 100.0) / 300.0 * 120])  # fine row of v = 200 px (30 cells x 4)

    def splat(erosion, hair=0):
        return splat_silhouettes(sheet, size, window, 30, np.array([erosion]), waist, np.array([hair]))[0]

    bare, coat = splat([5, 5, 5]), splat([5, 1, 5])
    widths_bare, widths_coat = bare.sum(1), coat.sum(1)
    assert np.array_equal(widths_coat > 0, widths_bare > 0)  # the same rows
    assert widths_coat[5:9].min() > widths_bare[5:9].max() + 0.3  # wider above the waist (v 150-190)
    assert np.allclose(widths_coat[12:], widths_bare[12:])  # as bare below (v >= 220)
    trousers = splat([5, 5, 1])
    assert np.allclose(trousers[:9], bare[:9]) and trousers.sum(1)[12:17].min() > widths_bare[12:17].max() + 0.3
    haired = splat([5, 5, 5], hair=3)
    top = lambda s: np.argmax(s.sum(1) > 0)  # noqa: E731
    assert haired[top(bare) - 1].sum() > 0 and top(haired) == top(bare) - 1  # a fine row above
    assert np.array_equal(haired[15:], bare[15:])
    assert np.array_equal(splat_silhouettes(sheet, size, window, 30)[0], bare)  # the default closes


def test_silhouettes_outline_the_person(body_model, noise):
    """With silhouette_grid, each person's silhouette covers their projected joints and is
    mostly empty around them; a few samples get none."""
    inputs, targets = SyntheticPeople(body_model, noise, seed=4, pool_size=512, fresh_per_batch=0, silhouette_grid=32).sample(256)
    silhouette = inputs.silhouette
    assert silhouette.shape == (256, 32, 32) and silhouette.dtype == torch.float32
    assert float(silhouette.min()) >= 0.0 and float(silhouette.max()) <= 1.0
    inputs.validate()
    window = silhouette_window(inputs.bbox)
    cell = (
        ((project(inputs.K, targets.joints) - window[:, None, :2]) / (window[:, None, 2:] - window[:, None, :2]) * 32)
        .floor()
        .long()
    )
    size = targets.image_size[:, None]
    uv = project(inputs.K, targets.joints)
    on_grid = ((cell >= 0) & (cell < 32)).all(-1) & ((uv >= 0) & (uv <= size - 1)).all(-1)
    given = silhouette.flatten(1).amax(1) > 0  # a few samples are drawn without a silhouette
    assert 0.02 < 1 - given.float().mean() < 0.12
    b, j = torch.nonzero(on_grid & given[:, None], as_tuple=True)
    covered = silhouette[b, cell[b, j, 1].clamp(0, 31), cell[b, j, 0].clamp(0, 31)]
    assert float((covered > 0).float().mean()) > 0.97  # joints lie inside the body
    assert float(silhouette[given].mean()) < 0.4  # ... and the window is mostly background
