"""The world's up direction from the image's straight lines (vanishing points).

Bodies tell the floor's tilt only to a few degrees (a stance, a lean, the network's error),
and a floor pixel's depth is ``camera height / sin(angle below the horizon)``: one degree
of tilt is a 10% depth error 8 degrees below the horizon. Man-made scenes draw that angle
far more precisely: their vertical edges (walls, door frames, poles) meet at the vertical
vanishing point, and each family of parallel horizontal edges (floor tiles, planks, the
foot of a wall, kerbs) meets at a point on the horizon. The up direction is the vertical
vanishing point's ray, and is perpendicular to every horizontal family's ray.

1. Straight segments (:func:`detect_segments`): OpenCV's LSD on the grey image; short ones
   and those on the people (their boxes) left out.
2. Vanishing points (:func:`vanishing_points`), greedily: pairs of the longest segments
   propose directions; a segment supports one when it points at its vanishing point
   (within :data:`TOLERANCE_DEG`, in the image); the best is refit to its inliers, which it
   then keeps. Pieces of only one or two image lines are no vanishing point.
3. The up (:func:`up_from_vanishing_points`), near the bodies' (``prior_up``): the vertical
   family alone, or two horizontal ones (30° apart or more, not necessarily 90°: no
   Manhattan assumption), propose it; the proposal whose agreeing families weigh most wins,
   and the up is fitted to them by least squares on their segments' interpretation planes,
   held to the prior only along the tilt the lines leave free (one horizontal family fixes
   one tilt, not two).

4. Where the floor ends (:func:`wall_distance_m`): the vertical family's segments, carried
   down to the edge they stand on, meet the floor plane at their feet; the nearer feet
   behind the people give the distance of the wall (or building) the planar layout closes
   the floor with. The horizontal families' segments on the floor (:func:`floor_seen_m`)
   say how far the floor itself is seen, so that no wall stands nearer.

Outdoors without lines, or where people cover the scene, nothing is found (``None``) and
the caller keeps the bodies' up.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import cv2
import numpy as np
from scipy.optimize import minimize

from metrichmsr.geometry import rays_z1, unit
from metrichmsr.scene.floor import FloorPlane

#: Segments shorter than this fraction of the image diagonal are too imprecise to vote.
MIN_SEGMENT_FRACTION = 0.02
#: LSD runs on the image shrunk to this long side (segments are reported in original pixels).
DETECT_LONG_SIDE_PX = 1024
#: How far the lines may move the up direction from the bodies', degrees. One sitting or
#: leaning body can be 15-20 degrees off, and a search that stops short of the true vertical
#: takes whatever meets near its edge: on the held-out renders 16 left 11 of 171 floors more
#: than 5 degrees off, 30 left 5 (and 2 of 300 upright scenes either way).
SEARCH_RADIUS_DEG = 30.0
#: A family needs this many inlier segments, on as many different lines, and this much
#: inlier length (fraction of the image diagonal) to count.
MIN_FAMILY_SEGMENTS = 3
MIN_FAMILY_LENGTH = 0.3
#: Two horizontal vanishing points whose directions are closer than this are one family.
MIN_FAMILY_SEPARATION_DEG = 10.0
#: Two horizontal families propose an up only when their directions are this far apart.
MIN_PROPOSING_SEPARATION_DEG = 30.0
#: A ground slopes against the walls' verticals by a few degrees (a plaza, a street; PETS
#: 2009's by 3.8). Two horizontal families whose up tilts further from a vertical family that
#: outweighs the weaker of them (a pair's up is only as sure as its weaker direction) propose
#: nothing: one of them is taken for horizontal and is not (a sloping edge or roof line). On
#: the PETS stills such pairs outweighed the floor's own by about 1% in 7 of 67 and put the
#: floor 11-16 degrees off.
MAX_FLOOR_SLOPE_DEG = 6.0
#: A family agrees with an up direction when its own vanishing direction is this close to
#: where that up puts it (degrees).
AGREEMENT_DEG = 1.0
#: A segment points at a vanishing point when the image angle between them is under this.
TOLERANCE_DEG = 1.0
#: Vanishing points looked for, and how many of the longest segments propose them (pairwise).
MAX_POINTS = 5
PROPOSING_SEGMENTS = 60
#: A wall's foot (:func:`wall_distance_m`) needs this many vertical segments standing on the
#: floor behind the people, and lies at this quantile of their distances.
MIN_WALL_FEET = 3
WALL_FEET_QUANTILE = 0.25
#: How far the floor is seen (:func:`floor_seen_m`): this quantile of its lines' ends beyond the people.
FLOOR_SEEN_QUANTILE = 0.75
#: Feet nearer the horizon than this (pixels) say too little about their distance.
MIN_FOOT_BELOW_HORIZON_PX = 10.0
#: A vertical line carried down stops at an edge it crosses at more than this angle, or at
#: one that crosses it this close above its end (LSD's ends are a pixel or two off).
MIN_CROSSING_DEG = 20.0
END_SLACK_PX = 3.0


@dataclass(frozen=True)
class Segments:
    """Straight image segments, in pixels of the original image.

    Attributes:
        midpoint: (S, 2) pixel coordinates of each segment's centre.
        direction: (S, 2) unit image directions.
        length: (S,) pixels.
        normal: (S, 3) unit normals of the planes through the camera centre and each
            segment (camera frame): a 3D line with direction d projects onto the segment
            only if ``normal @ d == 0``.
    """

    midpoint: np.ndarray
    direction: np.ndarray
    length: np.ndarray
    normal: np.ndarray

    def __len__(self) -> int:
        return len(self.length)

    @property
    def ends(self) -> np.ndarray:
        """(S, 2, 2) pixel coordinates of each segment's two ends."""
        return self.midpoint[:, None] + np.array([-0.5, 0.5])[:, None] * self.length[:, None, None] * self.direction[:, None]

    def subset(self, keep: np.ndarray) -> "Segments":
        return Segments(self.midpoint[keep], self.direction[keep], self.length[keep], self.normal[keep])


