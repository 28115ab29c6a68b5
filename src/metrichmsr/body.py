"""Anny body model wrapper: batched forward, COCO joints, standing height, camera frame.

Anny is z-up, metres, facing -y with x the person's left and the pelvis at the origin; its
pose is ``(B, 104, 4, 4)`` local transforms whose rotations turn about each bone's head in
world-aligned axes ("local-ref"). This module is the one place where Anny's frame becomes the
OpenCV camera frame (x right, y down, z forward):

    X_cam = R_global @ ANNY_TO_CAMERA @ (X_anny - root_anny) + translation

so ``translation`` is the camera-frame position of the body root, the midpoint of the two hip
joints, and ``R_global = I`` is a person standing upright facing the camera.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields

import numpy as np
import roma
import torch

from metrichmsr.joints import HIPS, JOINT_NAMES

#: Anny (x left-of-person, y backward, z up) -> camera (x right, y down, z forward) for a person
#: facing the camera: their left is the image's right, their up is -y, their back is +z.
ANNY_TO_CAMERA = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


#: Bones that carry the articulated pose in fitting; the rest (fingers, toes, face) stay at rest.
POSE_BONES = (
    "spine03", "spine01", "neck01", "head",
    "clavicle.L", "upperarm01.L", "lowerarm01.L", "wrist.L",
    "clavicle.R", "upperarm01.R", "lowerarm01.R", "wrist.R",
    "upperleg01.L", "lowerleg01.L", "foot.L",
    "upperleg01.R", "lowerleg01.R", "foot.R",
)  # fmt: skip

PHENOTYPE_NAMES = ("gender", "age", "muscle", "weight", "height", "proportions")
#: Anny's ``age`` phenotype value at 18 years (its age scale is piecewise linear).
ADULT_AGE = 0.77

#: Vertices kept per joint by the fast joint path (of up to ~4000 the COCO regressor blends).
#: 64 keep >= 98.6% of every joint's regression weight.
FAST_JOINT_VERTICES = 64
#: Mesh vertices (a fixed, random spread) that ``joints_and_surface`` also poses: enough to
#: splat a person's silhouette whose gaps a small closing fills (``train.data.splat_silhouettes``).
SURFACE_POINTS = 3000
#: The template's highest and lowest vertices ``standing_heights`` reads a rest body's height
#: from: over 2,064 phenotypes (random, and the corners of the phenotype cube) the top of the
#: head was always one of the template's 2 highest vertices and the lowest sole vertex one of
#: its 179 lowest (``tests/test_body.py`` checks against the whole mesh).
HEIGHT_TOP_VERTICES, HEIGHT_BOTTOM_VERTICES = 32, 512


def _vertex_subset(model: torch.nn.Module, vertex_index: torch.Tensor) -> torch.nn.Module:
    """A shallow copy of an Anny model whose mesh is only ``vertex_index`` (S,) of its vertices.

    Rig, blendshape coefficients and skinning are shared, so it poses exactly like the full
    model; skinning S instead of 13,718 vertices makes the fitting loop several times cheaper.
    """
    subset = copy.copy(model)
    subset._buffers = dict(model._buffers)
    subset._modules = dict(model._modules)
    num_vertices = model.template_vertices.shape[0]
    for name, buffer in model._buffers.items():
        # Per-vertex data (positions, skinning weights of either skinning method, ...).
        if buffer is not None and buffer.dim() > 0 and buffer.shape[0] == num_vertices:
            subset._buffers[name] = buffer[vertex_index]
    subset._buffers["blendshapes"] = model._buffers["blendshapes"][:, vertex_index]
    return subset


@dataclass
class BodyOutput:
    """Posed bodies in the camera frame (metres), and their rig in Anny's frame."""

    vertices: torch.Tensor  # (B, V, 3)
    joints: torch.Tensor  # (B, 23, 3), JOINT_NAMES order
    rest_vertices: torch.Tensor  # (B, V, 3) Anny frame, rest pose (for anthropometry and skinning)
    rest_bone_poses: torch.Tensor  # (B, 104, 4, 4) each bone's world transform at rest (A-pose), Anny frame
    bone_poses: torch.Tensor  # (B, 104, 4, 4) posed, Anny frame
    to_camera: torch.Tensor  # (B, 4, 4) rigid: Anny frame -> camera frame (X_cam = to_camera @ X_anny)


@dataclass(frozen=True)
class Skeleton:
    """Anny's rig, the same for every body: bone names and parents in Anny's order (a parent
    always before its children), and each vertex's linear-blend skinning influences.

    bone_names: (104,) str. parents: (104,) int, -1 for the root.
    vertex_bones: (V, K) int bone indices; vertex_weights: (V, K) float, summing to 1 per
    vertex, each row sorted from the largest (K = 9 in anny 0.6.2).
    """

    bone_names: tuple[str, ...]
    parents: np.ndarray
    vertex_bones: np.ndarray
    vertex_weights: np.ndarray


