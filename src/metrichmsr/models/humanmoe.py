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
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Literal

import numpy as np
import roma
import torch
import torch.nn.functional as F
from torch import nn

from metrichmsr.body import JOINT_NAMES, PHENOTYPE_NAMES, POSE_BONES, BodyParams
from metrichmsr.camera import box_ray_map, fourier_encode, unit_rays
from metrichmsr.perception.landmarks import BLAZEPOSE_FOR_JOINT

CameraEncoding = Literal["rays", "box", "none"]
FFNKind = Literal["moe", "dense"]

#: Token types, the index of each in ``outputs["token_type"]``.
TOKEN_TYPES = ("keypoint", "ray", "box", "query", "silhouette", "image")
#: The task queries, appended in this order after all other tokens.
TASK_QUERIES = ("pose", "shape", "position")

_NUM_JOINTS = len(JOINT_NAMES)
_HIPS = [JOINT_NAMES.index("left_hip"), JOINT_NAMES.index("right_hip")]
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
#: The silhouette window's side in units of the box's longer side: the person box stops at the
#: landmarks (+10%), and the crown of the head lies above the highest one (the eyes).
SILHOUETTE_SPAN = 1.4
_FORMAT = "metrichmsr.humanmoe/1"


@dataclass
class HumanInputs:
    """What HumanMoE sees of B people (float tensors on one device).

    keypoints2d: (B, 23, 3) pixel u, v (integer values at pixel centres) and visibility in
        [0, 1], JOINT_NAMES order; visibility 0 marks a joint the detector has no point for
        (its u, v are then ignored).
    world3d: (B, 23, 3) BlazePose world landmarks, metres, hip-centred, in the crop's
        camera-aligned frame (not rotated into the camera frame); their scale is normalised by
        BlazePose, so it says nothing about body size; zeros where absent.
    bbox: (B, 4) person box [x0, y0, x1, y1], pixels.
    K: (B, 3, 3) intrinsics, pixels.
    silhouette: optional (B, G, G) person probability in [0, 1] on a grid over
        ``silhouette_window(bbox)`` (row-major, top row first); all zero where no segmentation
        was had. None: nobody's segmentation (a model with silhouette tokens reads zeros).
    crop: optional (B, 3, S, S) RGB in [0, 1] of the image over the same window
        (``crop_from_image``); only a model with a ``backbone`` reads it, and needs it.
    """

    keypoints2d: torch.Tensor
    world3d: torch.Tensor
    bbox: torch.Tensor
    K: torch.Tensor
    silhouette: torch.Tensor | None = None
    crop: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.keypoints2d.shape[0]

    def _map(self, change) -> HumanInputs:
        """A copy with ``change`` applied to every tensor (None stays None)."""
        return HumanInputs(*(None if value is None else change(value) for value in (getattr(self, f.name) for f in fields(self))))

    def to(self, device: torch.device | str) -> HumanInputs:
        return self._map(lambda value: value.to(device))

    def select(self, index: torch.Tensor) -> HumanInputs:
        """The people at ``index`` (a (B',) index or (B,) bool tensor)."""
        return self._map(lambda value: value[index])

    @classmethod
    def cat(cls, parts: list[HumanInputs]) -> HumanInputs:
        """One batch of several; an optional field is kept only when every part has it."""
        joined = []
        for f in fields(cls):
            values = [getattr(p, f.name) for p in parts]
            joined.append(None if any(v is None for v in values) else torch.cat(values))
        return cls(*joined)

    def validate(self) -> None:
        """Raise ValueError naming the first field whose shape is not as documented."""
        b = self.keypoints2d.shape[0] if self.keypoints2d.dim() == 3 else -1
        expected = {
            "keypoints2d": (b, _NUM_JOINTS, 3),
            "world3d": (b, _NUM_JOINTS, 3),
            "bbox": (b, 4),
            "K": (b, 3, 3),
        }
        if self.silhouette is not None:
            side = self.silhouette.shape[-1]
            expected["silhouette"] = (b, side, side)
        if self.crop is not None:
            side = self.crop.shape[-1]
            expected["crop"] = (b, 3, side, side)
        for name, shape in expected.items():
            value = getattr(self, name)
            if tuple(value.shape) != shape:
                raise ValueError(
                    f"HumanInputs.{name} must have shape (B, {', '.join(map(str, shape[1:]))}), got {tuple(value.shape)}"
                )

    @property
    def box_centre(self) -> torch.Tensor:
        """(B, 2) pixel centre of each box."""
        return (self.bbox[:, :2] + self.bbox[:, 2:]) / 2

    @property
    def box_height(self) -> torch.Tensor:
        """(B,) box height in pixels, at least one pixel."""
        return (self.bbox[:, 3] - self.bbox[:, 1]).clamp(min=1.0)


