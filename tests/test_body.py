import math
from functools import partial

import pytest
import roma
import torch

from metrichmsr.body import ADULT_AGE, PHENOTYPE_NAMES, POSE_BONES, SURFACE_POINTS, BodyModel, up_directions
from metrichmsr.joints import JOINT_NAMES


def _params(n: int, height: float = 0.4):
    phenotype = torch.full((n, 6), 0.5)
    phenotype[:, PHENOTYPE_NAMES.index("age")] = 0.79
    phenotype[:, PHENOTYPE_NAMES.index("height")] = height
    return phenotype, torch.zeros(n, len(POSE_BONES), 3), torch.eye(3).repeat(n, 1, 1)


def test_shapes_and_root_is_translation(body_model: BodyModel):
    phenotype, rotvec, rotation = _params(2)
    rotvec[1] = 0.3 * torch.randn(len(POSE_BONES), 3, generator=torch.Generator().manual_seed(0))
    translation = torch.tensor([[0.5, -0.2, 4.0], [-1.0, 0.3, 9.0]])
    out = body_model(phenotype, rotvec, rotation, translation)
    assert out.vertices.shape == (2, 13718, 3)
    assert out.joints.shape == (2, len(JOINT_NAMES), 3)
    hips = out.joints[:, [JOINT_NAMES.index("left_hip"), JOINT_NAMES.index("right_hip")]].mean(1)
    torch.testing.assert_close(hips, translation, atol=1e-4, rtol=0)


def test_identity_rotation_stands_upright_facing_camera(body_model: BodyModel):
    phenotype, rotvec, rotation = _params(1)
    joints = body_model(phenotype, rotvec, rotation, torch.tensor([[0.0, 0.0, 5.0]])).joints[0]
    j = {name: joints[i] for i, name in enumerate(JOINT_NAMES)}
    assert j["nose"][1] < j["left_hip"][1] < j["left_ankle"][1]  # camera y points down
    assert j["nose"][2] < j["left_hip"][2]  # the face is nearer the camera than the hips' centre
    assert j["left_shoulder"][0] > j["right_shoulder"][0]  # facing us, their left is our right


def test_up_directions_point_from_the_feet_to_the_head(body_model: BodyModel):
    phenotype, rotvec, _ = _params(3)
    rotation = roma.rotvec_to_rotmat(torch.tensor([[0.0, 0.0, 0.0], [0.4, 1.0, 0.0], [-0.3, 2.5, 0.6]]))
    joints = body_model(phenotype, rotvec, rotation, torch.tensor([[0.0, 0.0, 5.0]] * 3)).joints
    ankles = joints[:, [JOINT_NAMES.index("left_ankle"), JOINT_NAMES.index("right_ankle")]].mean(1)
    body_axis = torch.nn.functional.normalize(joints[:, JOINT_NAMES.index("nose")] - ankles, dim=-1).double().numpy()
    up = up_directions(rotation)
    assert up.shape == (3, 3)
    assert up[0].tolist() == pytest.approx([0.0, -1.0, 0.0])  # camera y points down
    assert (up * body_axis).sum(-1) == pytest.approx([1.0] * 3, abs=0.02)  # within ~11 degrees (the head sits forward)


def test_global_rotation_turns_about_the_root(body_model: BodyModel):
    phenotype, rotvec, rotation = _params(2)
    rotation[1] = roma.rotvec_to_rotmat(torch.tensor([0.0, math.pi / 2, 0.0]))
    translation = torch.tensor([[0.0, 0.0, 5.0]] * 2)
    joints = body_model(phenotype, rotvec, rotation, translation).joints
    centred = joints - translation[:, None]
    torch.testing.assert_close(centred[1], centred[0] @ rotation[1].T, atol=1e-4, rtol=0)


def test_standing_height_follows_the_height_phenotype(body_model: BodyModel):
    short = body_model(*_params(1, 0.2), torch.zeros(1, 3)).rest_vertices
    tall = body_model(*_params(1, 0.6), torch.zeros(1, 3)).rest_vertices
    h_short, h_tall = BodyModel.standing_height(short), BodyModel.standing_height(tall)
    assert 1.3 < h_short.item() < h_tall.item() < 2.3
    from anny import Anthropometry

    assert h_tall.item() == pytest.approx(Anthropometry(body_model.anny).height(tall).item())


def test_pose_from_rotvec_scatters_only_pose_bones(body_model: BodyModel):
    rotvec = torch.zeros(1, len(POSE_BONES), 3)
    rotvec[0, POSE_BONES.index("lowerleg01.L")] = torch.tensor([0.5, 0.0, 0.0])
    pose = body_model.pose_from_rotvec(rotvec)
    assert pose.shape == (1, body_model.num_bones, 4, 4)
    moved = [body_model.bone_names[i] for i in range(body_model.num_bones) if not torch.allclose(pose[0, i], torch.eye(4))]
    assert moved == ["lowerleg01.L"]