@dataclass(frozen=True)
class LineUp:
    """The up direction the lines give.

    Attributes:
        up: (3,) unit vector against gravity, camera frame (OpenCV axes).
        vertical: the segments that met at the vertical vanishing point (none without one).
        others: every other segment found (floor edges, the foot of a wall, ...).
        horizontal: the segments that met at the horizontal vanishing points the up agrees
            with (floor planks and tiles, kerbs, the foot of a wall).
        determined: True when the lines fix both tilts (the vertical family, or two
            horizontal ones); False when one horizontal family fixes one and the prior the other.
    """

    up: np.ndarray
    vertical: Segments
    others: Segments
    horizontal: Segments
    determined: bool


def detect_segments(image: np.ndarray, K: np.ndarray, exclude_boxes: np.ndarray | None = None) -> Segments:
    """Straight segments of an (H, W, 3) uint8 RGB (or (H, W) grey) image, LSD.

    exclude_boxes: optional (N, 4) pixel boxes (x0, y0, x1, y1), e.g. the people; segments
    whose midpoint falls inside one (grown by 5% of its size on each side) are left out.
    """
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else np.asarray(image)
    height, width = grey.shape
    shrink = min(1.0, DETECT_LONG_SIDE_PX / max(height, width))
    if shrink < 1.0:
        grey = cv2.resize(grey, (round(width * shrink), round(height * shrink)), interpolation=cv2.INTER_AREA)
    found = cv2.createLineSegmentDetector().detect(grey)[0]
    ends = np.zeros((0, 2, 2)) if found is None else found.reshape(-1, 2, 2).astype(np.float64) / shrink
    ends += 0.5 * (1.0 / shrink - 1.0)  # pixel centres map to pixel centres, not corners to corners
    delta = ends[:, 1] - ends[:, 0]
    length = np.hypot(delta[:, 0], delta[:, 1])
    midpoint = ends.mean(axis=1)
    keep = length >= MIN_SEGMENT_FRACTION * np.hypot(width, height)
    if exclude_boxes is not None and len(exclude_boxes):
        boxes = np.asarray(exclude_boxes, dtype=np.float64).reshape(-1, 4)
        grow = 0.05 * (boxes[:, 2:] - boxes[:, :2])
        low, high = boxes[:, :2] - grow, boxes[:, 2:] + grow
        inside = np.all((midpoint[:, None] >= low) & (midpoint[:, None] <= high), axis=2).any(axis=1)
        keep &= ~inside
    ends, delta, length, midpoint = ends[keep], delta[keep], length[keep], midpoint[keep]
    rays = rays_z1(K, ends[..., 0], ends[..., 1])  # (S, 2, 3)
    return Segments(midpoint, delta / length[:, None], length, unit(np.cross(rays[:, 0], rays[:, 1])))