def inputs_from_blazepose(
    landmarks2d: np.ndarray | torch.Tensor,
    world_landmarks: np.ndarray | torch.Tensor,
    bbox: np.ndarray | torch.Tensor,
    K: np.ndarray | torch.Tensor,
    silhouette: np.ndarray | torch.Tensor | None = None,
) -> HumanInputs:
    """HumanInputs of N people from BlazePose's 33 landmarks (float32, on the inputs' device).

    landmarks2d (N, 33, 3) [u_px, v_px, visibility]; world_landmarks (N, 33, 3) metres, crop
    frame (kept as is: the ray tokens tell the model where the crop looked); bbox (N, 4);
    K (3, 3) or (N, 3, 3); silhouette: optional (N, G, G) (``silhouette_from_segmentation``).
    Joints BlazePose has no point for (``metrichmsr.perception.landmarks.BLAZEPOSE_FOR_JOINT``) get zeros.
    """
    kp = torch.as_tensor(landmarks2d, dtype=torch.float32)
    n = kp.shape[0]
    if tuple(kp.shape) != (n, 33, 3):
        raise ValueError(f"landmarks2d must have shape (N, 33, 3), got {tuple(kp.shape)}")
    world = torch.as_tensor(world_landmarks, dtype=torch.float32, device=kp.device)
    if tuple(world.shape) != (n, 33, 3):
        raise ValueError(f"world_landmarks must have shape ({n}, 33, 3), got {tuple(world.shape)}")
    box = torch.as_tensor(bbox, dtype=torch.float32, device=kp.device)
    if tuple(box.shape) != (n, 4):
        raise ValueError(f"bbox must have shape ({n}, 4), got {tuple(box.shape)}")
    K = torch.as_tensor(K, dtype=torch.float32, device=kp.device)
    if tuple(K.shape) == (3, 3):
        K = K.expand(n, 3, 3)
    if tuple(K.shape) != (n, 3, 3):
        raise ValueError(f"K must have shape (3, 3) or ({n}, 3, 3), got {tuple(K.shape)}")
    index = [BLAZEPOSE_FOR_JOINT[name] for name in JOINT_NAMES]
    gather = torch.tensor([i if i is not None else 0 for i in index], device=kp.device)
    present = torch.tensor([i is not None for i in index], dtype=torch.float32, device=kp.device)[:, None]
    if silhouette is not None:
        silhouette = torch.as_tensor(silhouette, dtype=torch.float32, device=kp.device)
    inputs = HumanInputs(kp[:, gather] * present, world[:, gather] * present, box, K.contiguous(), silhouette)
    inputs.validate()
    return inputs


def silhouette_window(bbox: torch.Tensor) -> torch.Tensor:
    """(B, 4) ``[x0, y0, x1, y1]`` outer edges (pixel-centre coordinates) of the square the
    silhouette grid covers: centred on each (B, 4) box, SILHOUETTE_SPAN times its longer side."""
    centre = (bbox[:, :2] + bbox[:, 2:]) / 2
    half = SILHOUETTE_SPAN / 2 * (bbox[:, 2:] - bbox[:, :2]).amax(dim=-1, keepdim=True).clamp(min=1.0)
    return torch.cat((centre - half, centre + half), dim=-1)


def silhouette_from_segmentation(
    segmentation: np.ndarray | None, segmentation_box: np.ndarray | None, bbox: np.ndarray, grid: int
) -> torch.Tensor:
    """(grid, grid) float32 silhouette of one person for ``HumanInputs.silhouette``.

    segmentation: (S, S') person probability over the rectangle whose outer edges are
    ``segmentation_box`` (4,) [x0, y0, x1, y1] (pixel-centre coordinates), e.g. BlazePose's
    mask of its crop (``PersonObservation.segmentation``); bbox (4,) the person's box.
    Bilinear; zero outside the segmentation, and everywhere when there is none (None).
    """
    if segmentation is None:
        return torch.zeros(grid, grid)
    window = silhouette_window(torch.as_tensor(bbox, dtype=torch.float64)[None])[0]
    cells = (torch.arange(grid, dtype=torch.float64) + 0.5) / grid
    x = window[0] + cells * (window[2] - window[0])
    y = window[1] + cells * (window[3] - window[1])
    box = torch.as_tensor(segmentation_box, dtype=torch.float64)
    # grid_sample's -1 and 1 are the segmentation's outer edges (align_corners=False).
    gx = 2 * (x - box[0]) / (box[2] - box[0]) - 1
    gy = 2 * (y - box[1]) / (box[3] - box[1]) - 1
    where = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None].float()  # (1, G, G, 2)
    mask = torch.as_tensor(segmentation, dtype=torch.float32)[None, None]
    return F.grid_sample(mask, where, mode="bilinear", padding_mode="zeros", align_corners=False)[0, 0]