def test_joints_and_surface_are_the_full_model_s(body_model: BodyModel):
    phenotype, rotvec, rotation = _params(2)
    rotvec[1] = 0.3 * torch.randn(len(POSE_BONES), 3, generator=torch.Generator().manual_seed(1))
    translation = torch.tensor([[0.5, -0.2, 4.0], [-1.0, 0.3, 9.0]])
    joints, surface = body_model.joints_and_surface(phenotype, rotvec, rotation, translation)
    assert surface.shape == (2, SURFACE_POINTS, 3)
    torch.testing.assert_close(joints, body_model.joints(phenotype, rotvec, rotation, translation))
    vertices = body_model(phenotype, rotvec, rotation, translation).vertices
    # Every surface point is one of the mesh's vertices, and they spread over the whole body.
    distance = torch.cdist(surface, vertices, compute_mode="donot_use_mm_for_euclid_dist").amin(-1)
    assert float(distance.max()) < 1e-4
    extent = surface.amax(1) - surface.amin(1)
    torch.testing.assert_close(extent, vertices.amax(1) - vertices.amin(1), atol=0.03, rtol=0)


def _standing_heights(body_model: BodyModel, phenotype: torch.Tensor) -> torch.Tensor:
    n = len(phenotype)
    rest = body_model(phenotype, torch.zeros(n, len(POSE_BONES), 3), torch.eye(3).expand(n, 3, 3), torch.zeros(n, 3))
    return body_model.standing_height(rest.rest_vertices)


def test_standing_heights_are_the_whole_rest_meshs(body_model: BodyModel):
    """The few vertices ``standing_heights`` reads give the whole mesh's height, for any build."""
    generator = torch.Generator().manual_seed(1)
    corners = torch.cartesian_prod(*[torch.tensor([0.0, 1.0])] * len(PHENOTYPE_NAMES))
    phenotype = torch.cat([corners, torch.rand(64, len(PHENOTYPE_NAMES), generator=generator)])
    whole = _standing_heights(body_model, phenotype)
    torch.testing.assert_close(body_model.standing_heights(phenotype), whole, atol=1e-6, rtol=0)


def test_a_shorter_body_is_a_younger_one_and_a_taller_child_an_older_one(body_model: BodyModel):
    # An adult made shorter, an adult taller (beyond what age gives), a child taller, a child
    # taller than an 18-year-old.
    people = torch.tensor([[0.3, 0.85, 0.6, 0.4, 0.55, 0.5], [0.9, 0.8, 0.5, 0.5, 0.5, 0.5], [0.3, 0.3, 0.6, 0.4, 0.55, 0.5]])
    people = torch.cat([people, people[2:]])
    people[3, 0] = 0.8
    heights = partial(_standing_heights, body_model)
    own = heights(people)
    aged = body_model.for_height(people, own * torch.tensor([0.6, 1.0, 1.3, 1.0]) + torch.tensor([0.0, 0.1, 0.0, 1.0]), "age")
    age = PHENOTYPE_NAMES.index("age")
    assert aged[0, age] < 0.5 * people[0, age]  # a child
    assert people[2, age] < aged[2, age] < ADULT_AGE  # older, not yet grown up
    torch.testing.assert_close(heights(aged)[[0, 2]], own[[0, 2]] * torch.tensor([0.6, 1.3]), atol=0.01, rtol=0)
    others = [i for i in range(len(PHENOTYPE_NAMES)) if i != age]
    torch.testing.assert_close(aged[:, others], people[:, others])
    torch.testing.assert_close(aged[1], people[1])  # an adult taller than it can grow: unchanged
    assert aged[3, age] == pytest.approx(ADULT_AGE)  # a child taller than an 18-year-old: 18


def test_a_taller_or_shorter_adult_keeps_its_age(body_model: BodyModel):
    adult = torch.tensor([[0.3, 0.85, 0.6, 0.4, 0.55, 0.5], [0.9, 0.8, 0.5, 0.5, 0.5, 0.5]])
    own = _standing_heights(body_model, adult)
    resized = body_model.for_height(adult, own * torch.tensor([1.06, 0.94]), "height")
    torch.testing.assert_close(_standing_heights(body_model, resized), own * torch.tensor([1.06, 0.94]), atol=0.005, rtol=0)
    height = PHENOTYPE_NAMES.index("height")
    assert resized[0, height] > adult[0, height] and resized[1, height] < adult[1, height]
    others = [i for i in range(len(PHENOTYPE_NAMES)) if i != height]
    torch.testing.assert_close(resized[:, others], adult[:, others])
    with pytest.raises(ValueError, match="parameter"):
        body_model.for_height(adult, own, "weight")


def test_a_rest_build_poses_the_same_joints(body_model: BodyModel):
    """The fast joints of bodies of a fixed build, its rest model built once, are the joints."""
    generator = torch.Generator().manual_seed(1)
    phenotype = torch.rand(3, 6, generator=generator)
    pose = 0.3 * torch.randn(3, len(POSE_BONES), 3, generator=generator)
    rotation = torch.linalg.qr(torch.randn(3, 3, 3, generator=generator))[0]
    translation = torch.randn(3, 3, generator=generator)
    build = body_model.rest_build(phenotype)
    torch.testing.assert_close(
        body_model.joints(phenotype, pose, rotation, translation, build),
        body_model.joints(phenotype, pose, rotation, translation),
    )
