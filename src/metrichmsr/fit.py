"""Metric body fitting under full perspective: pose, phenotype and translation per person.

What fixes the metric scale. Under a pinhole camera a body of height H at depth Z and one of
height 2H at 2Z project to the same pixels; only knowledge about bodies breaks the tie. The
fit explains the 2D keypoints with an Anny body seen through the true K, so the *shape* of the
keypoint constellation (head size against shoulder width, leg length against torso, ...) moves
the phenotype's age and proportions, and a population prior ties height to age and gender
(Anny's ``SimpleShapeDistribution``, calibrated on WHO height-for-age data), so a child's big
head and short legs can pull towards a child's height and a near distance.

What this does and does not achieve (measured, see BENCHMARKS.md): for adults the recovered
height is close to the population mean and the depth error follows the deviation of the true
height from it. Sparse keypoints are weak evidence for age once the pose is free to absorb
proportions: trying typical bodies of several ages and genders per person (each with its own
pose fit) made adults worse and did not find children reliably, so it was dropped; children
are mostly recovered as small adults further away. HumanMoE (``models.humanmoe``) now
predicts the bodies in one pass; this fit is the optional refinement that starts from its
prediction (``fit``'s ``init``).

The objective, minimised with Adam over all people of an image at once:

1. 2D reprojection of the 23 joints against the detector's keypoints, in units of the person's
   box height, weighted by keypoint visibility (Charbonnier penalty, robust to outliers);
2. 3D bone directions against BlazePose's world landmarks, which are metric-free in scale but
   good at depth ordering of limbs; they are expressed in a virtual camera looking along the
   person's box-centre ray, so they are first rotated by that ray (the bounding-ray idea of
   MetricHMSR) into the real camera frame;
3. priors: negative log-likelihood of height, weight, muscle and proportions given age and
   gender, a broad prior on age, and a small pose prior (rotation magnitudes).

Any initial guess is accepted (``BodyParams``); ``initial_guess`` builds one from the evidence
alone (rest pose oriented by the 3D landmarks, translation by linear least squares).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import roma
import torch

from metrichmsr.body import PHENOTYPE_NAMES, POSE_BONES, BodyModel, BodyParams
from metrichmsr.camera import crop_rotation, project
from metrichmsr.joints import JOINT_NAMES
from metrichmsr.perception.landmarks import BLAZEPOSE_FOR_JOINT

_J = {name: i for i, name in enumerate(JOINT_NAMES)}
_MID_HIP, _MID_SHOULDER = len(JOINT_NAMES), len(JOINT_NAMES) + 1
#: Segments whose directions the 3D landmarks constrain (indices into joints + the two mid points).
_SEGMENTS = torch.tensor(
    [
        (_J["left_shoulder"], _J["left_elbow"]), (_J["left_elbow"], _J["left_wrist"]),
        (_J["right_shoulder"], _J["right_elbow"]), (_J["right_elbow"], _J["right_wrist"]),
        (_J["left_hip"], _J["left_knee"]), (_J["left_knee"], _J["left_ankle"]),
        (_J["right_hip"], _J["right_knee"]), (_J["right_knee"], _J["right_ankle"]),
        (_J["left_ankle"], _J["left_big_toe"]), (_J["right_ankle"], _J["right_big_toe"]),
        (_J["right_hip"], _J["left_hip"]), (_J["right_shoulder"], _J["left_shoulder"]),
        (_MID_HIP, _MID_SHOULDER), (_MID_SHOULDER, _J["nose"]), (_J["right_ear"], _J["left_ear"]),
    ]
)  # fmt: skip
_TORSO = [_J["left_shoulder"], _J["right_shoulder"], _J["left_hip"], _J["right_hip"]]
_DEFAULT_AGE = 0.79  # Anny age parameter of a ~30-year-old adult


@dataclass
class PersonEvidence:
    """What perception says about the people of one image (batched over N people).

    keypoints2d: (N, 23, 3) pixels + confidence in [0, 1], JOINT_NAMES order.
    keypoints3d: (N, 23, 3) metres relative to the hips, camera-frame axes (scale unreliable).
    bbox: (N, 4) [x0, y0, x1, y1] pixels.
    """

    keypoints2d: torch.Tensor
    keypoints3d: torch.Tensor
    bbox: torch.Tensor

    def __len__(self) -> int:
        return self.keypoints2d.shape[0]

    def to(self, device: torch.device | str) -> "PersonEvidence":
        return PersonEvidence(self.keypoints2d.to(device), self.keypoints3d.to(device), self.bbox.to(device))


@dataclass(frozen=True)
class FitConfig:
    """Iterations, step sizes and loss weights of the fit."""

    global_iterations: int = 20
    pose_iterations: int = 30
    iterations: int = 50
    learning_rate: float = 0.04
    weight_2d: float = 1.0
    weight_3d: float = 0.05
    weight_pose_prior: float = 0.002
    weight_shape_prior: float = 0.004
    weight_age_prior: float = 0.0002
    robust_scale: float = 0.02  # of box height: residuals beyond it count ~linearly
    # BodyFitter.align: steps; each bone's and the turn's pull toward where they started (per
    # rad^2), and the limbs' directions along the line of sight (per unit^2), against the 2D
    # term's; where its pull fades (box heights); the Adam step sizes.
    align_iterations: int = 30
    align_weight_pose: float = 0.01
    align_weight_turn: float = 0.05
    align_weight_depth: float = 0.3
    align_saturate_at: float = 0.08
    align_lr_pose: float = 0.03  # rad
    align_lr_turn: float = 0.01  # rad
    align_lr_shift: float = 0.005  # box heights


def evidence_from_blazepose(
    landmarks2d: np.ndarray, world_landmarks: np.ndarray, bbox: np.ndarray, K: np.ndarray
) -> PersonEvidence:
    """Map BlazePose outputs of N people to the 23 Anny joints.

    landmarks2d (N, 33, 3) [x_px, y_px, visibility]; world_landmarks (N, 33, 3) metres in
    BlazePose's crop-aligned frame; bbox (N, 4); K (3, 3) or (N, 3, 3). The world landmarks are rotated
    from the virtual camera that looks along each box centre's ray into the real camera frame.
    """
    n = landmarks2d.shape[0]
    index = [BLAZEPOSE_FOR_JOINT[name] for name in JOINT_NAMES]
    present = torch.tensor([i is not None for i in index], dtype=torch.float32)
    gather = [i if i is not None else 0 for i in index]
    kp2d = torch.as_tensor(landmarks2d, dtype=torch.float32).reshape(n, 33, 3)[:, gather].clone()
    kp2d[..., 2] *= present
    world = torch.as_tensor(world_landmarks, dtype=torch.float32).reshape(n, 33, 3)[:, gather]
    box = torch.as_tensor(bbox, dtype=torch.float32).reshape(n, 4)
    centre = torch.stack(((box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2), dim=-1)
    rotation = crop_rotation(torch.as_tensor(K, dtype=torch.float32), centre)  # (N, 3, 3)
    kp3d = torch.einsum("nij,nkj->nki", rotation, world) * present[:, None]
    return PersonEvidence(kp2d, kp3d, box)


def _with_mid_points(joints: torch.Tensor) -> torch.Tensor:
    """(N, 23, 3) -> (N, 25, 3): appends the hip and shoulder midpoints."""
    mid_hip = joints[:, [_J["left_hip"], _J["right_hip"]]].mean(1, keepdim=True)
    mid_shoulder = joints[:, [_J["left_shoulder"], _J["right_shoulder"]]].mean(1, keepdim=True)
    return torch.cat((joints, mid_hip, mid_shoulder), dim=1)


def _segment_directions(joints: torch.Tensor) -> torch.Tensor:
    """(N, 23, 3) -> (N, S, 3) unit directions of _SEGMENTS."""
    points = _with_mid_points(joints)
    return torch.nn.functional.normalize(points[:, _SEGMENTS[:, 1]] - points[:, _SEGMENTS[:, 0]], dim=-1)


class ShapePrior(torch.nn.Module):
    """Negative log-likelihood of Anny phenotypes under Anny's population model."""

    def __init__(self, body: BodyModel):
        super().__init__()
        from anny.shape_distribution import SimpleShapeDistribution

        self.distribution = SimpleShapeDistribution(body.anny)

    def _by_sex(self, name: str, gender: torch.Tensor):
        """(conditional distribution of ``name`` given age, share) for boys and girls, gender (N,)."""
        for sex, share in (("boys", 1 - gender), ("girls", gender)):
            yield getattr(self.distribution, f"{sex}_conditional_{name}_distribution"), share

    def _nll(self, name: str, value: torch.Tensor, age: torch.Tensor, gender: torch.Tensor) -> torch.Tensor:
        """NLL of ``value`` minus that of the distribution's mean, so it is ~0 for a typical body.

        Child distributions are far narrower than adult ones; without the offset their higher
        density would make "child" the cheapest explanation of any adult.
        """
        total = torch.zeros_like(value)
        for distribution, share in self._by_sex(name, gender):
            beta = distribution.get_torch_distribution(age)
            mean = (beta.concentration1 / (beta.concentration1 + beta.concentration0)).detach()
            total = total + share * (beta.log_prob(mean) - beta.log_prob(value.clamp(0.005, 0.995)))
        return total

    def forward(self, phenotype: torch.Tensor) -> torch.Tensor:
        """phenotype (N, 6) -> (N,) NLL of height, weight, muscle, proportions given age, gender."""
        p = {name: phenotype[:, i] for i, name in enumerate(PHENOTYPE_NAMES)}
        age, gender = p["age"].clamp(0.0, 1.0), p["gender"].clamp(0.0, 1.0)
        return sum(self._nll(name, p[name], age, gender) for name in ("height", "weight", "muscle", "proportions"))

    def typical(self, age: torch.Tensor, gender: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean height, weight, muscle, proportions (N,) for Anny ages and genders (N,)."""
        out = {}
        for name in ("height", "weight", "muscle", "proportions"):
            out[name] = torch.zeros_like(age)
            for distribution, share in self._by_sex(name, gender):
                alpha, beta = distribution.get_distribution_params(age)
                out[name] = out[name] + share * alpha / (alpha + beta)
        return out


def _box_heights(evidence: PersonEvidence) -> torch.Tensor:
    """(N,) the people's box heights, pixels, at least 8."""
    return (evidence.bbox[:, 3] - evidence.bbox[:, 1]).clamp(min=8.0)


def _solve_translation(K: torch.Tensor, points: torch.Tensor, uv: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Translation (N, 3) so that points (N, K, 3) + t project onto uv (N, K, 2), by linear LSQ.

    K (3, 3) or one per person (N, 3, 3). Each keypoint gives two equations linear in t:
    fx (X + tx) - (u - cx)(Z + tz) = 0.
    """
    fx, fy, cx, cy = (K[..., i, j, None] for i, j in ((0, 0), (1, 1), (0, 2), (1, 2)))
    du, dv = uv[..., 0] - cx, uv[..., 1] - cy
    zeros = torch.zeros_like(du)
    a_u = torch.stack((fx.expand_as(du), zeros, -du), dim=-1)
    a_v = torch.stack((zeros, fy.expand_as(dv), -dv), dim=-1)
    b_u = du * points[..., 2] - fx * points[..., 0]
    b_v = dv * points[..., 2] - fy * points[..., 1]
    w = weights.sqrt()[..., None]
    A = torch.cat((a_u, a_v), dim=1) * torch.cat((w, w), dim=1)
    b = torch.cat((b_u, b_v), dim=1)[..., None] * torch.cat((w, w), dim=1)
    solution = torch.linalg.lstsq(A.double(), b.double()).solution[..., 0].float()
    solution[:, 2] = solution[:, 2].clamp(min=0.3)
    return solution


class BodyFitter:
    """Fits Anny bodies to keypoint evidence under a known camera. Reuse one per process."""

    def __init__(self, body: BodyModel, config: FitConfig = FitConfig()):
        self.body = body
        self.config = config
        self.shape_prior = ShapePrior(body)

    def initial_guess(self, evidence: PersonEvidence, K: torch.Tensor) -> BodyParams:
        """Rest-pose adults of typical build, turned to match the 3D landmarks, placed by LSQ."""
        n, device = len(evidence), evidence.keypoints2d.device
        age, gender = torch.full((n,), _DEFAULT_AGE, device=device), torch.full((n,), 0.5, device=device)
        typical = self.shape_prior.typical(age, gender)
        phenotype = torch.stack(
            [gender, age, typical["muscle"], typical["weight"], typical["height"], typical["proportions"]],
            dim=-1,
        )
        bone_rotvec = torch.zeros(n, len(POSE_BONES), 3, device=device)
        eye = torch.eye(3, device=device).expand(n, 3, 3).contiguous()
        with torch.no_grad():
            rest = self.body.joints(phenotype, bone_rotvec, eye, torch.zeros(n, 3, device=device))
            weights = evidence.keypoints2d[:, _TORSO, 2].clamp(min=0.05)
            rotation, _ = roma.rigid_points_registration(rest[:, _TORSO], evidence.keypoints3d[:, _TORSO], weights)
            posed = torch.einsum("nij,nkj->nki", rotation, rest)
            translation = _solve_translation(K, posed, evidence.keypoints2d[..., :2], evidence.keypoints2d[..., 2])
        return BodyParams(phenotype, bone_rotvec, rotation, translation)

    def _losses(
        self, params: BodyParams, evidence: PersonEvidence, K: torch.Tensor, phenotype_prior: bool = True
    ) -> dict[str, torch.Tensor]:
        """Weighted loss terms, each (N,). ``phenotype_prior=False`` leaves out the shape and
        age priors: constant while the phenotype is frozen, and a third of an iteration's cost."""
        cfg = self.config
        joints = self.body.joints(params.phenotype, params.bone_rotvec, params.global_rotation, params.translation)
        confidence = evidence.keypoints2d[..., 2]
        loss_2d = self._reprojection(joints, evidence, K)
        direction_error = (_segment_directions(joints) - _segment_directions(evidence.keypoints3d)).square().sum(-1)
        seg_conf = _with_mid_points(confidence[..., None])[..., 0]
        seg_weight = 0.3 + 0.7 * torch.minimum(seg_conf[:, _SEGMENTS[:, 0]], seg_conf[:, _SEGMENTS[:, 1]])
        has_3d = (evidence.keypoints3d.abs().sum((1, 2)) > 0).float()
        loss_3d = has_3d * (seg_weight * direction_error).sum(1) / seg_weight.sum(1)
        terms = {
            "2d": cfg.weight_2d * loss_2d,
            "3d": cfg.weight_3d * loss_3d,
            "pose": cfg.weight_pose_prior * params.bone_rotvec.square().sum((1, 2)),
        }
        if phenotype_prior:
            age = params.phenotype[:, PHENOTYPE_NAMES.index("age")]
            terms["shape"] = cfg.weight_shape_prior * self.shape_prior(params.phenotype)
            # Broad: adults are the common case, children stay reachable through proportions.
            terms["age"] = cfg.weight_age_prior * ((age - _DEFAULT_AGE) / 0.25).square()
        return terms

    def _reprojection(
        self, joints: torch.Tensor, evidence: PersonEvidence, K: torch.Tensor, saturate_at: float | None = None
    ) -> torch.Tensor:
        """(N,) the 2D term: joints (N, 23, 3) projected through K against the keypoints, in box
        heights, Charbonnier-robust, weighted by the keypoints' confidence. ``saturate_at`` (box
        heights): Geman-McClure instead, whose pull fades beyond that distance."""
        residual = (project(K, joints) - evidence.keypoints2d[..., :2]) / _box_heights(evidence)[:, None, None]
        squared = residual.square().sum(-1)
        if saturate_at is None:
            robust = (squared + self.config.robust_scale**2).sqrt() - self.config.robust_scale
        else:
            robust = squared / (squared + saturate_at**2)
        confidence = evidence.keypoints2d[..., 2]
        return (confidence * robust).sum(1) / confidence.sum(1).clamp(min=1e-6)

    def align(self, evidence: PersonEvidence, K: np.ndarray | torch.Tensor, init: BodyParams) -> BodyParams:
        """``init``'s bodies posed, turned and moved across the image onto the keypoints, each
        keeping its build and its distance. K (3, 3) or (N, 3, 3) pixels.

        HumanMoE reads a person's distance and build well and their limbs loosely: its bodies,
        projected, miss BlazePose's own landmarks by more than 5% of the box on about a third
        of the joints (PCK@0.05 0.5-0.7 on real photos, BENCHMARKS.md), and the overlay is the
        first thing a user judges. Adam on the 2D term, over the pose, a turn and a shift
        across the image in box heights (a step then moves a 60-px person as much, for its
        size, as a 600-px one) applied across the line of sight at the body's own depth. The
        2D term saturates (Geman-McClure, ``align_saturate_at``): a landmark far from its joint
        is more often BlazePose's mistake (a swapped or hidden limb) than HumanMoE's, and is
        let be. Each bone and the turn are pulled toward where they started, and so is each
        limb's direction along the line of sight: the image cannot tell a limb's depth, and the
        2D term alone bends limbs toward or away from the camera. On 80 held-out renders the
        projected joints' median error against the true ones went 3.5% -> 2.5% of the box,
        PA-MPJPE 63 -> 70 mm (81 without the pull along the line of sight); BENCHMARKS.md.
        The phenotype and the depth stay HumanMoE's.
        """
        cfg = self.config
        if len(evidence) == 0 or cfg.align_iterations == 0:
            return init
        device = evidence.keypoints2d.device
        K = torch.as_tensor(K, dtype=torch.float32, device=device).expand(len(evidence), 3, 3)
        build = self.body.rest_build(init.phenotype)
        sight = torch.nn.functional.normalize(init.translation, dim=-1)[:, None]  # (N, 1, 3)
        with torch.no_grad():
            start = self.body.joints(init.phenotype, init.bone_rotvec, init.global_rotation, init.translation, build)
            start_depths = (_segment_directions(start) * sight).sum(-1)  # (N, S)
        depth_per_shift = _box_heights(evidence)[:, None] * init.translation[:, 2:] / K[:, [0, 1], [0, 1]]  # (N, 2) m
        pose = init.bone_rotvec.clone().requires_grad_(True)
        turn = torch.zeros(len(evidence), 3, device=device, requires_grad=True)  # rotation vector, camera axes
        shift = torch.zeros(len(evidence), 2, device=device, requires_grad=True)

        def current() -> BodyParams:
            translation = init.translation + torch.nn.functional.pad(shift * depth_per_shift, (0, 1))
            return BodyParams(init.phenotype, pose, roma.rotvec_to_rotmat(turn) @ init.global_rotation, translation)

        optimiser = torch.optim.Adam(
            [
                {"params": [pose], "lr": cfg.align_lr_pose},
                {"params": [turn], "lr": cfg.align_lr_turn},
                {"params": [shift], "lr": cfg.align_lr_shift},
            ]
        )
        for _ in range(cfg.align_iterations):
            optimiser.zero_grad()
            params = current()
            joints = self.body.joints(params.phenotype, params.bone_rotvec, params.global_rotation, params.translation, build)
            loss = self._reprojection(joints, evidence, K, cfg.align_saturate_at).sum()
            loss = loss + cfg.align_weight_pose * (pose - init.bone_rotvec).square().sum()
            loss = loss + cfg.align_weight_turn * turn.square().sum()
            depths = (_segment_directions(joints) * sight).sum(-1)
            loss = loss + cfg.align_weight_depth * (depths - start_depths).square().sum()
            loss.backward()
            optimiser.step()
        return current().detach()

    def _optimise(
        self,
        init: BodyParams,
        evidence: PersonEvidence,
        K: torch.Tensor,
        stages: tuple[tuple[tuple[str, ...], int], ...],
    ) -> BodyParams:
        """Adam over the named variables of each stage in turn; returns the detached result.

        Variables: "rotation" (a rotation vector applied to the initial global rotation),
        "translation" (root image-plane direction and log depth: well conditioned for Adam),
        "pose" (bone rotation vectors), "phenotype" (logits).
        """
        n, device = len(evidence), evidence.keypoints2d.device
        depth = init.translation[:, 2].clamp(min=0.1)
        variables = {
            "phenotype": torch.logit(init.phenotype.clamp(0.02, 0.98)),
            "pose": init.bone_rotvec.clone(),
            "rotation": torch.zeros(n, 3, device=device),
            "root_xy": init.translation[:, :2] / depth[:, None],
            "log_depth": depth.log(),
        }
        for tensor in variables.values():
            tensor.requires_grad_(True)

        def current() -> BodyParams:
            z = variables["log_depth"].exp()
            translation = torch.cat((variables["root_xy"] * z[:, None], z[:, None]), dim=-1)
            rotation = roma.rotvec_to_rotmat(variables["rotation"]) @ init.global_rotation
            return BodyParams(torch.sigmoid(variables["phenotype"]), variables["pose"], rotation, translation)

        for names, iterations in stages:
            free = [variables[v] for name in names for v in (("root_xy", "log_depth") if name == "translation" else (name,))]
            optimiser = torch.optim.Adam(free, lr=self.config.learning_rate)
            for _ in range(iterations):
                optimiser.zero_grad()
                terms = self._losses(current(), evidence, K, phenotype_prior="phenotype" in names)
                sum(term.sum() for term in terms.values()).backward()
                optimiser.step()
        return current().detach()

    def fit(self, evidence: PersonEvidence, K: np.ndarray | torch.Tensor, init: BodyParams | None = None) -> BodyParams:
        """Fit N people. K (3, 3) pixels, or (N, 3, 3) one camera per person (people of several
        images, or several camera hypotheses, in one batch). Returns detached BodyParams (N, ...).

        Stages: (1) orientation and translation of the initial bodies; (2) with the pose;
        (3) everything together, phenotype included.
        """
        device = evidence.keypoints2d.device
        K = torch.as_tensor(K, dtype=torch.float32, device=device)
        cfg = self.config
        if len(evidence) == 0:
            empty = (torch.zeros(0, *shape, device=device) for shape in ((6,), (len(POSE_BONES), 3), (3, 3), (3,)))
            return BodyParams(*empty)
        params = self.initial_guess(evidence, K) if init is None else init
        stages = (
            (("rotation", "translation"), cfg.global_iterations),
            (("rotation", "translation", "pose"), cfg.pose_iterations),
            (("rotation", "translation", "pose", "phenotype"), cfg.iterations),
        )
        return self._optimise(params, evidence, K, stages)
