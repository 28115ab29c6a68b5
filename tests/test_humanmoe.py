"""HumanMoE with random weights: shapes, geometry of the outputs, routing, capacity, balance loss, I/O."""

import itertools

import numpy as np
import pytest
import roma
import torch

from metrichmsr.body import BodyParams
from metrichmsr.camera import project
from metrichmsr.joints import JOINT_NAMES
from metrichmsr.models import (
    FACE_JOINTS,
    TASK_QUERIES,
    TOKEN_TYPES,
    HumanInputs,
    HumanMoE,
    HumanMoEConfig,
    router_statistics,
    to_body_params,
)

ENCODINGS = ("rays", "box", "none")
FFNS = ("moe", "dense")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: on a busy 2-core machine, syncing a thread pool costs ~100x the maths."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_inputs(n: int = 3, seed: int = 0, shift: tuple[float, float] = (0.0, 0.0)) -> HumanInputs:
    """N people: keypoints scattered inside boxes on a 1280x720 image, two foot points missing."""
    g = torch.Generator().manual_seed(seed)
    x0 = 100 + 600 * torch.rand(n, generator=g)
    y0 = 50 + 200 * torch.rand(n, generator=g)
    size = 150 + 250 * torch.rand(n, generator=g)
    bbox = torch.stack((x0, y0, x0 + 0.5 * size, y0 + size), dim=-1)
    uv = bbox[:, None, :2] + torch.rand(n, 23, 2, generator=g) * (bbox[:, None, 2:] - bbox[:, None, :2])
    visibility = torch.rand(n, 23, 1, generator=g)
    missing = [JOINT_NAMES.index("left_small_toe"), JOINT_NAMES.index("right_small_toe")]
    visibility[:, missing] = 0.0
    world = 0.4 * torch.randn(n, 23, 3, generator=g)
    world[:, missing] = 0.0
    offset = torch.tensor(shift)
    K = torch.tensor([[900.0, 0.0, 640.0], [0.0, 910.0, 360.0], [0.0, 0.0, 1.0]]).expand(n, 3, 3)
    return HumanInputs(torch.cat((uv + offset, visibility), dim=-1), world, bbox + offset.repeat(2), K)


def make_model(seed: int = 0, **config) -> HumanMoE:
    torch.manual_seed(seed)
    return HumanMoE(HumanMoEConfig(**config)).eval()