def _blendshape_weights(model: torch.nn.Module, phenotype: torch.Tensor) -> torch.Tensor:
    """An Anny model's blendshape weights (B, K) for phenotypes (B, 6), as its forward makes them."""
    phenotype_kwargs = {name: phenotype[:, i] for i, name in enumerate(PHENOTYPE_NAMES)}
    _, parameters, local_changes, facial_actions = model.get_tensor_inputs(None, phenotype_kwargs, None, None)
    # Anny 0.6.2 has no public call from parsed phenotypes to blendshape weights: forward's own step.
    return model._get_phenotype_blendshape_coefficients(parameters, local_changes, facial_actions)


@dataclass
class RestBuild:
    """Anny's rest model of B builds (phenotypes) on the fast joint path (``BodyModel.rest_build``):
    rest_vertices (B, S, 3) of its vertices, rest_bone_poses (B, 104, 4, 4), Anny frame, metres."""

    rest_vertices: torch.Tensor
    rest_bone_poses: torch.Tensor


@dataclass
class BodyParams:
    """Body parameters of N people (``BodyModel.forward``'s inputs): what HumanMoE predicts and
    the fit starts from and returns.

    phenotype: (N, 6) in [0, 1], PHENOTYPE_NAMES order.
    bone_rotvec: (N, P, 3) axis-angle of POSE_BONES (rad).
    global_rotation: (N, 3, 3) camera frame.
    translation: (N, 3) hip midpoint, camera frame, metres.
    """

    phenotype: torch.Tensor
    bone_rotvec: torch.Tensor
    global_rotation: torch.Tensor
    translation: torch.Tensor

    def _map(self, fn) -> "BodyParams":
        return BodyParams(*(fn(getattr(self, f.name)) for f in fields(self)))

    def to(self, device: torch.device | str) -> "BodyParams":
        return self._map(lambda t: t.to(device))

    def detach(self) -> "BodyParams":
        return self._map(torch.Tensor.detach)

    def select(self, index: torch.Tensor) -> "BodyParams":
        """The people at ``index`` (an (N',) index or (N,) bool tensor)."""
        return self._map(lambda t: t[index])

    @classmethod
    def cat(cls, parts: list["BodyParams"]) -> "BodyParams":
        """The people of several, in order."""
        return cls(*(torch.cat([getattr(p, f.name) for p in parts]) for f in fields(cls)))