def crop_from_image(image: np.ndarray, bbox: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """(N, 3, size, size) float32 RGB in [0, 1] of an (H, W, 3) uint8 image over each of the
    (N, 4) boxes' ``silhouette_window``, for ``HumanInputs.crop``. Bilinear; zero outside the image.
    Only the pixels under each window are converted, so a huge photo costs no more than a small one."""
    height, width = image.shape[:2]
    windows = silhouette_window(torch.as_tensor(bbox, dtype=torch.float64).reshape(-1, 4))
    cells = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    crops = []
    for x0, y0, x1, y1 in windows.tolist():
        # The window's pixels (one more on each side for the bilinear taps), inside the image.
        left, top = max(0, math.floor(x0)), max(0, math.floor(y0))
        right, bottom = min(width, math.ceil(x1) + 1), min(height, math.ceil(y1) + 1)
        if right <= left or bottom <= top:
            crops.append(torch.zeros(3, size, size))
            continue
        region = torch.as_tensor(np.ascontiguousarray(image[top:bottom, left:right])).permute(2, 0, 1)[None].float() / 255
        # grid_sample's -1 and 1 are the region's outer edges (align_corners=False).
        gx = 2 * (x0 + cells * (x1 - x0) - left + 0.5) / (right - left) - 1
        gy = 2 * (y0 + cells * (y1 - y0) - top + 0.5) / (bottom - top) - 1
        where = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None].float()
        crops.append(F.grid_sample(region, where, mode="bilinear", padding_mode="zeros", align_corners=False)[0])
    return torch.stack(crops) if crops else torch.zeros(0, 3, size, size)


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

    def __post_init__(self):
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
                f"silhouette_grid ({self.silhouette_grid}) must be >= 0 and a multiple of silhouette_patch ({self.silhouette_patch})"
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


class FeedForward(nn.Module):
    """Two-layer MLP with GELU: (..., in_features) -> (..., out_features, default in_features)."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head self-attention over (B, T, dim) tokens."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)  # (B, heads, T, dim / heads)
        return self.proj(x.transpose(1, 2).reshape(b, t, d))


@dataclass
class RouterOutput:
    """One MoE layer's routing of B sequences of T tokens among E experts.

    logits, probs: (B, T, E) router logits and their softmax.
    indices: (B, T, k) chosen experts, best first; weights: (B, T, k) their gate weights
        (probabilities renormalised over the k chosen).
    kept: (B, T, k) bool, False where the expert was full (the assignment was dropped).
    """

    logits: torch.Tensor
    probs: torch.Tensor
    indices: torch.Tensor
    weights: torch.Tensor
    kept: torch.Tensor


class TopKRouter(nn.Module):
    """Learned linear router with top-k choice and per-sequence expert capacity.

    Capacity is counted per sequence (one person) rather than over the batch so that a person's
    output never depends on who else is in the batch. When an expert is over capacity, first
    choices go before second choices and, within a choice, larger gate weights first (batch
    prioritised routing, Riquelme et al. 2021), so the least confident assignments are dropped.
    """

    def __init__(self, dim: int, num_experts: int, top_k: int, capacity_factor: float):
        super().__init__()
        self.gate = nn.Linear(dim, num_experts, bias=False)
        self.num_experts = num_experts
        self.top_k = top_k
        self.capacity_factor = capacity_factor

    def capacity(self, num_tokens: int) -> int:
        """Assignments one expert takes from one sequence of ``num_tokens`` tokens (at least 1)."""
        return max(1, math.ceil(self.capacity_factor * num_tokens * self.top_k / self.num_experts))

    def forward(self, x: torch.Tensor) -> RouterOutput:
        b, t, _ = x.shape
        logits = self.gate(x)
        probs = logits.softmax(dim=-1)
        top, indices = probs.topk(self.top_k, dim=-1)
        weights = top / top.sum(dim=-1, keepdim=True)
        # Slot-major flat order, then a priority key: choice index minus gate weight (in (0, 1]),
        # so every first choice ranks before every second choice, heavier gates first.
        flat_expert = indices.transpose(1, 2).reshape(b, self.top_k * t)
        flat_weight = weights.transpose(1, 2).reshape(b, self.top_k * t)
        choice = torch.arange(self.top_k, device=x.device).repeat_interleave(t)
        order = (choice - flat_weight.detach()).argsort(dim=1, stable=True)
        onehot = F.one_hot(flat_expert.gather(1, order), self.num_experts)  # (B, kT, E), priority order
        slot_in_expert = (onehot.cumsum(dim=1) * onehot).sum(-1) - 1
        position = torch.empty_like(slot_in_expert).scatter_(1, order, slot_in_expert)
        kept = (position < self.capacity(t)).reshape(b, self.top_k, t).transpose(1, 2)
        return RouterOutput(logits, probs, indices, weights, kept)


def load_balancing_loss(probs: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Switch/GShard auxiliary loss ``E * sum_e f_e * P_e`` (scalar).

    probs (..., E) router probabilities; indices (..., k) chosen experts. ``f_e`` is the share of
    all k-choices that go to expert e (before capacity drops), ``P_e`` the mean probability of e.
    It is 1 whenever the router is uniform or the load is balanced, and grows towards E when
    one expert takes everything; only ``P_e`` carries the gradient (f is a count).
    """
    num_experts = probs.shape[-1]
    if probs.numel() == 0:
        return probs.new_ones(())
    share = F.one_hot(indices, num_experts).flatten(0, -2).float().mean(dim=0)  # (E,)
    mean_prob = probs.flatten(0, -2).mean(dim=0)
    return num_experts * (share * mean_prob).sum()


