"""The focal length from the photo itself, when neither the user nor EXIF gives it.

Two 3D directions at right angles whose vanishing points v1, v2 (pixels) are both finite fix
the focal length of a camera with square pixels and its principal point c at the image
centre: ``f^2 = -(v1 - c) . (v2 - c)``. Vertical edges (walls, door frames, poles, standing
people) are at right angles to every horizontal family (floor tiles, kerbs, the foot of a
wall, window rows), so a vertical and any horizontal vanishing point give f without assuming
the scene is a box; two horizontal families give it only when they meet at right angles
(a "Manhattan" room, tiles), which is assumed only when no vertical family is seen.

1. Vanishing points of the image's straight lines: ``scene.horizon``'s LSD segments and
   greedy vanishing points, found under a nominal camera (any focal: a vanishing point is
   an image point, whatever K). People's boxes are left out.
2. Families whose segments stand within :data:`VERTICAL_IMAGE_DEG` of the image's vertical
   are vertical candidates; the others horizontal.
3. Every pair (vertical with horizontal; two horizontal ones at :data:`MANHATTAN_WEIGHT`)
   asks for a right angle. Each family's direction noise comes from :data:`BOOTSTRAP`
   resamplings of its segments (a vanishing point far outside the image, as for a level
   camera's verticals, moves wildly and so tells little). A grid search over focal length and
   principal point (its prior :data:`PRINCIPAL_POINT_STD`), each pair's misfit capped at
   :data:`OUTLIER_SIGMAS`, picks the pairs that agree; least squares on them gives the focal
   length and, from its Jacobian, its uncertainty.

A level camera (verticals parallel in the image), a single family, or no lines at all cannot
tell: then :attr:`FocalEstimate.focal_px` is None and ``why`` says what was missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterable

import numpy as np
from scipy.optimize import least_squares

from metrichmsr.camera import DEFAULT_FOV_DEG, Intrinsics, focal_from_fov, fov_from_focal, resolve_intrinsics
from metrichmsr.geometry import rays_z1, unit
from metrichmsr.scene._stats import weighted_median
from metrichmsr.scene.horizon import Segments, detect_segments, vanishing_points

#: A family is a vertical candidate when its segments (length-weighted) lean less than this
#: from the image's vertical: cameras roll a few degrees, and a pitched camera's verticals
#: converge, so those far from the centre of a wide image lean by up to ~20 degrees.
VERTICAL_IMAGE_DEG = 25.0
#: Resamplings of each family's segments that give each focal its spread.
BOOTSTRAP = 64
#: The estimate counts only when its relative uncertainty (std of log f) is under this.
MAX_SPREAD = 0.25
#: The search: focal lengths (log-spaced over FOV_RANGE_DEG) times principal points (a square
#: grid over 2 PRINCIPAL_POINT_STD either side of the centre).
FOCAL_GRID = 200
PRINCIPAL_POINT_GRID = 9
#: A pair whose directions stay this many of their noise levels from a right angle is an
#: outlier; pairs of two horizontal families (a right angle only assumed) weigh this much.
OUTLIER_SIGMAS = 3.0
MANHATTAN_WEIGHT = 0.5
#: A shared error of all of a family's segment angles (degrees, standard deviation), part of
#: each vanishing point's uncertainty: lenses leave some distortion, structures lean, and a far
#: vanishing point moves a long way for a small error in its segments' convergence.
SEGMENT_ANGLE_BIAS_DEG = 0.3
#: The least angle noise of a pair's directions, degrees: LSD's pixel accuracy.
MIN_ANGLE_NOISE_DEG = 0.2
#: How far (standard deviation, share of the image's width and height) the principal point
#: may lie from the centre: a percent or two in a whole frame, more in a crop. Three families
#: at right angles (a room's verticals and its floor's two directions) fix it.
PRINCIPAL_POINT_STD = 0.1
#: Images of one camera whose estimates lie farther than this many of their standard
#: deviations from the others' disagree (a frame whose lines mislead), and are left out.
AGREEMENT_SIGMAS = 3.0
#: Floor on the combined relative uncertainty (log f).
MIN_SPREAD = 0.02
#: Focal lengths outside these horizontal fields of view (degrees) are no answer.
FOV_RANGE_DEG = (8.0, 150.0)


@dataclass(frozen=True)
class FocalEstimate:
    """What the image's lines say about the focal length.

    Attributes:
        focal_px: the focal length in pixels (square pixels, principal point at the centre),
            or None when the lines cannot tell.
        log_std: the standard deviation of ``log(focal_px)`` (relative uncertainty); None with it.
        cue: which vanishing points fixed it (``"vertical+horizontal"``, ``"two horizontal
            (right angle assumed)"``); None with it.
        pairs: how many pairs of vanishing points agreed on it.
        why: with ``focal_px`` None, what the lines lacked (one line, for the user).
    """

    focal_px: float | None
    log_std: float | None = None
    cue: str | None = None
    pairs: int = 0
    why: str | None = None

    def fov_interval_deg(self, width: int, sigmas: float = 1.0) -> tuple[float, float]:
        """The horizontal FOV interval (degrees) ``sigmas`` standard deviations either side
        (1: the 68% interval); the longer focal gives the narrower view, listed first."""
        long, short = (self.focal_px * math.exp(s * sigmas * self.log_std) for s in (1.0, -1.0))
        return fov_from_focal(long, width), fov_from_focal(short, width)


def nominal_K(width: int, height: int) -> np.ndarray:
    """(3, 3) a camera with the principal point at the image centre and the image diagonal
    as focal length: the frame the lines are read in before the focal is known."""
    f = math.hypot(width, height)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def _vanishing_point_samples(segments: Segments, mask: np.ndarray, K: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(1 + BOOTSTRAP, 3) homogeneous vanishing points (pixels) of one family: its own least
    squares fit (segment length squared weights), then fits to resampled segments whose image
    angles are all off by a shared error (SEGMENT_ANGLE_BIAS_DEG: a turn, and a fan across
    the image), as a lens's leftover distortion or a leaning structure would put them."""
    index = np.flatnonzero(mask)
    draws = np.concatenate([index[None], rng.choice(index, size=(BOOTSTRAP, len(index)))])
    turn, fan = np.radians(SEGMENT_ANGLE_BIAS_DEG) * np.concatenate([np.zeros((1, 2)), rng.normal(size=(BOOTSTRAP, 2))]).T
    across = (segments.midpoint[draws, 0] - K[0, 2]) / K[0, 2]  # (1 + B, n), -1 .. 1 over the width
    angle = np.arctan2(segments.direction[draws, 1], segments.direction[draws, 0]) + turn[:, None] + fan[:, None] * across
    half = 0.5 * segments.length[draws, None] * np.stack([np.cos(angle), np.sin(angle)], -1)  # (1 + B, n, 2)
    middle = segments.midpoint[draws]
    ends = rays_z1(K, *np.moveaxis(np.stack([middle - half, middle + half], -2), -1, 0))  # (1 + B, n, 2, 3)
    normals = unit(np.cross(ends[..., 0, :], ends[..., 1, :]))
    weights = segments.length[draws] ** 2
    scatter = np.einsum("bn,bni,bnj->bij", weights, normals, normals)
    directions = np.linalg.eigh(scatter)[1][:, :, 0]  # (1 + B, 3) least-squares direction
    return directions @ K.T


def _pair_cosines(vanishing: np.ndarray, pairs: np.ndarray, params: np.ndarray) -> np.ndarray:
    """(..., P) cosines between the 3D directions of pairs (P, 2) of vanishing points (F, 3),
    homogeneous pixels, under cameras ``params`` (..., 3) [log f, cx, cy]: 0 at right angles."""
    params = np.asarray(params, dtype=np.float64)[..., None, :]  # (..., 1, 3)
    xy = (vanishing[:, :2] - params[..., 1:] * vanishing[:, 2:]) / np.exp(params[..., :1])  # (..., F, 2)
    d = np.concatenate([xy, np.broadcast_to(vanishing[:, 2:], xy.shape[:-1] + (1,))], -1)
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    return (d[..., pairs[:, 0], :] * d[..., pairs[:, 1], :]).sum(-1)


def _leans_vertical(segments: Segments, mask: np.ndarray) -> bool:
    """Whether a family's segments, weighted by length, stand within VERTICAL_IMAGE_DEG of the image's vertical."""
    upright = np.abs(segments.direction[mask, 1]) >= math.cos(math.radians(VERTICAL_IMAGE_DEG))
    return float(segments.length[mask] @ upright) >= 0.5 * float(segments.length[mask].sum())


def focal_from_lines(
    image: np.ndarray, exclude_boxes: np.ndarray | None = None, principal_point: np.ndarray | None = None, seed: int = 0
) -> FocalEstimate:
    """The focal length (pixels) an (H, W, 3) uint8 RGB image's straight lines give.

    exclude_boxes: optional (N, 4) pixel boxes (people) whose segments are left out.
    principal_point: (2,) pixels, when known; default the image centre, give or take
        :data:`PRINCIPAL_POINT_STD` of the image size (part of the estimate's uncertainty).
    seed: the resampling's seed (the estimate is repeatable).
    """
    height, width = image.shape[:2]
    K = nominal_K(width, height)
    if principal_point is not None:
        K[:2, 2] = principal_point
    segments = detect_segments(image, K, exclude_boxes)
    if not len(segments):
        return FocalEstimate(None, why="no straight lines in the image")
    families = vanishing_points(segments, K, math.hypot(width, height))
    if len(families) < 2:
        return FocalEstimate(None, why="the lines meet at fewer than two vanishing points")
    rng = np.random.default_rng(seed)
    samples = np.stack([_vanishing_point_samples(segments, mask, K, rng) for mask in families])  # (F, 1 + B, 3)
    samples *= np.sign(np.einsum("fbi,fi->fb", samples, samples[:, 0]))[..., None]  # one orientation per family
    vertical = [i for i, mask in enumerate(families) if _leans_vertical(segments, mask)]
    horizontal = [i for i in range(len(families)) if i not in vertical]
    upright = [(v, h) for v in vertical for h in horizontal]
    pairs = np.array(upright + [(a, b) for i, a in enumerate(horizontal) for b in horizontal[i + 1 :]], dtype=int)
    if not len(pairs):
        return FocalEstimate(None, why=_cannot_tell(vertical))
    centre = K[:2, 2]
    pp_std = np.array([width, height]) * (PRINCIPAL_POINT_STD if principal_point is None else 1e-6)
    log_f_range = [math.log(focal_from_fov(fov, width)) for fov in FOV_RANGE_DEG[::-1]]
    # A pair's cosine moves with its two directions: their angular spread over the resampled segments.
    angle_noise = np.maximum(_angular_spread(samples), math.radians(MIN_ANGLE_NOISE_DEG))
    noise = np.hypot(angle_noise[pairs[:, 0]], angle_noise[pairs[:, 1]])
    # A family's say grows with its squared segment lengths, as a segment's direction is as
    # precise as it is long: many short edges that happen to meet (a checkerboard's corners) are outvoted.
    strength = np.array([(segments.length[mask] ** 2).sum() for mask in families])
    weight = np.sqrt(strength[pairs[:, 0]] * strength[pairs[:, 1]]) / strength.max()
    weight *= np.where(np.arange(len(pairs)) < len(upright), 1.0, MANHATTAN_WEIGHT)

    def cost(params: np.ndarray) -> np.ndarray:
        """(...,) robust misfit of cameras ``params`` (..., 3) [log f, cx, cy]: each pair's
        squared cosine in noise units, capped at OUTLIER_SIGMAS^2, plus the principal point's prior."""
        cosines = _pair_cosines(samples[:, 0], pairs, params) / noise  # (..., P)
        prior = (((params[..., 1:] - centre) / pp_std) ** 2).sum(-1)
        return (np.minimum(cosines**2, OUTLIER_SIGMAS**2) * weight).sum(-1) + prior

    # Every focal over a grid of principal points near the centre; the best is refined on the
    # pairs it agrees with, the others (a sloping roof, a prop, walls not at right angles) left out.
    offsets = np.linspace(-2.0, 2.0, PRINCIPAL_POINT_GRID)
    grid = np.stack(
        np.meshgrid(
            np.linspace(*log_f_range, FOCAL_GRID), centre[0] + offsets * pp_std[0], centre[1] + offsets * pp_std[1], indexing="ij"
        ),
        axis=-1,
    ).reshape(-1, 3)
    start = grid[np.argmin(cost(grid))]
    keep = np.abs(_pair_cosines(samples[:, 0], pairs, start) / noise) <= OUTLIER_SIGMAS
    if not keep.any():
        return FocalEstimate(None, why=_cannot_tell(vertical))

    def residuals(params: np.ndarray) -> np.ndarray:
        cosines = _pair_cosines(samples[:, 0], pairs[keep], params) / noise[keep] * np.sqrt(weight[keep])
        return np.concatenate([cosines, (params[1:] - centre) / pp_std])

    bounds = ([log_f_range[0], -np.inf, -np.inf], [log_f_range[1], np.inf, np.inf])
    fit = least_squares(residuals, start, bounds=bounds, x_scale=np.array([0.1, *pp_std]))
    covariance = np.linalg.pinv(fit.jac.T @ fit.jac)
    log_std = max(float(np.sqrt(covariance[0, 0])), MIN_SPREAD)
    if not np.isfinite(log_std) or log_std > MAX_SPREAD:
        return FocalEstimate(None, why=_cannot_tell(vertical))
    if not log_f_range[0] + 0.01 < fit.x[0] < log_f_range[1] - 0.01:
        return FocalEstimate(
            None, why=f"the lines want a field of view outside {FOV_RANGE_DEG[0]:.0f}-{FOV_RANGE_DEG[1]:.0f} deg"
        )
    kept = np.flatnonzero(keep)
    cue = "vertical+horizontal" if (kept < len(upright)).any() else "two horizontal (right angle assumed)"
    return FocalEstimate(math.exp(fit.x[0]), log_std, cue, len(kept))


def _angular_spread(samples: np.ndarray) -> np.ndarray:
    """(F,) radians: how far each family's direction under the nominal camera moves over its
    resampled segments (RMS angle to its own fit), from vanishing point samples (F, 1 + B, 3)."""
    d = samples / np.linalg.norm(samples, axis=-1, keepdims=True)
    along = np.clip(np.abs(np.einsum("fbi,fi->fb", d[:, 1:], d[:, 0])), 0.0, 1.0)
    return np.sqrt((np.arccos(along) ** 2).mean(1))


def _cannot_tell(vertical: list) -> str:
    if not vertical:
        return "no vertical lines, and the horizontal ones do not tell the focal length"
    return "the vertical lines are parallel in the image (a level camera) or meet too far away to tell"


def pooled(estimates: list[FocalEstimate]) -> FocalEstimate:
    """One focal length from several images of one camera (``--same-camera``): the
    estimates within AGREEMENT_SIGMAS of their precision-weighted median, combined in log f."""
    found = [e for e in estimates if e.focal_px is not None]
    if not found:
        return FocalEstimate(None, why=f"none of the {len(estimates)} image(s) has lines that tell the focal length")
    log_f = np.log([e.focal_px for e in found])
    weight = 1.0 / np.array([e.log_std for e in found]) ** 2
    median = weighted_median(log_f, weight)
    agree = np.abs(log_f - median) <= AGREEMENT_SIGMAS * np.array([e.log_std for e in found])
    focal = math.exp(float((weight[agree] * log_f[agree]).sum() / weight[agree].sum()))
    log_std = max(float(weight[agree].sum() ** -0.5), MIN_SPREAD)
    return FocalEstimate(focal, log_std, f"pooled over {int(agree.sum())} of {len(estimates)} images", int(agree.sum()))


def with_estimate(intrinsics: Intrinsics, width: int, estimate: FocalEstimate) -> Intrinsics:
    """``intrinsics`` of source ``default`` replaced by what ``estimate`` says about a
    ``width``-pixel-wide image (principal point kept at the centre); still the default, with
    a note saying why, when the estimate found nothing."""
    if estimate.focal_px is None:
        return replace(intrinsics, note=f"{estimate.why}: assumed a {DEFAULT_FOV_DEG:.0f} deg horizontal field of view")
    f = estimate.focal_px
    return Intrinsics(
        f,
        f,
        intrinsics.cx,
        intrinsics.cy,
        "estimated",
        estimate.fov_interval_deg(width),
        f"from the image's lines: {estimate.cue}",
    )


def camera_from_lines(intrinsics: Intrinsics, image: np.ndarray, people_boxes: np.ndarray | None = None) -> Intrinsics:
    """``intrinsics`` of source ``default`` for an (H, W, 3) uint8 ``image``, replaced by the
    focal length its lines give (:func:`focal_from_lines`, the people's (N, 4) boxes left out)
    where they tell it (:func:`with_estimate`)."""
    return with_estimate(intrinsics, image.shape[1], focal_from_lines(image, people_boxes))


def shared_camera(images: Iterable[np.ndarray]) -> Intrinsics | None:
    """The intrinsics of one camera that took all of ``images`` ((H, W, 3) uint8, one size):
    the focal length :func:`pooled` from each image's lines, the principal point at the
    centre; the default, with a note, when no image's lines tell; None without images."""
    estimates, size = [], None
    for image in images:
        size = image.shape[1::-1]
        estimates.append(focal_from_lines(image))
    if size is None:
        return None
    return with_estimate(resolve_intrinsics(*size), size[0], pooled(estimates))