class BodyModel(torch.nn.Module):
    """Batched Anny in the camera frame.

    Args:
        dtype: float dtype of the model buffers and outputs.
    """

    def __init__(self, dtype: torch.dtype = torch.float32):
        super().__init__()
        from metrichmsr._quiet import native_output_silenced

        with native_output_silenced():  # Warp's banner and CUDA probe would land in the CLI's output
            import anny  # heavy import (Warp kernels); only when a body model is actually built

            self.anny = anny.Anny().to(dtype)
            # Anny compiles/loads its Warp skinning kernel on the first forward: do it here.
            self.anny(phenotype_kwargs={"age": torch.full((1,), 0.5, dtype=dtype)})
        self.keypoints = anny.KeypointsRegressor.coco(self.anny, labels=list(JOINT_NAMES)).to(dtype)
        top = self.keypoints.regression_weights.topk(FAST_JOINT_VERTICES, dim=1)
        used, local_index = torch.unique(top.indices, return_inverse=True)
        self._fast_anny = _vertex_subset(self.anny, used)
        self._fast_keypoints = anny.KeypointsRegressor(
            top.values / top.values.sum(dim=1, keepdim=True), list(JOINT_NAMES), regression_indices=local_index
        )
        # The surface path skins the fast path's vertices plus SURFACE_POINTS others, in one forward.
        surface = torch.randperm(self.anny.template_vertices.shape[0], generator=torch.Generator().manual_seed(0))
        with_surface, inverse = torch.unique(torch.cat((used, surface[:SURFACE_POINTS])), return_inverse=True)
        self._surface_anny = _vertex_subset(self.anny, with_surface)
        self._surface_keypoints = anny.KeypointsRegressor(
            self._fast_keypoints.regression_weights, list(JOINT_NAMES), regression_indices=inverse[: len(used)][local_index]
        )
        self._surface_index = inverse[len(used) :]
        order = self.anny.template_vertices[:, 2].argsort()
        self._height_anny = _vertex_subset(self.anny, torch.cat((order[:HEIGHT_BOTTOM_VERTICES], order[-HEIGHT_TOP_VERTICES:])))
        if tuple(self.anny.phenotype_labels) != PHENOTYPE_NAMES:
            raise RuntimeError(f"unexpected Anny phenotype labels {self.anny.phenotype_labels}")
        self.bone_names: tuple[str, ...] = tuple(self.anny.bone_labels)
        self.pose_bone_index = torch.tensor([self.bone_names.index(b) for b in POSE_BONES])
        self.register_buffer("anny_to_camera", ANNY_TO_CAMERA.to(dtype), persistent=False)
        self.register_buffer("faces", self.anny.get_triangular_faces().long(), persistent=False)
        weights, order = self.anny.vertex_bone_weights.sort(dim=1, descending=True)
        self.skeleton = Skeleton(
            self.bone_names,
            np.asarray(self.anny.bone_parents),
            self.anny.vertex_bone_indices.gather(1, order).cpu().numpy(),
            weights.cpu().numpy(),
        )

    @property
    def num_bones(self) -> int:
        return len(self.bone_names)

    def pose_from_rotvec(self, bone_rotvec: torch.Tensor) -> torch.Tensor:
        """Scatter POSE_BONES rotation vectors (B, P, 3) into Anny pose parameters (B, 104, 4, 4)."""
        batch = bone_rotvec.shape[0]
        rotmat = torch.eye(3, dtype=bone_rotvec.dtype, device=bone_rotvec.device).repeat(batch, self.num_bones, 1, 1)
        rotmat = rotmat.index_copy(1, self.pose_bone_index.to(bone_rotvec.device), roma.rotvec_to_rotmat(bone_rotvec))
        pose = torch.zeros(batch, self.num_bones, 4, 4, dtype=bone_rotvec.dtype, device=bone_rotvec.device)
        pose[..., :3, :3] = rotmat
        pose[..., 3, 3] = 1.0
        return pose

    def _posed(self, model, keypoints, phenotype, bone_rotvec, global_rotation, translation, build=None):
        if build is None:
            out = model(
                pose_parameters=self.pose_from_rotvec(bone_rotvec),
                phenotype_kwargs={name: phenotype[:, i] for i, name in enumerate(PHENOTYPE_NAMES)},
            )
        else:  # the rest model is the build's: pose and skin only
            transforms, _ = model.get_bone_transforms(self.pose_from_rotvec(bone_rotvec), build.rest_bone_poses)
            out = {"vertices": model.get_skinned_vertices(bone_transforms=transforms, rest_vertices=build.rest_vertices)}
        joints_anny = keypoints(out)  # (B, 23, 3)
        root = joints_anny[:, HIPS].mean(dim=1, keepdim=True)
        rotation = global_rotation @ self.anny_to_camera  # (B, 3, 3)

        def to_camera(points: torch.Tensor) -> torch.Tensor:
            return torch.einsum("bij,bnj->bni", rotation, points - root) + translation[:, None, :]

        return out, joints_anny, to_camera

    def forward(
        self,
        phenotype: torch.Tensor,
        bone_rotvec: torch.Tensor,
        global_rotation: torch.Tensor,
        translation: torch.Tensor,
    ) -> BodyOutput:
        """Posed bodies in the camera frame.

        Args:
            phenotype: (B, 6) in [0, 1], PHENOTYPE_NAMES order.
            bone_rotvec: (B, P, 3) axis-angle (rad) of POSE_BONES, Anny's world-aligned axes.
            global_rotation: (B, 3, 3) body orientation in the camera frame (I = facing camera).
            translation: (B, 3) camera-frame position of the hip midpoint, metres.
        """
        out, joints, to_camera = self._posed(self.anny, self.keypoints, phenotype, bone_rotvec, global_rotation, translation)
        # The same map as a (B, 4, 4) matrix: its translation is where Anny's origin lands.
        rigid = torch.zeros(len(phenotype), 4, 4, dtype=translation.dtype, device=translation.device)
        rigid[:, :3, :3] = global_rotation @ self.anny_to_camera
        rigid[:, :3, 3] = to_camera(torch.zeros_like(translation)[:, None])[:, 0]
        rigid[:, 3, 3] = 1.0
        return BodyOutput(
            vertices=to_camera(out["vertices"]),
            joints=to_camera(joints),
            rest_vertices=out["rest_vertices"],
            rest_bone_poses=out["rest_bone_poses"],
            bone_poses=out["bone_poses"],
            to_camera=rigid,
        )

    def joints(
        self,
        phenotype: torch.Tensor,
        bone_rotvec: torch.Tensor,
        global_rotation: torch.Tensor,
        translation: torch.Tensor,
        build: RestBuild | None = None,
    ) -> torch.Tensor:
        """Fast path for fitting: the (B, 23, 3) joints of ``forward`` (within a few mm), camera frame.

        Skins only the FAST_JOINT_VERTICES most weighted vertices of each joint's regressor.
        ``build``: :meth:`rest_build` of these ``phenotype``s, for a fit that poses bodies of a
        fixed build many times (Anny's rest model, half the cost of a step, is then not rebuilt).
        """
        _, joints, to_camera = self._posed(
            self._fast_anny, self._fast_keypoints, phenotype, bone_rotvec, global_rotation, translation, build
        )
        return to_camera(joints)

    @torch.no_grad()
    def rest_build(self, phenotype: torch.Tensor) -> RestBuild:
        """Anny's rest model of the fast joint path for phenotypes (B, 6) (see :meth:`joints`)."""
        rest = self._fast_anny.get_rest_model(_blendshape_weights(self._fast_anny, phenotype))
        return RestBuild(rest["rest_vertices"], rest["rest_bone_poses"])

    def joints_and_surface(
        self,
        phenotype: torch.Tensor,
        bone_rotvec: torch.Tensor,
        global_rotation: torch.Tensor,
        translation: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``joints`` (B, 23, 3) and (B, SURFACE_POINTS, 3) posed mesh vertices, camera frame, metres.

        For drawing silhouettes in training without skinning the whole mesh.
        """
        out, joints, to_camera = self._posed(
            self._surface_anny, self._surface_keypoints, phenotype, bone_rotvec, global_rotation, translation
        )
        return to_camera(joints), to_camera(out["vertices"][:, self._surface_index])

    @torch.no_grad()
    def for_height(
        self, phenotype: torch.Tensor, height_m: torch.Tensor, parameter: str = "age", steps: int | None = None
    ) -> torch.Tensor:
        """The phenotypes (N, 6), each with only ``parameter`` changed, whose standing heights
        are ``height_m`` (N,) metres.

        ``"age"``: searched from 0 to the given age, or to 18 years (:data:`ADULT_AGE`) for
        a child: what a body shorter than recovered is taken to be (a child read as an
        adult), or a child's taller than recovered (an adult read as a child). A height
        above what that reaches gets its top, one below the newborn's age 0. ``"height"``: Anny's height parameter,
        searched over its whole range [0, 1]; the same person a little taller or shorter.
        Heights outside the range get its end. The values are searched on a grid of
        ``steps`` and interpolated (default 33 for age; 9 for height, which Anny's height
        parameter changes almost linearly: within 1 mm).
        """
        if parameter not in ("age", "height"):
            raise ValueError(f"parameter must be 'age' or 'height', got {parameter!r}")
        steps = steps or (33 if parameter == "age" else 9)
        n, column = len(phenotype), PHENOTYPE_NAMES.index(parameter)
        top = phenotype[:, column].clamp(min=ADULT_AGE) if parameter == "age" else torch.ones(n, device=phenotype.device)
        grid = top[:, None] * torch.linspace(0.0, 1.0, steps, device=phenotype.device)  # (N, S)
        candidates = phenotype[:, None].repeat(1, steps, 1)
        candidates[..., column] = grid
        # Bodies grow with age and shrink a little when old: the tallest so far, made strictly increasing.
        heights = torch.cummax(self.standing_heights(candidates.reshape(n * steps, -1)).reshape(n, steps), dim=1)
        heights = heights.values.cpu().numpy()
        heights = heights + 1e-6 * np.arange(steps)
        values, targets = grid.cpu().numpy(), height_m.cpu().numpy()
        out = phenotype.clone()
        out[:, column] = torch.tensor(
            [np.interp(t, h, v) for t, h, v in zip(targets, heights, values)], dtype=out.dtype, device=out.device
        )
        return out

    @torch.no_grad()
    def standing_heights(self, phenotype: torch.Tensor) -> torch.Tensor:
        """Standing heights (N,) metres of phenotypes (N, 6): ``standing_height`` of their rest
        meshes, from the few vertices that can be the top of the head or the lowest of the soles."""
        return self.standing_height(self._height_anny.get_rest_vertices(_blendshape_weights(self._height_anny, phenotype)))

    @staticmethod
    def standing_height(rest_vertices: torch.Tensor) -> torch.Tensor:
        """Standing height (B,) metres: vertical extent of the rest-pose mesh (B, V, 3), z-up."""
        z = rest_vertices[..., 2]
        return z.max(dim=-1).values - z.min(dim=-1).values


def up_directions(global_rotation: torch.Tensor | np.ndarray) -> np.ndarray:
    """(N, 3) unit vectors: each body's up axis (rest pose, feet to head) in the camera frame.

    global_rotation: (N, 3, 3) as in ``BodyModel.forward``. A body stands upright on a level
    floor with the identity rotation and a level camera, so this is also the up direction
    the body claims for the floor (``scene.floor.floor_from_people``).
    """
    rotation = torch.as_tensor(global_rotation, dtype=torch.float64)
    return (rotation @ ANNY_TO_CAMERA.to(torch.float64)[:, 2]).numpy()
