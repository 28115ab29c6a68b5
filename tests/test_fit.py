import math

import numpy as np
import pytest
import roma
import torch

from metrichmsr.body import PHENOTYPE_NAMES, POSE_BONES, BodyParams
from metrichmsr.camera import project
from metrichmsr.fit import (
    BodyFitter,
    FitConfig,
    PersonEvidence,
    _solve_translation,
    evidence_from_blazepose,
)
from metrichmsr.joints import JOINT_NAMES
from metrichmsr.perception.landmarks import BLAZEPOSE_FOR_JOINT

W, H = 1024, 768
F = W / 2 / math.tan(math.radians(35))
K = torch.tensor([[F, 0.0, (W - 1) / 2], [0.0, F, (H - 1) / 2], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def fitter(body_model):
    return BodyFitter(body_model)


def _truth(
    body_model, age: float, height: float, translation, yaw: float = 0.4, seed: int = 0, gender: float = 0.0
) -> BodyParams:
    generator = torch.Generator().manual_seed(seed)
    phenotype = torch.tensor([[gender, age, 0.5, 0.5, height, 0.5]])
    rotvec = 0.15 * torch.randn(1, len(POSE_BONES), 3, generator=generator)
    rotation = roma.rotvec_to_rotmat(torch.tensor([[0.0, yaw, 0.0]]))
    return BodyParams(phenotype, rotvec, rotation, torch.tensor([translation], dtype=torch.float32))


def _evidence(body_model, truth: BodyParams, noise_px: float = 1.5) -> tuple[PersonEvidence, object]:
    with torch.no_grad():
        out = body_model(truth.phenotype, truth.bone_rotvec, truth.global_rotation, truth.translation)
    uv = project(K, out.joints)
    uv = uv + noise_px * torch.randn(uv.shape, generator=torch.Generator().manual_seed(1))
    confidence = torch.ones(*uv.shape[:2], 1)
    relative = out.joints - truth.translation[:, None]
    box = torch.cat((uv.min(1).values, uv.max(1).values), dim=-1)
    return PersonEvidence(torch.cat((uv, confidence), -1), relative, box), out


def test_solve_translation_is_exact_without_noise():
    points = torch.randn(2, 10, 3) * 0.5
    translation = torch.tensor([[0.3, -0.2, 6.0], [-2.0, 1.0, 15.0]])
    uv = project(K, points + translation[:, None])
    solved = _solve_translation(K, points, uv, torch.ones(2, 10))
    torch.testing.assert_close(solved, translation, atol=1e-3, rtol=1e-4)


def test_evidence_maps_blazepose_indices_and_rotates_by_the_box_ray():
    landmarks = np.zeros((1, 33, 3))
    landmarks[0, :, 0] = np.arange(33)  # x encodes the BlazePose index
    landmarks[0, :, 2] = 0.9
    world = np.random.default_rng(0).normal(size=(1, 33, 3))
    centred_box = np.array([[K[0, 2] - 50, K[1, 2] - 100, K[0, 2] + 50, K[1, 2] + 100]])
    evidence = evidence_from_blazepose(landmarks, world, centred_box, K.numpy())
    for j, name in enumerate(JOINT_NAMES):
        index = BLAZEPOSE_FOR_JOINT[name]
        if index is None:
            assert evidence.keypoints2d[0, j, 2] == 0
        else:
            assert evidence.keypoints2d[0, j, 0] == index
            # A box on the optical axis: BlazePose's crop camera is the real camera.
            np.testing.assert_allclose(evidence.keypoints3d[0, j], world[0, index], atol=1e-5)
    # A box at the image's right edge looks along a ray turned to the right: the landmarks turn too.
    side_box = np.array([[W - 100, K[1, 2] - 100, W - 1, K[1, 2] + 100]])
    turned = evidence_from_blazepose(landmarks, world, side_box, K.numpy())
    forward = np.zeros((1, 33, 3))
    forward[0, 0] = (0, 0, 1)
    ray = evidence_from_blazepose(landmarks, forward, side_box, K.numpy()).keypoints3d[0, JOINT_NAMES.index("nose")]
    centre_u = (side_box[0, 0] + side_box[0, 2]) / 2
    assert ray[0] / ray[2] == pytest.approx((centre_u - K[0, 2].item()) / F, rel=1e-4)
    assert not torch.allclose(turned.keypoints3d, evidence.keypoints3d)


@pytest.mark.parametrize("translation", [(0.0, 0.3, 4.0), (-3.0, 0.8, 11.0)])
def test_fit_recovers_a_typical_adult_metrically(body_model, fitter, translation):
    # A typical adult of the population prior (both genders averaged: ~1.70 m): keypoints
    # alone barely tell men from women, so the prior's mean is what a fit can promise.
    truth = _truth(body_model, age=0.79, height=0.0, translation=translation, gender=0.5)
    for name, value in fitter.shape_prior.typical(truth.phenotype[:, 1], truth.phenotype[:, 0]).items():
        truth.phenotype[:, PHENOTYPE_NAMES.index(name)] = value
    evidence, true_out = _evidence(body_model, truth)
    fitted = fitter.fit(evidence, K)
    with torch.no_grad():
        out = body_model(fitted.phenotype, fitted.bone_rotvec, fitted.global_rotation, fitted.translation)
    true_height = body_model.standing_height(true_out.rest_vertices).item()
    height = body_model.standing_height(out.rest_vertices).item()
    assert abs(height - true_height) < 0.08
    assert fitted.translation[0, 2].item() == pytest.approx(translation[2], rel=0.10)
    reprojection = (project(K, out.joints) - project(K, true_out.joints)).norm(dim=-1).median()
    assert reprojection < 4.0  # pixels


def test_fit_starts_from_the_given_guess(body_model):
    truth = _truth(body_model, age=0.79, height=0.4, translation=(0.5, 0.2, 6.0), gender=0.5)
    evidence, _ = _evidence(body_model, truth, noise_px=0.0)
    frozen = BodyFitter(body_model, FitConfig(global_iterations=0, pose_iterations=0, iterations=0))
    same = frozen.fit(evidence, K, init=truth)
    for got, want in zip(vars(same).values(), vars(truth).values()):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    # Refining from the truth keeps it (the objective's minimum is there).
    refined = BodyFitter(body_model).fit(evidence, K, init=truth)
    assert refined.translation[0, 2].item() == pytest.approx(6.0, rel=0.03)


def test_shape_prior_prefers_typical_bodies(fitter):
    typical = fitter.shape_prior.typical(torch.tensor([0.79, 0.3]), torch.tensor([0.0, 0.0]))
    phenotype = torch.tensor([[0.0, 0.79, 0.5, 0.5, 0.5, 0.5], [0.0, 0.3, 0.5, 0.5, 0.5, 0.5]])
    for name, values in typical.items():
        phenotype[:, PHENOTYPE_NAMES.index(name)] = values
    nll_typical = fitter.shape_prior(phenotype)
    giant = phenotype.clone()
    giant[:, PHENOTYPE_NAMES.index("height")] = 0.95
    assert (fitter.shape_prior(giant) > nll_typical + 1.0).all()
    assert nll_typical.abs().max() < 1.0


def test_fit_of_nobody_is_empty(fitter):
    empty = PersonEvidence(torch.zeros(0, 23, 3), torch.zeros(0, 23, 3), torch.zeros(0, 4))
    assert fitter.fit(empty, K).translation.shape == (0, 3)


@pytest.mark.parametrize("translation", [[0.4, 0.2, 4.0], [-3.0, 1.0, 25.0]])
def test_align_poses_a_body_onto_its_keypoints_and_keeps_its_build_and_distance(body_model, fitter, translation):
    """A body 4 m and one 25 m away (a 700-px and a 110-px person): started from the true body
    with every bone 0.2 rad off, turned 5 degrees and 3% of its height across the image, the
    aligned joints land on the keypoints again; the phenotype and the depth do not move."""
    truth = _truth(body_model, 0.8, 0.5, translation, seed=3)
    evidence, _ = _evidence(body_model, truth, noise_px=0.0)
    generator = torch.Generator().manual_seed(4)
    box_height = float(evidence.bbox[0, 3] - evidence.bbox[0, 1])
    start = BodyParams(
        truth.phenotype,
        truth.bone_rotvec + 0.2 * torch.randn(truth.bone_rotvec.shape, generator=generator),
        roma.rotvec_to_rotmat(torch.tensor([[0.0, 0.0, math.radians(5)]])) @ truth.global_rotation,
        truth.translation + torch.tensor([[0.03 * box_height * translation[2] / F, 0.0, 0.0]]),
    )

    def pixel_error(params: BodyParams) -> float:
        joints = body_model.joints(params.phenotype, params.bone_rotvec, params.global_rotation, params.translation)
        return float((project(K, joints) - evidence.keypoints2d[..., :2]).norm(dim=-1).median()) / box_height

    aligned = fitter.align(evidence, K, start)
    assert pixel_error(start) > 0.04 and pixel_error(aligned) < 0.25 * pixel_error(start)
    torch.testing.assert_close(aligned.phenotype, truth.phenotype)
    assert float(aligned.translation[0, 2]) == pytest.approx(translation[2])


def test_align_of_nobody_and_with_no_steps_is_the_start(body_model, fitter):
    truth = _truth(body_model, 0.8, 0.5, [0.0, 0.0, 5.0])
    evidence, _ = _evidence(body_model, truth)
    still = BodyFitter(body_model, FitConfig(align_iterations=0)).align(evidence, K, truth)
    assert still is truth
    nobody = BodyParams(*(t[:0] for t in (truth.phenotype, truth.bone_rotvec, truth.global_rotation, truth.translation)))
    empty = PersonEvidence(evidence.keypoints2d[:0], evidence.keypoints3d[:0], evidence.bbox[:0])
    assert fitter.align(empty, K, nobody) is nobody