def support(segments: Segments, directions: np.ndarray, K: np.ndarray, tolerance_deg: float) -> np.ndarray:
    """(M, S) how much each segment supports each 3D direction (M, 3): its length, times a
    kernel of the image angle between the segment and the line from its midpoint to the
    direction's vanishing point (1 when aligned, 0 beyond ``tolerance_deg``)."""
    vanishing = directions @ K.T  # (M, 3) homogeneous pixels; z = 0 is a point at infinity
    toward_x = vanishing[:, None, 0] - segments.midpoint[None, :, 0] * vanishing[:, None, 2]
    toward_y = vanishing[:, None, 1] - segments.midpoint[None, :, 1] * vanishing[:, None, 2]
    cross = segments.direction[:, 0] * toward_y - segments.direction[:, 1] * toward_x
    with np.errstate(invalid="ignore", divide="ignore"):
        sine = np.abs(cross) / np.hypot(toward_x, toward_y)
    kernel = 1.0 - (sine / np.sin(np.radians(tolerance_deg))) ** 2
    return np.nan_to_num(np.clip(kernel, 0.0, None)) * segments.length


class ImageLines:
    """An image's straight segments (:func:`detect_segments`) and vanishing points
    (:func:`vanishing_points`), found on first use and then searched around any prior up:
    one image's people are placed on the floor several times over, with the same boxes.

    Args:
        image: (H, W, 3) uint8 RGB.
        K: (3, 3) intrinsics, pixels.
        exclude_boxes: optional (N, 4) pixel boxes whose lines are not the scene's (people).
    """

    def __init__(self, image: np.ndarray, K: np.ndarray, exclude_boxes: np.ndarray | None = None):
        self.image, self.K, self.exclude_boxes = image, np.asarray(K, dtype=np.float64), exclude_boxes
        self._fitted: dict[tuple[int, ...], np.ndarray] = {}

    @cached_property
    def _found(self) -> tuple[Segments, list[np.ndarray]]:
        segments = detect_segments(self.image, self.K, self.exclude_boxes)
        return segments, vanishing_points(segments, self.K, np.hypot(self.image.shape[0], self.image.shape[1]))

    def up_near(self, prior_up: np.ndarray) -> LineUp | None:
        """The up direction (camera frame) the lines give near ``prior_up`` (3,), the
        bodies'; None when no vanishing point lies where a vertical or a horizontal one can
        (within :data:`SEARCH_RADIUS_DEG` of the prior's)."""
        return up_from_vanishing_points(*self._found, unit(np.asarray(prior_up, dtype=np.float64)), self._fitted)


def up_from_lines(
    image: np.ndarray, K: np.ndarray, prior_up: np.ndarray, exclude_boxes: np.ndarray | None = None
) -> LineUp | None:
    """The up direction (camera frame) the image's straight lines give, near ``prior_up``
    (:meth:`ImageLines.up_near`, for one prior)."""
    return ImageLines(image, K, exclude_boxes).up_near(prior_up)