@pytest.mark.parametrize("encoding, ffn", list(itertools.product(ENCODINGS, FFNS)))
def test_output_shapes_and_ranges(encoding, ffn):
    model = make_model(camera_encoding=encoding, ffn=ffn)
    out = model(make_inputs(3))
    assert out["bone_rotvec"].shape == (3, 18, 3)
    assert out["global_rotation"].shape == (3, 3, 3)
    assert out["phenotype"].shape == (3, 6)
    assert out["translation"].shape == (3, 3)
    assert out["log_depth"].shape == (3,)
    assert out["root_offset"].shape == (3, 2)
    assert out["balance_loss"].shape == ()
    assert len(out["router"]) == (model.config.depth if ffn == "moe" else 0)
    assert out["token_type"].shape == (model.num_tokens,)
    for route in out["router"]:
        assert route.probs.shape == (3, model.num_tokens, model.config.num_experts)
        assert route.indices.shape == route.kept.shape == (3, model.num_tokens, model.config.top_k)
    if ffn == "dense":
        assert out["balance_loss"] == 0
    R = out["global_rotation"]
    torch.testing.assert_close(R @ R.transpose(-1, -2), torch.eye(3).expand(3, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(3), atol=1e-5, rtol=0)
    assert (out["bone_rotvec"].norm(dim=-1) <= torch.pi + 1e-5).all()
    torch.testing.assert_close(roma.rotvec_to_rotmat(out["bone_rotvec"]), out["bone_rotation"], atol=1e-5, rtol=0)
    assert ((out["phenotype"] >= 0) & (out["phenotype"] <= 1)).all()
    assert torch.isfinite(out["translation"]).all() and (out["translation"][:, 2] > 0).all()


def test_zero_people():
    out = make_model()(make_inputs(0))
    assert out["translation"].shape == (0, 3) and torch.isfinite(out["balance_loss"])


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_translation_matches_log_depth_and_offset(encoding):
    inputs = make_inputs(4)
    out = make_model(camera_encoding=encoding)(inputs)
    t = out["translation"]
    torch.testing.assert_close(t[:, 2].log(), out["log_depth"])
    # The root projects to the box centre moved by the normalised offset times the focal lengths.
    focal = torch.stack((inputs.K[:, 0, 0], inputs.K[:, 1, 1]), dim=-1)
    expected = inputs.box_centre + out["root_offset"] * focal
    torch.testing.assert_close(project(inputs.K, t[:, None])[:, 0], expected, atol=1e-3, rtol=0)


def test_depth_follows_box_size_and_focal_with_camera_encoding():
    """At init the depth is the pinhole anchor: twice the focal length puts people twice as far."""
    inputs = make_inputs(2)
    model = make_model()
    far = HumanInputs(inputs.keypoints2d, inputs.world3d, inputs.bbox, inputs.K * torch.tensor([2.0, 2.0, 1.0])[:, None])
    torch.testing.assert_close(model.depth_anchor(far) - model.depth_anchor(inputs), torch.full((2,), np.log(2.0)))


def test_dense_and_moe_have_the_same_parameter_count():
    moe, dense = (sum(p.numel() for p in make_model(ffn=f).parameters()) for f in FFNS)
    assert abs(moe - dense) / dense < 0.05


def test_no_camera_encoding_is_invariant_to_where_the_box_sits():
    """Same crop content elsewhere in the image: "none" sees no difference, "rays" and "box" do."""
    here, there = make_inputs(2), make_inputs(2, shift=(-90.0, 140.0))
    keys = ("bone_rotvec", "global_rotation", "phenotype", "log_depth", "root_offset")
    for encoding in ENCODINGS:
        model = make_model(camera_encoding=encoding)
        a, b = model(here), model(there)
        same = all(torch.allclose(a[k], b[k], atol=1e-5) for k in keys)
        assert same == (encoding == "none"), encoding


def test_each_person_is_predicted_independently_of_the_batch():
    model = make_model(capacity_factor=0.5)  # drops some choices: capacity must be per person
    inputs = make_inputs(3)
    batch = model(inputs)
    alone = model(HumanInputs(inputs.keypoints2d[1:2], inputs.world3d[1:2], inputs.bbox[1:2], inputs.K[1:2]))
    torch.testing.assert_close(batch["translation"][1:2], alone["translation"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batch["bone_rotvec"][1:2], alone["bone_rotvec"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("encoding", ("rays", "box"))
def test_save_load_round_trip(tmp_path, encoding):
    model = make_model(seed=3, camera_encoding=encoding, depth=2)
    path = tmp_path / "humanmoe.pt"
    model.save(path)
    loaded = HumanMoE.load(path, map_location="cpu")
    assert loaded.config == model.config
    inputs = make_inputs(2)
    a, b = model(inputs), loaded(inputs)
    for key in ("bone_rotvec", "global_rotation", "phenotype", "translation", "balance_loss"):
        assert torch.equal(a[key], b[key]), key


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="not a HumanMoE checkpoint"):
        HumanMoE.load(path)


def test_config_round_trip_and_validation():
    config = HumanMoEConfig(dim=64, camera_encoding="box", ffn="dense")
    assert HumanMoEConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown"):
        HumanMoEConfig.from_dict({"dim": 64, "width": 3})
    with pytest.raises(ValueError, match="camera_encoding"):
        HumanMoEConfig(camera_encoding="ray")
    with pytest.raises(ValueError, match="top_k"):
        HumanMoEConfig(top_k=5)
    with pytest.raises(ValueError, match="silhouette_grid"):
        HumanMoEConfig(silhouette_grid=30, silhouette_patch=8)


def test_router_statistics_share_sums_to_one_per_token_group():
    model = make_model()
    inputs = make_inputs(3)
    stats = router_statistics(model(inputs), inputs)
    assert {"keypoint", "ray", "query", *(f"query_{q}" for q in TASK_QUERIES)} == set(stats["share"])
    for name, share in stats["share"].items():
        assert share.shape == (model.config.depth, model.config.num_experts)
        torch.testing.assert_close(share.sum(-1), torch.ones(model.config.depth)), name
        assert ((stats["dropped"][name] >= 0) & (stats["dropped"][name] <= 1)).all()
    box_model = make_model(camera_encoding="box")
    assert "box" in router_statistics(box_model(inputs), inputs)["share"]
    dense = make_model(ffn="dense")
    assert router_statistics(dense(inputs), inputs) == {"share": {}, "dropped": {}}


def test_inputs_validation_names_the_field():
    inputs = make_inputs(2)
    with pytest.raises(ValueError, match="world3d"):
        make_model()(HumanInputs(inputs.keypoints2d, inputs.world3d[:, :17], inputs.bbox, inputs.K))


def test_to_body_params():
    out = make_model()(make_inputs(2))
    params = to_body_params(out)
    assert isinstance(params, BodyParams)
    assert params.bone_rotvec.shape == (2, 18, 3) and not params.translation.requires_grad
    torch.testing.assert_close(roma.rotvec_to_rotmat(params.bone_rotvec), roma.rotvec_to_rotmat(out["bone_rotvec"]).detach())


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_infer_gives_forwards_bodies_in_metres_without_gradients(encoding):
    model, inputs = make_model(camera_encoding=encoding), make_inputs(3)
    out = model(inputs)
    bodies = model.infer(inputs)
    assert set(bodies) == {"translation", "depth_m", "global_rotation", "bone_rotvec", "phenotype"}
    assert bodies["translation"].shape == (3, 3) and bodies["depth_m"].shape == (3,)
    assert bodies["global_rotation"].shape == (3, 3, 3) and bodies["bone_rotvec"].shape == (3, 18, 3)
    assert bodies["phenotype"].shape == (3, 6)
    assert not any(value.requires_grad for value in bodies.values())
    for name in ("translation", "global_rotation", "bone_rotvec", "phenotype"):
        torch.testing.assert_close(bodies[name], out[name].detach())
    torch.testing.assert_close(bodies["depth_m"], out["log_depth"].detach().exp())


def test_infer_takes_one_person_without_a_batch_dimension():
    model, inputs = make_model(), make_inputs(2)
    batched = model.infer(inputs)
    one = model.infer(inputs.map_tensors(lambda value: value[1]))
    assert one["translation"].shape == (3,) and one["global_rotation"].shape == (3, 3) and one["depth_m"].shape == ()
    for name, value in one.items():
        torch.testing.assert_close(value, batched[name][1], atol=1e-5, rtol=1e-5)


def test_a_few_adam_steps_reduce_a_simple_loss():
    model = make_model(dim=64, depth=2, expert_hidden=64).train()
    inputs = make_inputs(8, seed=5)
    target_phenotype = torch.rand(8, 6, generator=torch.Generator().manual_seed(1))
    target_depth = torch.linspace(2.0, 12.0, 8).log()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss_fn() -> torch.Tensor:
        out = model(inputs)
        task = (out["phenotype"] - target_phenotype).square().mean() + (out["log_depth"] - target_depth).square().mean()
        return task + 0.01 * out["balance_loss"]

    first = loss_fn().item()
    for _ in range(30):
        optimiser.zero_grad()
        loss = loss_fn()
        loss.backward()
        optimiser.step()
    assert loss_fn().item() < 0.5 * first


def test_silhouette_tokens_read_the_segmentation():
    model = make_model(silhouette_grid=16, silhouette_patch=4)
    assert model.num_tokens == make_model().num_tokens + 16
    assert (model.token_type == TOKEN_TYPES.index("silhouette")).sum() == 16
    inputs = make_inputs(2)
    g = torch.Generator().manual_seed(1)
    silhouette = (torch.rand(2, 16, 16, generator=g) > 0.5).float()
    with_silhouette = HumanInputs(inputs.keypoints2d, inputs.world3d, inputs.bbox, inputs.K, silhouette)
    zeros = HumanInputs(inputs.keypoints2d, inputs.world3d, inputs.bbox, inputs.K, torch.zeros(2, 16, 16))
    assert not torch.allclose(model(with_silhouette)["phenotype"], model(zeros)["phenotype"])
    torch.testing.assert_close(model(inputs)["phenotype"], model(zeros)["phenotype"])  # None reads as no one
    with pytest.raises(ValueError, match="silhouette"):
        model(HumanInputs(inputs.keypoints2d, inputs.world3d, inputs.bbox, inputs.K, torch.zeros(2, 8, 8)))
    stats = router_statistics(model(with_silhouette), with_silhouette)
    torch.testing.assert_close(stats["share"]["silhouette"].sum(-1), torch.ones(model.config.depth))


def test_checkpoints_from_before_silhouettes_load(tmp_path):
    model = make_model(seed=2, depth=2)
    path = tmp_path / "old.pt"
    state = model.state_dict()
    state["type_embed"] = state["type_embed"][: TOKEN_TYPES.index("silhouette")]  # as saved then
    torch.save({"format": "metrichmsr.humanmoe/1", "config": model.config.to_dict(), "state_dict": state}, path)
    inputs = make_inputs(2)
    torch.testing.assert_close(HumanMoE.load(path)(inputs)["translation"], model(inputs)["translation"])


def test_world_landmarks_read_all_the_body_only_or_none():
    inputs = make_inputs(2)

    def changed(joints) -> HumanInputs:
        world3d = inputs.world3d.clone()
        world3d[:, joints] = torch.randn_like(world3d[:, joints])
        return HumanInputs(inputs.keypoints2d, world3d, inputs.bbox, inputs.K)

    face, body = list(FACE_JOINTS), list(range(len(FACE_JOINTS), inputs.world3d.shape[1]))
    for reads, (reads_face, reads_body) in {"all": (True, True), "body": (False, True), "none": (False, False)}.items():
        model = make_model(world_landmarks=reads)
        for joints, expected in ((face, reads_face), (body, reads_body)):
            same = torch.allclose(model(inputs)["translation"], model(changed(joints))["translation"])
            assert same != expected, (reads, joints)
    assert FACE_JOINTS == (0, 1, 2, 3, 4)
    # Saved before "body" existed: booleans.
    assert HumanMoEConfig(world_landmarks=False).world_landmarks == "none"
    assert HumanMoEConfig.from_dict(HumanMoEConfig(world_landmarks=True).to_dict()).world_landmarks == "all"
    with pytest.raises(ValueError, match="world_landmarks"):
        HumanMoEConfig(world_landmarks="face")