class MoEFeedForward(nn.Module):
    """Mixture-of-experts feed-forward: (B, T, dim) -> (B, T, dim), its RouterOutput and balance loss.

    Each token's output is the gate-weighted sum of its kept experts' outputs; a token whose
    every assignment overflowed gets exactly zero, so the block passes it through its residual.
    """

    def __init__(self, dim: int, num_experts: int, top_k: int, expert_hidden: int, capacity_factor: float):
        super().__init__()
        self.router = TopKRouter(dim, num_experts, top_k, capacity_factor)
        self.experts = nn.ModuleList(FeedForward(dim, expert_hidden) for _ in range(num_experts))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, RouterOutput, torch.Tensor]:
        route = self.router(x)
        tokens = x.flatten(0, 1)
        expert_of = route.indices.flatten(0, 1)  # (B*T, k)
        weight_of = route.weights.flatten(0, 1)
        kept = route.kept.flatten(0, 1)
        out = torch.zeros_like(tokens)
        for e, expert in enumerate(self.experts):
            token, choice = torch.nonzero((expert_of == e) & kept, as_tuple=True)
            out.index_add_(0, token, expert(tokens[token]) * weight_of[token, choice, None])
        return out.reshape(x.shape), route, load_balancing_loss(route.probs, route.indices)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + ffn(norm(x)) with an MoE or dense FFN."""

    def __init__(self, config: HumanMoEConfig):
        super().__init__()
        c = config
        self.norm1 = nn.LayerNorm(c.dim)
        self.attn = Attention(c.dim, c.heads)
        self.norm2 = nn.LayerNorm(c.dim)
        if c.ffn == "moe":
            self.ffn: nn.Module = MoEFeedForward(c.dim, c.num_experts, c.top_k, c.expert_hidden, c.capacity_factor)
        else:
            self.ffn = FeedForward(c.dim, c.expert_hidden * c.num_experts)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, RouterOutput | None, torch.Tensor | None]:
        """(B, T, dim) -> tokens, routing and balance loss (both None for a dense FFN)."""
        x = x + self.attn(self.norm1(x))
        if isinstance(self.ffn, MoEFeedForward):
            update, route, balance = self.ffn(self.norm2(x))
            return x + update, route, balance
        return x + self.ffn(self.norm2(x)), None, None


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
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.dim)
        self.pose_head = FeedForward(c.dim, c.dim, 6 * (len(POSE_BONES) + 1))
        self.shape_head = FeedForward(c.dim, c.dim, len(PHENOTYPE_NAMES))
        self.position_head = FeedForward(c.dim, c.dim, 3)
        camera_tokens = {"rays": ["ray"] * c.ray_grid**2, "box": ["box"], "none": []}[c.camera_encoding]
        silhouette_tokens = ["silhouette"] * self.num_silhouette_tokens
        image_tokens = ["image"] * (self.backbone.num_patches if self.backbone else 0)
        layout = ["keypoint"] * _NUM_JOINTS + camera_tokens + silhouette_tokens + image_tokens + ["query"] * len(TASK_QUERIES)
        self.register_buffer("token_type", torch.tensor([TOKEN_TYPES.index(t) for t in layout]), persistent=False)
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
        features = [position, visibility, inputs.world3d]
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


def _init_weights(module: nn.Module) -> None:
    """timm's ViT init: truncated-normal linear weights (std 0.02), zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def to_fit_params(outputs: dict) -> BodyParams:
    """HumanMoE's predictions (``HumanMoE.forward``) as the fitter's initial guess (detached)."""
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