def wall_distance_m(lines: LineUp, floor: FloorPlane, K: np.ndarray, beyond_m: float) -> float | None:
    """How far ahead (metres along ``floor.forward``) vertical lines stand on the floor
    beyond ``beyond_m``: where a room's far wall, a building or a row of poles begins.

    A vertical segment's foot is where it meets the floor: its ray meets the floor plane
    there. Its lower end often stops short (an edge fades toward the floor, a skirting board
    or someone in front hides it), so the segment is carried down to the first other edge
    it meets within its own length (the wall's foot, most often); one that meets none keeps
    its end. Feet still short of the floor lie too far, so the answer is the lower quartile
    (:data:`WALL_FEET_QUANTILE`) of the feet beyond ``beyond_m`` (of an oblique wall, its
    nearer part), counting only feet at least :data:`MIN_FOOT_BELOW_HORIZON_PX` below the
    horizon. None with fewer than :data:`MIN_WALL_FEET` such feet.
    """
    vertical, up = lines.vertical, np.asarray(floor.up, dtype=np.float64)
    vanishing = np.asarray(K, dtype=np.float64) @ up
    upward = vanishing[:2] - vertical.midpoint * vanishing[2]  # (V, 2) image direction of up at each midpoint
    toward_foot = -np.sign(np.sum(vertical.direction * upward, axis=1))
    down = toward_foot[:, None] * vertical.direction
    feet = _carried_down(vertical.midpoint + 0.5 * vertical.length[:, None] * down, down, vertical.length, lines.others)
    ahead = _ahead_on_floor(feet, floor, K)
    ahead = ahead[np.isfinite(ahead) & (ahead > beyond_m)]
    return float(np.quantile(ahead, WALL_FEET_QUANTILE)) if len(ahead) >= MIN_WALL_FEET else None


def floor_seen_m(lines: LineUp, floor: FloorPlane, K: np.ndarray, beyond_m: float) -> float | None:
    """How far ahead (metres along ``floor.forward``) the floor's own lines are seen beyond
    ``beyond_m``: the floor reaches at least that far, wherever a wall may stand.

    The horizontal families' segments (planks, tiles, kerbs, a wall's foot) that lie on the
    floor end where their rays meet it; the answer is the :data:`FLOOR_SEEN_QUANTILE` of
    those ends beyond ``beyond_m`` (a high one: the farthest ends are what show the reach,
    and the last few may be a wall's lines below eye level, which meet the floor plane
    behind the wall). Ends within :data:`MIN_FOOT_BELOW_HORIZON_PX` of the horizon do not
    count. None with fewer than :data:`MIN_WALL_FEET` such ends.
    """
    ahead = _ahead_on_floor(lines.horizontal.ends.reshape(-1, 2), floor, K)
    ahead = ahead[np.isfinite(ahead) & (ahead > beyond_m)]
    return float(np.quantile(ahead, FLOOR_SEEN_QUANTILE)) if len(ahead) >= MIN_WALL_FEET else None


def with_floor_extent(floor: FloorPlane, lines: LineUp, K: np.ndarray, beyond_m: float) -> FloorPlane:
    """``floor`` with where its wall stands (:func:`wall_distance_m`) and how far it is seen
    (:func:`floor_seen_m`) beyond ``beyond_m`` (the farthest person), at its own height."""
    return replace(
        floor,
        wall_distance_m=wall_distance_m(lines, floor, K, beyond_m),
        floor_seen_m=floor_seen_m(lines, floor, K, beyond_m),
    )


def _ahead_on_floor(pixels: np.ndarray, floor: FloorPlane, K: np.ndarray) -> np.ndarray:
    """(P,) metres along ``floor.forward`` to where each pixel's (P, 2) ray meets the floor;
    NaN above the horizon or within :data:`MIN_FOOT_BELOW_HORIZON_PX` below it."""
    rays = rays_z1(K, pixels[:, 0], pixels[:, 1])
    up = np.asarray(floor.up, dtype=np.float64)
    # A pixel or two off moves a floor point's distance by more than a fifth this close to the horizon.
    sine_below_horizon = np.clip(-(rays @ up) / np.linalg.norm(rays, axis=1), -1.0, 1.0)
    below_horizon_px = K[1, 1] * np.tan(np.arcsin(sine_below_horizon))
    return np.where(below_horizon_px >= MIN_FOOT_BELOW_HORIZON_PX, floor.ray_depth(rays), np.nan) * (rays @ floor.forward)


