"""HumanMoE: a camera-ray transformer with mixture-of-experts feed-forward layers (MetricHMSR).

Per person, one sequence of tokens (B people = B sequences):

1. 23 keypoint tokens (JOINT_NAMES order): the keypoint's position in the box (box-height
   units), its visibility, its BlazePose world landmark and, with ``camera_encoding="rays"``,
   the Fourier-encoded unit ray ``normalize(K^-1 [u, v, 1])`` through it; plus a learned
   embedding of which joint it is.
2. Camera tokens: ``"rays"``: the bounding camera ray map, Fourier-encoded rays on a
   ``ray_grid x ray_grid`` grid over the box (the method); ``"box"``: one CLIFF-style box token
   (the baseline); ``"none"``: nothing, the crop alone.
3. With ``silhouette_grid > 0``, silhouette patch tokens: the person's segmentation on a
   ``silhouette_grid x silhouette_grid`` grid over a square window around the box
   (``silhouette_window``), cut into ``silhouette_patch``-sized patches as a ViT cuts an image.
   They carry what keypoints do not: the top of the head and the body's outline, the cues
   that tell a child from a small adult (a toddler's head is a quarter of its height).
4. With ``backbone`` set, image patch tokens: a pretrained ViT the user brings
   (``models.backbone``) run on the person crop over the same window.
5. Three learnable task queries (pose, shape, position), which the heads read.

A learned token-type embedding lets the routers tell keypoint, ray, box and query tokens apart.
The blocks are pre-norm transformer blocks whose feed-forward is a mixture of experts (top-k
routing with per-person expert capacity and the Switch load-balancing loss) or, for the
ablation, a dense feed-forward with the same parameter count.

Outputs are in the conventions of ``metrichmsr.body``: OpenCV camera frame (x right, y down,
z forward), metres; bone rotations in Anny's world-aligned axes; ``global_rotation = I`` is a
person standing upright facing the camera; ``translation`` is the hip midpoint.
``HumanMoE.forward`` returns raw tensors for training; ``HumanMoE.infer`` the documented
metric bodies.

The inputs and their tokens' raw material live in ``models.tokens``; the mixture-of-experts
layers (router, experts, balance loss, blocks) in ``models.moe``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Literal

import roma
import torch
import torch.nn.functional as F
from torch import nn

from metrichmsr.body import PHENOTYPE_NAMES, POSE_BONES, BodyParams
from metrichmsr.camera import box_ray_map, fourier_encode, unit_rays
from metrichmsr.defaults import HUMANMOE_WEIGHTS as DEFAULT_WEIGHTS
from metrichmsr.errors import InputError
from metrichmsr.joints import JOINT_NAMES
from metrichmsr.models.moe import Block, FeedForward, FFNKind
from metrichmsr.models.tokens import HumanInputs

CameraEncoding = Literal["rays", "box", "none"]
WorldLandmarks = Literal["all", "body", "none"]
#: The face's joints (nose, eyes, ears). BlazePose's world landmarks of real people's faces,
#: read with their 2D landmarks, place them too near (``bench.pets_twins``: a simulated twin's
#: face in their place takes real people's depth bias from -13.6 to -8.7%), so a network may
#: read the rest of the body's world landmarks without them.
FACE_JOINTS = tuple(range(JOINT_NAMES.index("right_ear") + 1))

#: Token types, the index of each in ``outputs["token_type"]``.
TOKEN_TYPES = ("keypoint", "ray", "box", "query", "silhouette", "image")
#: The task queries, appended in this order after all other tokens.
TASK_QUERIES = ("pose", "shape", "position")

_NUM_JOINTS = len(JOINT_NAMES)
#: Fourier encoding's highest frequency (cycles per unit): ray components span [-1, 1], so the
#: finest band resolves ~1/64 rad, about a keypoint's width on a person 10 m away.
_MAX_FREQUENCY = 32.0
#: Depth prior of the position head. With a camera encoding the depth is anchored on the pinhole
#: relation depth = f * size / box height for a body of typical size (as CLIFF's t_z = 2 f / (b s)),
#: so the head only learns the residual; without one ("none") there is nothing to anchor on and a
#: typical distance is the prior.
_TYPICAL_BODY_M = 1.7
_TYPICAL_DEPTH_M = 5.0
#: The 6D rotation representation (first two columns of the rotation matrix) of the identity.
_IDENTITY_6D = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
_FORMAT = "metrichmsr.humanmoe/1"
#: The shipped HumanMoE weights (kept in ``defaults`` so the command line reads it without torch).
HUMANMOE_WEIGHTS = DEFAULT_WEIGHTS


@dataclass(frozen=True)
class HumanMoEConfig:
    """Architecture of HumanMoE; saved inside every checkpoint so it rebuilds its own model.

    dim: token width; depth: transformer blocks; heads: attention heads (divide ``dim``).
    num_experts, top_k, expert_hidden: experts per MoE layer, experts per token, hidden width
        of each expert (the dense ablation uses ``expert_hidden * num_experts``).
    capacity_factor: each expert takes at most ``ceil(capacity_factor * T * top_k / num_experts)``
        of one person's T tokens; the rest of its assignments are dropped (residual only).
    ray_grid: the ray map is ``ray_grid x ray_grid`` tokens over the box.
    fourier_bands: frequencies of the Fourier encoding of rays and of the box token.
    silhouette_grid: side of the silhouette grid (``HumanInputs.silhouette``); 0: no
        silhouette tokens. silhouette_patch: side of one patch token, in grid cells.
    backbone: "" (none), or a pretrained ViT whose patch tokens of the person crop are read
        (``models.backbone``: ``"hf:<folder>"`` or ``"timm:<model name>"``);
        backbone_image_size: the crop's side in pixels; backbone_hf_config: filled in from an
        ``hf:`` folder when the network is built, so a saved network rebuilds without it.
    camera_encoding: "rays" (keypoint rays + ray map), "box" (one CLIFF-style box token) or
        "none" (no camera or box-position information).
    ffn: "moe" (mixture of experts) or "dense" (same parameter count).
    world_landmarks: which of BlazePose's world landmarks (``HumanInputs.world3d``) the keypoint
        tokens read: "all", "body" (zeros for the face's five, :data:`FACE_JOINTS`) or "none"
        (zeros); True and False, as saved before "body" existed, read as "all" and "none".
    """

    dim: int = 128
    depth: int = 4
    heads: int = 4
    num_experts: int = 4
    top_k: int = 2
    expert_hidden: int = 256
    capacity_factor: float = 1.25
    ray_grid: int = 4
    fourier_bands: int = 8
    camera_encoding: CameraEncoding = "rays"
    ffn: FFNKind = "moe"
    silhouette_grid: int = 0
    silhouette_patch: int = 8
    backbone: str = ""
    backbone_image_size: int = 224
    backbone_hf_config: dict | None = None
    world_landmarks: WorldLandmarks = "all"

    def __post_init__(self):
        if isinstance(self.world_landmarks, bool):
            object.__setattr__(self, "world_landmarks", "all" if self.world_landmarks else "none")
        if self.world_landmarks not in ("all", "body", "none"):
            raise ValueError(f"world_landmarks must be 'all', 'body' or 'none', got {self.world_landmarks!r}")
        if self.camera_encoding not in ("rays", "box", "none"):
            raise ValueError(f"camera_encoding must be 'rays', 'box' or 'none', got {self.camera_encoding!r}")
        if self.ffn not in ("moe", "dense"):
            raise ValueError(f"ffn must be 'moe' or 'dense', got {self.ffn!r}")
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
        if not 1 <= self.top_k <= self.num_experts:
            raise ValueError(f"top_k must be in [1, num_experts={self.num_experts}], got {self.top_k}")
        if self.silhouette_grid < 0 or self.silhouette_patch < 1 or self.silhouette_grid % self.silhouette_patch:
            raise ValueError(
                f"silhouette_grid ({self.silhouette_grid}) must be >= 0 and a multiple of "
                f"silhouette_patch ({self.silhouette_patch})"
            )
        if self.capacity_factor <= 0:
            raise ValueError(f"capacity_factor must be positive, got {self.capacity_factor}")
        if self.backbone and self.backbone_image_size < 16:
            raise ValueError(f"backbone_image_size must be at least 16 pixels, got {self.backbone_image_size}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> HumanMoEConfig:
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown HumanMoEConfig fields: {sorted(unknown)}")
        return cls(**values)


def _rotation_6d(x: torch.Tensor) -> torch.Tensor:
    """(..., 6) head output -> (..., 3, 3) rotations; zero maps to the identity."""
    return roma.special_gramschmidt(x.unflatten(-1, (3, 2)) + _IDENTITY_6D.to(x))


class HumanMoE(nn.Module):
    """Camera-ray mixture-of-experts regressor of Anny pose, phenotype and metric root position.

    ``forward_features`` embeds and mixes the tokens, ``forward_head`` reads the task queries
    into crop-level quantities, ``forward`` adds the camera geometry (metric translation).
    """

    def __init__(self, config: HumanMoEConfig = HumanMoEConfig()):
        super().__init__()
        self.config = c = config
        encoded = 3 * (1 + 2 * c.fourier_bands)  # a Fourier-encoded 3-vector
        keypoint_features = 6 + (encoded if c.camera_encoding == "rays" else 0)
        self.keypoint_embed = nn.Linear(keypoint_features, c.dim)
        self.joint_embed = nn.Parameter(torch.zeros(_NUM_JOINTS, c.dim))
        if c.camera_encoding == "rays":
            self.ray_embed = nn.Linear(encoded, c.dim)
            self.ray_pos_embed = nn.Parameter(torch.zeros(c.ray_grid * c.ray_grid, c.dim))
        elif c.camera_encoding == "box":
            self.box_embed = nn.Linear(encoded, c.dim)
        if c.silhouette_grid:
            self.silhouette_embed = nn.Linear(c.silhouette_patch**2, c.dim)
            self.silhouette_pos_embed = nn.Parameter(torch.zeros(self.num_silhouette_tokens, c.dim))
        self.backbone = None
        if c.backbone:
            from metrichmsr.models.backbone import PatchBackbone

            self.backbone = PatchBackbone(c.backbone, c.backbone_image_size, c.backbone_hf_config)
            self.config = c = replace(c, backbone_hf_config=self.backbone.hf_config)
            self.image_embed = nn.Linear(self.backbone.width, c.dim)
            self.image_pos_embed = nn.Parameter(torch.zeros(self.backbone.num_patches, c.dim))
        self.type_embed = nn.Parameter(torch.zeros(len(TOKEN_TYPES), c.dim))
        self.queries = nn.Parameter(torch.zeros(len(TASK_QUERIES), c.dim))
        self.blocks = nn.ModuleList(
            Block(c.dim, c.heads, c.ffn, c.num_experts, c.top_k, c.expert_hidden, c.capacity_factor) for _ in range(c.depth)
        )
        self.norm = nn.LayerNorm(c.dim)
        self.pose_head = FeedForward(c.dim, c.dim, 6 * (len(POSE_BONES) + 1))
        self.shape_head = FeedForward(c.dim, c.dim, len(PHENOTYPE_NAMES))
        self.position_head = FeedForward(c.dim, c.dim, 3)
        camera_tokens = {"rays": ["ray"] * c.ray_grid**2, "box": ["box"], "none": []}[c.camera_encoding]
        silhouette_tokens = ["silhouette"] * self.num_silhouette_tokens
        image_tokens = ["image"] * (self.backbone.num_patches if self.backbone else 0)
        layout = ["keypoint"] * _NUM_JOINTS + camera_tokens + silhouette_tokens + image_tokens + ["query"] * len(TASK_QUERIES)
        self.register_buffer("token_type", torch.tensor([TOKEN_TYPES.index(t) for t in layout]), persistent=False)
        world_mask = torch.zeros(_NUM_JOINTS, 1) if c.world_landmarks == "none" else torch.ones(_NUM_JOINTS, 1)
        if c.world_landmarks == "body":
            world_mask[list(FACE_JOINTS)] = 0.0
        self.register_buffer("world_mask", world_mask, persistent=False)
        for module in self.children():
            if module is not self.backbone:  # the backbone keeps its own initialisation
                module.apply(_init_weights)
        for p in self.parameters(recurse=False):  # embeddings and queries
            nn.init.trunc_normal_(p, std=0.02)

    @property
    def num_tokens(self) -> int:
        return self.token_type.numel()

    @property
    def num_silhouette_tokens(self) -> int:
        return (self.config.silhouette_grid // self.config.silhouette_patch) ** 2

    def _silhouette_tokens(self, inputs: HumanInputs, dtype: torch.dtype) -> list[torch.Tensor]:
        """[(B, P, dim)] embedded silhouette patches (zeros read for a missing silhouette), or []."""
        grid, patch = self.config.silhouette_grid, self.config.silhouette_patch
        if not grid:
            return []
        silhouette = inputs.silhouette
        if silhouette is None:
            silhouette = inputs.bbox.new_zeros(len(inputs), grid, grid)
        if silhouette.shape[-1] != grid:
            raise ValueError(f"HumanInputs.silhouette must be (B, {grid}, {grid}) for this model, got {tuple(silhouette.shape)}")
        patches = silhouette.unflatten(1, (-1, patch)).unflatten(3, (-1, patch)).transpose(2, 3).flatten(3).flatten(1, 2)
        return [self.silhouette_embed(patches.to(dtype)) + self.silhouette_pos_embed]

    def _image_tokens(self, inputs: HumanInputs, dtype: torch.dtype) -> list[torch.Tensor]:
        """[(B, N, dim)] embedded backbone patch tokens of the crops, or [] without a backbone."""
        if self.backbone is None:
            return []
        size = self.config.backbone_image_size
        if inputs.crop is None or tuple(inputs.crop.shape[1:]) != (3, size, size):
            got = None if inputs.crop is None else tuple(inputs.crop.shape)
            raise ValueError(f"this network reads image crops: HumanInputs.crop must be (B, 3, {size}, {size}), got {got}")
        return [self.image_embed(self.backbone(inputs.crop.to(self.backbone.mean.dtype)).to(dtype)) + self.image_pos_embed]

    def _camera_tokens(self, inputs: HumanInputs, dtype: torch.dtype) -> list[torch.Tensor]:
        """Embedded camera tokens: [(B, G*G, dim)] ray map, [(B, 1, dim)] box token, or []."""
        c, K = self.config, inputs.K
        if c.camera_encoding == "rays":
            rays = box_ray_map(K, inputs.bbox, (c.ray_grid, c.ray_grid)).flatten(1, 2)
            return [self.ray_embed(fourier_encode(rays, c.fourier_bands, _MAX_FREQUENCY).to(dtype)) + self.ray_pos_embed]
        if c.camera_encoding == "box":
            # CLIFF's bounding-box information: box centre relative to the principal point, and box
            # height, all over the focal length.
            f = K[:, 1, 1]
            centre = inputs.box_centre
            box = torch.stack(((centre[:, 0] - K[:, 0, 2]) / f, (centre[:, 1] - K[:, 1, 2]) / f, inputs.box_height / f), -1)
            return [self.box_embed(fourier_encode(box[:, None], c.fourier_bands, _MAX_FREQUENCY).to(dtype))]
        return []

    def embed(self, inputs: HumanInputs) -> torch.Tensor:
        """(B, T, dim) input tokens: keypoints, camera tokens, task queries (``token_type`` order)."""
        inputs.validate()
        dtype = self.queries.dtype
        uv, visibility = inputs.keypoints2d[..., :2], inputs.keypoints2d[..., 2:]
        # Box-normalised: the crop's content, independent of where the box sits and how big it is.
        position = (uv - inputs.box_centre[:, None]) / inputs.box_height[:, None, None]
        world3d = inputs.world3d * self.world_mask
        features = [position, visibility, world3d]
        if self.config.camera_encoding == "rays":
            features.append(fourier_encode(unit_rays(inputs.K, uv), self.config.fourier_bands, _MAX_FREQUENCY))
        # Joints without a detection carry no position: zero them so arbitrary coordinates can't leak in.
        observed = (visibility > 0).to(uv.dtype)
        keypoints = self.keypoint_embed((torch.cat(features, dim=-1) * observed).to(dtype)) + self.joint_embed
        tokens = [
            keypoints,
            *self._camera_tokens(inputs, dtype),
            *self._silhouette_tokens(inputs, dtype),
            *self._image_tokens(inputs, dtype),
            self.queries.expand(len(inputs), -1, -1),
        ]
        return torch.cat(tokens, dim=1) + self.type_embed[self.token_type]

    def forward_features(self, inputs: HumanInputs) -> tuple[torch.Tensor, dict]:
        """Tokens (B, T, dim) after the blocks and final norm, and aux.

        aux: ``balance_loss`` (scalar, mean over MoE blocks; 0 for dense) and ``router`` (one
        RouterOutput per block; empty for dense).
        """
        x = self.embed(inputs)
        routes, balance = [], []
        for block in self.blocks:
            x, route, loss = block(x)
            if route is not None:
                routes.append(route)
                balance.append(loss)
        balance_loss = torch.stack(balance).mean() if balance else x.new_zeros(())
        return self.norm(x), {"balance_loss": balance_loss, "router": routes}

    def forward_head(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Crop-level predictions from the task query tokens of (B, T, dim) ``tokens``.

        Returns ``bone_rotvec`` (B, 18, 3) rad and the same as ``bone_rotation`` (B, 18, 3, 3)
        (losses on matrices avoid the rotation vector's singularity at pi), ``global_rotation``
        (B, 3, 3) camera frame,
        ``phenotype`` (B, 6) in [0, 1], ``log_depth_residual`` (B,) (added to the depth anchor),
        ``root_offset_box`` (B, 2): the root's pixel offset from the box centre in box heights.
        """
        pose_query, shape_query, position_query = tokens[:, -len(TASK_QUERIES) :].unbind(dim=1)
        rotations = _rotation_6d(self.pose_head(pose_query).unflatten(-1, (-1, 6)))  # (B, 19, 3, 3)
        position = self.position_head(position_query)
        return {
            "bone_rotvec": roma.rotmat_to_rotvec(rotations[:, 1:]),
            "bone_rotation": rotations[:, 1:],
            "global_rotation": rotations[:, 0],
            "phenotype": torch.sigmoid(self.shape_head(shape_query)),
            "log_depth_residual": position[:, 0],
            "root_offset_box": position[:, 1:],
        }

    def depth_anchor(self, inputs: HumanInputs) -> torch.Tensor:
        """(B,) log depth (metres) the position head's residual is added to (see _TYPICAL_BODY_M)."""
        if self.config.camera_encoding == "none":
            return inputs.box_height.new_full((len(inputs),), math.log(_TYPICAL_DEPTH_M))
        return torch.log(_TYPICAL_BODY_M * inputs.K[:, 1, 1] / inputs.box_height)

    def forward(self, inputs: HumanInputs) -> dict:
        """Predictions for B people (raw tensors, differentiable).

        Returns ``forward_head``'s entries and:
        ``log_depth`` (B,) log of the root's depth z (metres);
        ``root_offset`` (B, 2) the root's ``xy / z`` minus the box centre's ``K^-1`` normalised
        coordinates (so the root projects to box centre + ``root_offset * (fx, fy)`` pixels);
        ``translation`` (B, 3) camera-frame root (hip midpoint), metres;
        ``balance_loss`` (scalar) and ``router`` (list of RouterOutput per MoE block);
        ``token_type`` (T,) index into TOKEN_TYPES of each token.
        """
        tokens, aux = self.forward_features(inputs)
        out = self.forward_head(tokens)
        K = inputs.K.to(tokens.dtype)
        focal = torch.stack((K[:, 0, 0], K[:, 1, 1]), dim=-1)
        out["log_depth"] = self.depth_anchor(inputs).to(tokens.dtype) + out["log_depth_residual"]
        out["root_offset"] = out["root_offset_box"] * inputs.box_height.to(tokens.dtype)[:, None] / focal
        centre_xy = (inputs.box_centre.to(tokens.dtype) - K[:, :2, 2]) / focal
        depth = out["log_depth"].exp()
        out["translation"] = torch.cat(((centre_xy + out["root_offset"]) * depth[:, None], depth[:, None]), dim=-1)
        out["token_type"] = self.token_type
        return out | aux

    @torch.inference_mode()
    def infer(self, inputs: HumanInputs) -> dict[str, torch.Tensor]:
        """Metric bodies of the people in ``inputs``, in one pass, without gradients.

        ``inputs``: B people (``HumanInputs``, see ``models.tokens``), or one person with the
        batch dimension left out (then so is every output's).

        Returns a dict of tensors on the inputs' device, OpenCV camera frame, metres:

        - ``translation`` (B, 3): the body root (hip midpoint), metres;
        - ``depth_m`` (B,): the root's depth z, metres;
        - ``global_rotation`` (B, 3, 3): the body's rotation, camera frame (identity: upright,
          facing the camera);
        - ``bone_rotvec`` (B, 18, 3): axis-angle of ``body.POSE_BONES``, radians, Anny's
          world-aligned axes;
        - ``phenotype`` (B, 6): ``body.PHENOTYPE_NAMES`` in [0, 1] (age, height, ...).

        ``body.BodyModel`` poses them (``to_body_params``). For training, and for a fit that
        differentiates through the prediction, use ``forward`` (raw tensors, log depth).
        """
        single = inputs.keypoints2d.dim() == 2
        if single:
            inputs = inputs.map_tensors(lambda value: value[None])
        out = self(inputs)
        result = {
            "translation": out["translation"],
            "depth_m": out["translation"][:, 2],
            "global_rotation": out["global_rotation"],
            "bone_rotvec": out["bone_rotvec"],
            "phenotype": out["phenotype"],
        }
        return {name: value[0] for name, value in result.items()} if single else result

    def save(self, path: str | Path) -> None:
        """Write config and weights to one torch file."""
        torch.save({"format": _FORMAT, "config": self.config.to_dict(), "state_dict": self.state_dict()}, path)

    @classmethod
    def load(cls, path: str | Path, map_location: torch.device | str = "cpu") -> HumanMoE:
        """Rebuild a model saved by ``save`` (in eval mode)."""
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
        if checkpoint.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a HumanMoE checkpoint ({_FORMAT})")
        model = cls(HumanMoEConfig.from_dict(checkpoint["config"])).to(map_location)
        state = checkpoint["state_dict"]
        missing_types = len(TOKEN_TYPES) - state["type_embed"].shape[0]
        if missing_types > 0:  # saved before the silhouette token type existed; it has none
            state["type_embed"] = torch.cat((state["type_embed"], state["type_embed"].new_zeros(missing_types, model.config.dim)))
        model.load_state_dict(state)
        return model.eval()


def load_network(weights: str | Path, device: torch.device | str = "cpu") -> HumanMoE:
    """The HumanMoE network in the file ``weights`` (``HumanMoE.load``) on ``device``; InputError
    (one line) for a missing or foreign file."""
    weights = Path(weights)
    if not weights.is_file():
        raise InputError(f"weights {weights}: no such file")
    try:
        return HumanMoE.load(weights, map_location=device)
    except Exception:  # torch.load's errors for a foreign file are of many kinds, and long
        raise InputError(f"weights {weights}: not a HumanMoE network file (`metrichmsr train` writes them)") from None


def _init_weights(module: nn.Module) -> None:
    """timm's ViT init: truncated-normal linear weights (std 0.02), zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def to_body_params(outputs: dict) -> BodyParams:
    """HumanMoE's predictions (``HumanMoE.forward``) as body parameters (detached): the bodies
    to pose, or the fit's initial guess."""
    return BodyParams(outputs["phenotype"], outputs["bone_rotvec"], outputs["global_rotation"], outputs["translation"]).detach()


def router_statistics(outputs: dict, inputs: HumanInputs) -> dict:
    """Where each kind of token goes: per MoE block and expert, the share of its expert choices.

    Groups: ``keypoint`` (observed keypoint tokens only: visibility > 0), ``ray`` (ray-map
    tokens, "rays" encoding), ``box`` (the box token, "box" encoding), ``query`` (all task
    queries) and ``query_pose``, ``query_shape``, ``query_position``; a group with no tokens is
    left out. Returns ``{"share": {group: (blocks, E)}, "dropped": {group: (blocks,)}}``: each
    share row sums to 1 over experts (all top-k choices counted, kept or not); ``dropped`` is
    the fraction of the group's choices that overflowed capacity. Empty dicts for a dense model.
    """
    token_type = outputs["token_type"]
    num_queries = len(TASK_QUERIES)
    groups = {name: token_type == TOKEN_TYPES.index(name) for name in TOKEN_TYPES}
    for i, name in enumerate(TASK_QUERIES):
        groups[f"query_{name}"] = torch.zeros_like(groups["query"])
        groups[f"query_{name}"][token_type.numel() - num_queries + i] = True
    share: dict[str, list[torch.Tensor]] = {}
    dropped: dict[str, list[torch.Tensor]] = {}
    for route in outputs["router"]:
        num_experts = route.probs.shape[-1]
        choice = F.one_hot(route.indices, num_experts).float()  # (B, T, k, E)
        for name, in_group in groups.items():
            weight = in_group.float().expand(route.indices.shape[:2]).clone()  # (B, T)
            if name == "keypoint":
                weight[:, :_NUM_JOINTS] *= (inputs.keypoints2d[..., 2] > 0).float()
            if weight.sum() == 0:
                continue
            counts = torch.einsum("bt,btke->e", weight, choice)
            share.setdefault(name, []).append(counts / counts.sum())
            lost = torch.einsum("bt,btk->", weight, (~route.kept).float()) / (weight.sum() * route.kept.shape[-1])
            dropped.setdefault(name, []).append(lost)
    return {"share": {k: torch.stack(v) for k, v in share.items()}, "dropped": {k: torch.stack(v) for k, v in dropped.items()}}