def _carried_down(ends: np.ndarray, down: np.ndarray, reach: np.ndarray, edges: Segments) -> np.ndarray:
    """(V, 2) pixels: each end (V, 2) moved along its unit image direction ``down`` (V, 2) to
    the first of ``edges`` it crosses within ``reach`` (V,) pixels (or :data:`END_SLACK_PX`
    above the end), at more than :data:`MIN_CROSSING_DEG` to it; ends that cross none stay."""
    a = edges.ends[:, 0]  # (E, 2) each edge's first end
    span = edges.length[:, None] * edges.direction  # (E, 2) first end -> second end
    offset = a[None] - ends[:, None]  # (V, E, 2)
    # ends + t down = a + s span: Cramer's rule for (t, s).
    det = span[None, :, 0] * down[:, None, 1] - span[None, :, 1] * down[:, None, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (span[None, :, 0] * offset[..., 1] - span[None, :, 1] * offset[..., 0]) / det
        s = (down[:, None, 0] * offset[..., 1] - down[:, None, 1] * offset[..., 0]) / det
    crossing = np.abs(det) > np.sin(np.radians(MIN_CROSSING_DEG)) * edges.length[None]
    hit = crossing & (s >= 0) & (s <= 1) & (t >= -END_SLACK_PX) & (t <= reach[:, None])
    first = np.where(hit, t, np.inf).min(axis=1, initial=np.inf)
    return ends + np.where(np.isfinite(first), first, 0.0)[:, None] * down


def vanishing_points(segments: Segments, K: np.ndarray, diagonal_px: float, max_points: int = MAX_POINTS) -> list[np.ndarray]:
    """The image's strongest vanishing points, greedily: (S,) bool inlier masks, strongest first.

    Each round: every pair of the longest remaining segments proposes the direction both
    could have (the cross product of their planes' normals); the proposal most remaining
    segments point at wins, is refit to its inliers by least squares, and takes them. It
    stops when the best has fewer than :data:`MIN_FAMILY_SEGMENTS` segments or less than
    :data:`MIN_FAMILY_LENGTH` of inlier length. ``diagonal_px``: the image diagonal.
    """
    remaining = np.ones(len(segments), dtype=bool)
    found = []
    for _ in range(max_points):
        pool = np.flatnonzero(remaining)
        if len(pool) < MIN_FAMILY_SEGMENTS:
            break
        seeds = pool[np.argsort(-segments.length[pool])[:PROPOSING_SEGMENTS]]
        first, second = np.triu_indices(len(seeds), k=1)
        proposals = np.cross(segments.normal[seeds[first]], segments.normal[seeds[second]])
        norm = np.linalg.norm(proposals, axis=1)
        proposals = proposals[norm > 1e-3] / norm[norm > 1e-3, None]  # (nearly) one line twice proposes nothing
        if not len(proposals):
            break
        candidates = segments.subset(pool)
        direction = proposals[np.argmax(support(candidates, proposals, K, TOLERANCE_DEG).sum(axis=1))]
        for _ in range(3):
            inlier = support(candidates, direction[None], K, TOLERANCE_DEG)[0] > 0
            if inlier.sum() < 2:
                break
            weighted = candidates.length[inlier, None] * candidates.normal[inlier]
            direction = np.linalg.eigh(weighted.T @ candidates.normal[inlier])[1][:, 0]
        inlier = support(candidates, direction[None], K, TOLERANCE_DEG)[0] > 0
        if inlier.sum() < MIN_FAMILY_SEGMENTS or candidates.length[inlier].sum() < MIN_FAMILY_LENGTH * diagonal_px:
            break
        mask = np.zeros(len(segments), dtype=bool)
        mask[pool[inlier]] = True
        remaining &= ~mask
        # Pieces of one or two image lines meet anywhere along them (a wall's edge and its
        # foot): that is no vanishing point. Their segments are spent all the same.
        if _distinct_lines(segments.normal[mask]) >= MIN_FAMILY_SEGMENTS:
            found.append(mask)
    return found


@dataclass(frozen=True)
class _Family:
    """A vanishing point's segments: inlier mask (S,), length-squared-weighted scatter of
    their plane normals (3, 3), its own least-squares direction (3,); ``index``: the point's
    place in :func:`vanishing_points`' list."""

    index: int
    mask: np.ndarray
    scatter: np.ndarray
    direction: np.ndarray
    vertical: bool

    @property
    def weight(self) -> float:
        """Sum of squared segment lengths, px^2: a segment's direction is as precise as it is long."""
        return float(np.trace(self.scatter))

    def offset_deg(self, up: np.ndarray) -> float:
        """How far (degrees) this family's own direction is from where ``up`` wants it: on
        the up direction for the vertical family, on the horizon for a horizontal one."""
        along = min(1.0, abs(float(self.direction @ up)))
        return float(np.degrees(np.arccos(along) if self.vertical else np.arcsin(along)))

    def misfit(self, up: np.ndarray, horizon: np.ndarray) -> float:
        """Squared misfit of the segments if ``up`` (3,) is right; ``horizon``: (3, 2) basis
        of the directions perpendicular to it."""
        if self.vertical:
            return float(up @ self.scatter @ up)
        return float(np.linalg.eigvalsh(horizon.T @ self.scatter @ horizon)[0])


def up_from_vanishing_points(
    segments: Segments, points: list[np.ndarray], prior_up: np.ndarray, fitted: dict[tuple[int, ...], np.ndarray] | None = None
) -> LineUp | None:
    """The up direction the vanishing points (inlier masks, :func:`vanishing_points`) give.

    1. Families: a point within :data:`SEARCH_RADIUS_DEG` of ``prior_up`` (either way) may be
       the vertical one; one within that angle of the prior's horizon a horizontal one, unless
       its direction is within :data:`MIN_FAMILY_SEPARATION_DEG` of a stronger one's (the same
       family, split by noisy short segments).
    2. Consensus: each vertical family alone, and each pair of horizontal ones (unless a
       vertical family heavier than the pair's weaker one lies more than
       :data:`MAX_FLOOR_SLOPE_DEG` from its up), proposes an up; the proposal whose agreeing
       families (own direction within :data:`AGREEMENT_DEG`) weigh most wins (squared segment
       lengths). A few segments that only happen to meet (a wall's foot, a plank and a box
       edge) are outvoted.
    3. The up minimising the agreeing families' squared misfit (segment lengths L, plane
       normals n): a vertical family's ``sum L^2 (n . up)^2``, each horizontal family's least
       ``sum L^2 (n . d)^2`` over the directions d on the horizon. A family of short, nearly
       collinear segments fixes its own direction poorly and so pulls little; a faint pull
       to the prior fills directions nothing fixes (one horizontal family fixes one tilt).

    ``fitted``: the ups of step 3 so far, keyed by the agreeing families' indices in
    ``points``, used and filled where the families fix the up (a vertical one, or two
    horizontal ones): then the prior only starts step 3's search (its pull is a millionth of
    the lines'), so the same families give the same up for any nearby prior (a fixed
    camera's frames, each with its own people).
    """
    families = []
    for index, mask in enumerate(points):
        weighted = segments.length[mask, None] ** 2 * segments.normal[mask]
        scatter = weighted.T @ segments.normal[mask]
        direction = np.linalg.eigh(scatter)[1][:, 0]
        along = abs(direction @ prior_up)
        vertical = along > np.cos(np.radians(SEARCH_RADIUS_DEG))
        duplicate = any(
            not other.vertical and abs(direction @ other.direction) > np.cos(np.radians(MIN_FAMILY_SEPARATION_DEG))
            for other in families
        )
        if vertical or (along < np.sin(np.radians(SEARCH_RADIUS_DEG)) and not duplicate):
            families.append(_Family(index, mask, scatter, direction, bool(vertical)))
    if not families:
        return None
    proposals = [f.direction * np.sign(f.direction @ prior_up) for f in families if f.vertical]
    verticals = [f for f in families if f.vertical]
    horizontal = [f for f in families if not f.vertical]
    for i, first in enumerate(horizontal):
        for second in horizontal[i + 1 :]:
            if abs(first.direction @ second.direction) > np.cos(np.radians(MIN_PROPOSING_SEPARATION_DEG)):
                continue  # nearly parallel directions tilt their cross product wildly
            up = unit(np.cross(first.direction, second.direction))
            weaker = min(first.weight, second.weight)
            if any(f.weight > weaker and f.offset_deg(up) > MAX_FLOOR_SLOPE_DEG for f in verticals):
                continue  # a floor sloping more than a ground does against walls better seen than it
            proposals.append(up * np.sign(up @ prior_up))
    proposals = [up for up in proposals if up @ prior_up > np.cos(np.radians(SEARCH_RADIUS_DEG))] or [prior_up]
    start, agreeing = max(
        ((up, [f for f in families if f.offset_deg(up) <= AGREEMENT_DEG]) for up in proposals),
        key=lambda proposal: sum(f.weight for f in proposal[1]),
    )
    if not agreeing:  # a lone horizontal family, the prior its only proposal
        agreeing = [max(families, key=lambda f: f.weight)]

    vertical = [f for f in agreeing if f.vertical]
    horizontal = [f for f in agreeing if not f.vertical]
    determined = bool(vertical) or len(horizontal) >= 2
    key = tuple(sorted(f.index for f in agreeing))
    if fitted is None or key not in fitted:
        e1, e2 = _basis(prior_up)
        prior_weight = 1e-6 * sum(f.weight for f in agreeing)

        def misfit(tilt: np.ndarray) -> float:
            up = unit(prior_up + tilt[0] * e1 + tilt[1] * e2)
            horizon = np.stack(_basis(up), axis=1)
            return prior_weight * float(tilt @ tilt) + sum(f.misfit(up, horizon) for f in agreeing)

        start_tilt = np.array([start @ e1, start @ e2]) / (start @ prior_up)
        simplex = start_tilt + np.radians([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])  # a few degrees across
        options = dict(initial_simplex=simplex, xatol=1e-6, fatol=1e-12)
        tilt = minimize(misfit, start_tilt, method="Nelder-Mead", options=options).x
        up = unit(prior_up + tilt[0] * e1 + tilt[1] * e2)
        if fitted is not None and determined:  # where the lines leave a tilt free, it is the prior's
            fitted[key] = up
    else:
        up = fitted[key] * np.sign(fitted[key] @ prior_up)

    def members(of: list[_Family]) -> np.ndarray:
        """(S,) bool: the segments of any of these families."""
        return np.any([np.zeros(len(segments), dtype=bool), *(f.mask for f in of)], axis=0)

    in_vertical = members(vertical)
    return LineUp(
        up=up,
        vertical=segments.subset(in_vertical),
        others=segments.subset(~in_vertical),
        horizontal=segments.subset(members(horizontal)),
        determined=determined,
    )


def _distinct_lines(normals: np.ndarray) -> int:
    """How many different image lines segments with these plane normals (S, 3) lie on
    (normals within :data:`TOLERANCE_DEG` are one line)."""
    lines: list[np.ndarray] = []
    for normal in normals:
        if all(abs(normal @ line) < np.cos(np.radians(TOLERANCE_DEG)) for line in lines):
            lines.append(normal)
    return len(lines)


def _basis(up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors (3,) perpendicular to ``up`` (3,) and to each other."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    e1 = unit(np.cross(up, helper))
    return e1, np.cross(up, e1)
