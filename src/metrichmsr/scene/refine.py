"""Human-anchored refinement: make any scene depth map agree with the recovered people.

The people are metric rulers standing in the scene (MetricHMSR's third idea). Their rendered
z-buffer on their visible pixels, and the floor under their feet, are *anchors*: pixels whose
metric depth is known (``scene.anchors``). So is the open floor, once the people have placed the floor plane
(``scene.floor``): the pixels where the depth map, under the people's scale, shows that
plane are anchors too. They run from near the camera to beyond the people, so even one
person and the floor tell a shift from a scale, which a person alone (all at one depth)
cannot. A monocular depth map ``d`` is corrected to ``s(u, v) d + t``:

1. **Global fit.** One scale ``s`` (and a shift ``t`` when the anchors span enough depth to
   tell the two apart), by iteratively reweighted least squares on the relative residual
   ``(s d + t - a) / a`` with Cauchy weights, so a badly fitted person or a wrong pixel
   counts little.
2. **Spatial fit.** Monocular errors drift across the image, so ``s`` becomes a smooth
   field (``t`` stays one value: with both free, what the anchors show of a drifting scale
   near them can be taken up by the shift instead, which then extrapolates wrong): values
   on a coarse grid of control nodes, bilinearly interpolated to the pixels, solved with
   ``t`` as one sparse linear least-squares problem: the anchors' relative residuals
   (with the global fit's robust weights), a thin-plate smoothness term (second differences,
   whose null space is the affine fields, so a linear drift costs nothing and extrapolates
   linearly) and a pull toward the global fit (which keeps nodes no anchor reaches
   determined).
3. **Held-out check.** The field is kept only if it predicts held-out anchors (whole people
   with their feet, or a quarter of the open floor) better than the global fit does; the
   smoothness and pull weights are chosen by the same check. It is tried with three people,
   or one and the open floor.

All depths are camera-frame z (OpenCV axes) in metres; images are (H, W); K is (3, 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from metrichmsr.geometry import rays_z1
from metrichmsr.scene._stats import weighted_median, weighted_quantiles
from metrichmsr.scene.anchors import Anchors, feet_to_floor_m
from metrichmsr.scene.floor import FloorPlane, camera_pitch_roll_deg

if TYPE_CHECKING:
    from metrichmsr.scene.depth import DepthEstimate

RefineMode = Literal["none", "global", "spatial"]

#: Cauchy scale of the relative residual: anchors off by much more than 5% count little.
ROBUST_SCALE = 0.05
#: Fit a shift only when the anchors' depths spread by at least this fraction of their median
#: (10th to 90th percentile); closer anchors cannot tell a shift from a scale.
MIN_SHIFT_SPREAD = 0.5
#: A shift and a spatial field need anchors from this many people (or fewer and the open
#: floor, below): with two, each person's own depth error (5-10% for recovered people) is
#: fitted exactly and amplified away from them.
MIN_PEOPLE_FOR_SHIFT_OR_FIELD = 3
#: The spatial field must beat the global fit on held-out anchors by this factor and margin.
SPATIAL_GAIN = 0.9
SPATIAL_MARGIN = 0.005
#: The field may not stray further than this factor from the global fit (safety far from anchors).
MAX_FIELD_RATIO = 2.0
#: Open-floor anchors (:func:`_floor_samples`): at most this many pixels, kept within these
#: relative distances of the plane in turn; the floor must be this share of the candidates
#: and this many pixels, spreading in depth by this much (a wall or a table top matches the
#: plane along one band of depths: 0.19 for a wall 1 m behind a person; the synthetic rooms'
#: floors spread by 0.34 or more in 95% of images). For the shift and the spatial field it
#: counts as two people: its depths run from the camera's feet to beyond the people, which
#: is what tells a shift from a scale, and it spreads across the image, which is what shows a
#: drifting scale. The field is then checked on it in four blocks (:func:`_folds`), so one
#: person and the floor cannot bend it toward that person's own error unseen.
FLOOR_SAMPLES = 4000
FLOOR_TOLERANCES = (0.25, 0.12)
MIN_FLOOR_SHARE = 0.1
MIN_FLOOR_SAMPLES = 200
MIN_FLOOR_SPREAD = 0.3
FLOOR_COUNTS_AS = 2
#: The open floor's scale is looked for this factor either side of the people's: a person 15%
#: off, in a depth map whose shift is a third of that person's distance, puts the floor's own
#: scale 1.3 times away from theirs.
FLOOR_SCALE_SEARCH = 1.35
#: The open floor's pixels share this weight in the fits (each person's share 2: body and feet).
FLOOR_WEIGHT = 1.0
#: Candidate (smoothness, pull) weights per person-group, tried on held-out anchors. The last
#: barely pulls toward the global fit, so a drift the anchors show goes on across the image
#: (the thin plate's null space: a plane) instead of fading back to the global scale.
_REGULARISATION = tuple((smooth, pull) for smooth in (0.03, 0.3, 3.0) for pull in (1e-3, 1e-1)) + ((3.0, 1e-5),)


# ---------------------------------------------------------------------------------------
# Fit
# ---------------------------------------------------------------------------------------


@dataclass
class DepthRefinement:
    """A depth map made to agree with the people.

    Attributes:
        depth_m: (H, W) float32 refined depth, metres (NaN where the input was, or where the
            correction would make it non-positive).
        mode: ``spatial`` (a scale field and one shift), ``global`` (one scale and shift) or
            ``none`` (too few anchors: the input unchanged).
        scale, shift_m: the global fit ``s d + t`` (also reported in spatial mode).
        residual_before_m, residual_after_m: weighted median |depth - anchor| over the
            anchors, metres, before and after.
        holdout_error_global, holdout_error_spatial: mean over held-out folds of the median
            relative error on the held-out anchors (None when not evaluated).
        scale_field, shift_field_m: (ny, nx) node values of the spatial fit, or None (the
            shift is one value, repeated on every node).
        feet_to_floor_m: median over the people of |:func:`feet_to_floor_m`| on the refined
            depth (feet height above the scene surface around them, metres); None without
            contacts or a floor.
        anchors: number of anchor pixels used (the open floor's included).
        floor_anchors: how many of them lie on the open floor (:func:`_floor_samples`).
    """

    depth_m: np.ndarray
    mode: RefineMode
    scale: float
    shift_m: float
    residual_before_m: float
    residual_after_m: float
    anchors: int
    holdout_error_global: float | None = None
    holdout_error_spatial: float | None = None
    scale_field: np.ndarray | None = field(default=None, repr=False)
    shift_field_m: np.ndarray | None = field(default=None, repr=False)
    feet_to_floor_m: float | None = None
    floor_anchors: int = 0

    def to_dict(self) -> dict:
        """JSON-ready summary (no arrays): what ``result.json``'s ``scene`` records."""
        out = {
            "mode": self.mode,
            "scale": _round(self.scale, 5),
            "shift_m": _round(self.shift_m, 4),
            "residual_before_m": _round(self.residual_before_m, 4),
            "residual_after_m": _round(self.residual_after_m, 4),
            "anchors": self.anchors,
            "floor_anchors": self.floor_anchors,
            "holdout_error_global": _round(self.holdout_error_global, 5),
            "holdout_error_spatial": _round(self.holdout_error_spatial, 5),
            "feet_to_floor_m": _round(self.feet_to_floor_m, 4),
        }
        if self.scale_field is not None:
            out["grid"] = list(self.scale_field.shape)
            out["scale_range"] = [_round(self.scale_field.min(), 5), _round(self.scale_field.max(), 5)]
            out["shift_range_m"] = [_round(self.shift_field_m.min(), 4), _round(self.shift_field_m.max(), 4)]
        return out


def refine_depth(
    depth_m: np.ndarray,
    anchors: Anchors,
    spatial: bool = True,
    fit_shift: bool | None = None,
    grid_nodes: int = 9,
    max_anchors: int = 20_000,
    min_anchors: int = 50,
    floor_reach: float | None = 2.0,
) -> DepthRefinement:
    """Calibrate a depth map against human anchors (see the module docstring).

    Args:
        depth_m: (H, W) depth to correct, metres or any unit proportional to them; NaN or
            non-positive = unknown.
        anchors: from ``scene.anchors.human_anchors``, same (H, W).
        spatial: try the spatially varying fit (with anchors from :data:`MIN_PEOPLE_FOR_SHIFT_OR_FIELD`
            people or more, the open floor counting as :data:`FLOOR_COUNTS_AS`; kept only if
            it wins on held-out people and blocks of floor).
        fit_shift: fit a shift as well as a scale; None decides from the anchors' depth
            spread (:data:`MIN_SHIFT_SPREAD`, the people's or the open floor's) and the number
            of people (:data:`MIN_PEOPLE_FOR_SHIFT_OR_FIELD`, the open floor counting as
            :data:`FLOOR_COUNTS_AS`).
        grid_nodes: control nodes along the image's longer side (the shorter side in proportion).
        max_anchors: anchors used at most (a seeded subsample keeps each person's weight).
        min_anchors: with fewer usable anchors nothing is fitted (mode ``none``).
        floor_reach: also anchor on the open floor the depth map shows, out to this many times
            the farthest foot contact's depth (:func:`_floor_samples`); None: only the people
            and the floor under their feet.
    """
    depth_m = np.asarray(depth_m, dtype=np.float32)
    if depth_m.shape != anchors.depth_m.shape:
        raise ValueError(f"depth_m must have the anchors' shape {anchors.depth_m.shape}, got {depth_m.shape}")
    height, width = depth_m.shape
    data = _anchor_samples(depth_m, anchors, max_anchors)
    before = weighted_median(np.abs(data.depth - data.target), data.weight) if len(data.target) else float("nan")
    if len(data.target) < min_anchors:
        refined = np.where(depth_m > 0, depth_m, np.nan).astype(np.float32)
        return DepthRefinement(
            refined, "none", 1.0, 0.0, before, before, len(data.target), feet_to_floor_m=_median_feet_to_floor(refined, anchors)
        )
    unit_m = float(np.median(data.target))  # shifts are solved in units of this, for conditioning
    people = len(np.unique(data.group))
    people_samples = data
    floor = _floor_samples(depth_m, anchors, data, floor_reach, unit_m) if floor_reach else None
    if floor is not None:
        data = _concat(data, floor)
    witnesses = people + (FLOOR_COUNTS_AS if floor is not None else 0)
    if fit_shift is None:
        fit_shift = witnesses >= MIN_PEOPLE_FOR_SHIFT_OR_FIELD and any(
            _spread(a) >= MIN_SHIFT_SPREAD for a in (data, floor) if a is not None
        )

    # 1. Global fit: the same solver on a single node.
    one_node = _Grid(1, 1, width, height)
    data.robust, global_nodes = _fit_global(data, one_node, fit_shift, unit_m)
    scale, shift_m = float(global_nodes[0]), float(global_nodes[-1] * unit_m) if fit_shift else 0.0

    # 2-3. Spatial fit, kept only where it beats the global fit on held-out anchors.
    mode: RefineMode = "global"
    holdout_global = holdout_spatial = None
    scale_field = shift_field = None
    scale_map, shift_map = scale, shift_m
    if spatial and witnesses >= MIN_PEOPLE_FOR_SHIFT_OR_FIELD:
        grid = _Grid.for_image(width, height, grid_nodes)
        folds = _folds(data, None if floor is None else int(floor.group[0]))
        fields = _FieldModel(data, grid, fit_shift, unit_m, folds)
        holdout_global, scores = _holdout_errors(_FieldModel(data, one_node, fit_shift, unit_m, folds), fields)
        best = int(np.argmin(scores))
        holdout_spatial = scores[best]
        if holdout_spatial < SPATIAL_GAIN * holdout_global - SPATIAL_MARGIN:
            mode = "spatial"
            nodes = fields.solve(_field_prior(global_nodes, grid), _REGULARISATION[best])
            scale_field = nodes[: grid.size].reshape(grid.shape)
            shift_map = float(nodes[grid.size]) * unit_m if fit_shift else 0.0  # one shift: nothing to upsample
            scale_map, shift_field = grid.upsample(scale_field), np.full(grid.shape, shift_map)
    with np.errstate(invalid="ignore"):
        refined = scale_map * depth_m + shift_map
    refined = np.where(refined > 0, refined, np.nan).astype(np.float32)

    rows, cols = people_samples.pixels  # the residuals compare like with like: the people's anchors
    after = weighted_median(np.abs(np.nan_to_num(refined[rows, cols], nan=np.inf) - people_samples.target), people_samples.weight)
    return DepthRefinement(
        refined,
        mode,
        scale,
        shift_m,
        before,
        after,
        len(data.target),
        holdout_global,
        holdout_spatial,
        scale_field,
        shift_field,
        _median_feet_to_floor(refined, anchors),
        0 if floor is None else len(floor.target),
    )


@dataclass
class _Samples:
    """Anchor pixels as flat arrays (M,): source depth, target depth, weight, group, pixel."""

    depth: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    group: np.ndarray
    pixels: tuple[np.ndarray, np.ndarray]  # (rows, cols)
    robust: np.ndarray | None = None  # IRLS weights of the global fit


def _anchor_samples(depth_m: np.ndarray, anchors: Anchors, max_anchors: int) -> _Samples:
    usable = (anchors.group >= 0) & (anchors.weight > 0) & np.isfinite(anchors.depth_m) & (anchors.depth_m > 0)
    usable &= np.isfinite(depth_m) & (depth_m > 0)
    rows, cols = np.nonzero(usable)
    if len(rows) > max_anchors:
        keep = np.sort(np.random.default_rng(0).choice(len(rows), max_anchors, replace=False))
        rows, cols = rows[keep], cols[keep]
    group = anchors.group[rows, cols]
    weight = anchors.weight[rows, cols].astype(np.float64)
    if len(rows) and usable.sum() > len(rows):
        # Subsampling must not change how much each person counts.
        full = np.bincount(anchors.group[usable], weights=anchors.weight[usable])
        kept = np.bincount(group, weights=weight, minlength=len(full))
        weight *= full[group] / kept[group]
    return _Samples(
        depth_m[rows, cols].astype(np.float64), anchors.depth_m[rows, cols].astype(np.float64), weight, group, (rows, cols)
    )


def _floor_samples(depth_m: np.ndarray, anchors: Anchors, people: _Samples, reach: float, unit_m: float) -> _Samples | None:
    """Anchors on the open floor: pixels whose depth, under the people's fit, is the floor plane's.

    Candidates are pixels off the people whose floor ray meets the plane within ``reach`` times
    the farthest foot contact's depth (beyond it a small error in the floor's tilt grows
    large). Which of them show the floor, and not a table or a wall in front of it, is decided
    from the depth map itself: from a starting scale, the pixels within each of
    :data:`FLOOR_TOLERANCES` of the plane are kept and scale and shift refitted on the people
    and them together. The start is the scale most candidates agree on
    (:func:`_commonest_scale`) within :data:`FLOOR_SCALE_SEARCH` of the people's median: a
    person a little off, or a shift in the depth map that moves a near person more than the
    floor, can put the people's own scale out of the first tolerance. None when the floor is
    not a large part of what the depth map shows (:data:`MIN_FLOOR_SHARE`), when what matches
    it spans little depth (:data:`MIN_FLOOR_SPREAD`), or without contacts.
    """
    contacts = anchors.contacts_m[np.isfinite(anchors.contacts_m).all(axis=1)]
    if anchors.floor is None or not len(contacts):
        return None
    rows, cols = np.nonzero(np.isfinite(depth_m) & (depth_m > 0) & ~anchors.on_people & (anchors.group < 0))
    rng = np.random.default_rng(1)
    picked = rng.choice(len(rows), min(len(rows), 4 * FLOOR_SAMPLES), replace=False)
    rows, cols = rows[picked], cols[picked]
    floor_m = anchors.floor.ray_depth(rays_z1(anchors.K, cols, rows))
    near = np.isfinite(floor_m) & (floor_m <= reach * float(np.max(contacts[:, 2])))
    picked = rng.permutation(np.flatnonzero(near))[:FLOOR_SAMPLES]
    rows, cols, floor_m = rows[picked], cols[picked], floor_m[picked]
    source_m = depth_m[rows, cols].astype(np.float64)
    one_node = _Grid(1, 1, *depth_m.shape[::-1])
    people_scale = weighted_median(people.target / people.depth, people.weight)
    scale, shift_m = _commonest_scale(floor_m / source_m, people_scale, FLOOR_SCALE_SEARCH, FLOOR_TOLERANCES[0]), 0.0
    group = int(people.group.max()) + 1
    for tolerance in FLOOR_TOLERANCES:
        on_floor = np.abs((scale * source_m + shift_m) / floor_m - 1) < tolerance
        count = int(on_floor.sum())
        if count < MIN_FLOOR_SHARE * len(floor_m) or count < MIN_FLOOR_SAMPLES:
            return None
        floor = _Samples(
            source_m[on_floor],
            floor_m[on_floor],
            np.full(count, FLOOR_WEIGHT / count),
            np.full(count, group),
            (rows[on_floor], cols[on_floor]),
        )
        _, nodes = _fit_global(_concat(people, floor), one_node, True, unit_m)
        scale, shift_m = float(nodes[0]), float(nodes[1] * unit_m)
    return floor if _spread(floor) >= MIN_FLOOR_SPREAD else None


def _field_prior(global_nodes: np.ndarray, grid: _Grid) -> np.ndarray:
    """The field's nodes (P,) that give the global fit ``[s, t / unit]``: ``s`` on every node, one ``t``."""
    return np.concatenate([np.repeat(global_nodes[:1], grid.size), global_nodes[1:]])


def _folds(data: _Samples, floor_group: int | None) -> np.ndarray:
    """(M,) held-out fold of each anchor: one per person, and the open floor's (group
    ``floor_group``) in four blocks, split at the median row and column of its pixels."""
    folds = np.unique(data.group, return_inverse=True)[1]
    if floor_group is None:
        return folds
    on_floor = data.group == floor_group
    rows, cols = data.pixels[0][on_floor], data.pixels[1][on_floor]
    block = (cols > np.median(cols)).astype(int) + 2 * (rows > np.median(rows))
    folds = folds.copy()
    folds[on_floor] = folds.max() + 1 + block
    return np.unique(folds, return_inverse=True)[1]


def _commonest_scale(scales: np.ndarray, around: float, search: float, tolerance: float) -> float:
    """The scale within ``search`` times ``around`` that the most of ``scales`` (M,) lie
    within ``tolerance`` (relative) of; ``around`` itself wins ties and when none lie there."""
    logs = np.sort(np.log(scales[np.isfinite(scales) & (scales > 0)]))
    centres = np.log(around) + np.linspace(-np.log(search), np.log(search), 41)
    half = np.log1p(tolerance)
    counts = np.searchsorted(logs, centres + half) - np.searchsorted(logs, centres - half)
    nearest_first = np.argsort(np.abs(centres - np.log(around)), kind="stable")
    return float(np.exp(centres[nearest_first[np.argmax(counts[nearest_first])]]))


def _spread(samples: _Samples) -> float:
    """How far the anchors' depths spread: (90th - 10th percentile) / median."""
    p10, p50, p90 = weighted_quantiles(samples.target, samples.weight, (0.1, 0.5, 0.9))
    return (p90 - p10) / p50


def _concat(first: _Samples, second: _Samples) -> _Samples:
    """The anchors of both (robust weights dropped: they are the global fit's, made afterwards)."""
    arrays = [
        np.concatenate([x, y])
        for x, y in zip(
            (first.depth, first.target, first.weight, first.group), (second.depth, second.target, second.weight, second.group)
        )
    ]
    return _Samples(*arrays, tuple(np.concatenate([x, y]) for x, y in zip(first.pixels, second.pixels)))


@dataclass(frozen=True)
class _Grid:
    """An (ny, nx) grid of control nodes spanning pixel centres 0..W-1, 0..H-1; bilinear in between."""

    nx: int
    ny: int
    width: int
    height: int

    @classmethod
    def for_image(cls, width: int, height: int, nodes_long_side: int) -> _Grid:
        long_side, short_side = max(width, height), min(width, height)
        short_nodes = max(2, round((nodes_long_side - 1) * (short_side - 1) / max(long_side - 1, 1)) + 1)
        nx, ny = (nodes_long_side, short_nodes) if width >= height else (short_nodes, nodes_long_side)
        return cls(nx, ny, width, height)

    @property
    def size(self) -> int:
        return self.nx * self.ny

    @property
    def shape(self) -> tuple[int, int]:
        return self.ny, self.nx

    def interpolation(self, rows: np.ndarray, cols: np.ndarray) -> sp.csr_matrix:
        """(M, nx ny) sparse bilinear weights of the nodes at pixels (rows, cols)."""
        (y0, fy), (x0, fx) = _cell(rows, self.height, self.ny), _cell(cols, self.width, self.nx)
        x1, y1 = np.minimum(x0 + 1, self.nx - 1), np.minimum(y0 + 1, self.ny - 1)
        corners = [(y0, x0, (1 - fy) * (1 - fx)), (y0, x1, (1 - fy) * fx), (y1, x0, fy * (1 - fx)), (y1, x1, fy * fx)]
        index = np.concatenate([y * self.nx + x for y, x, _ in corners])
        values = np.concatenate([w for _, _, w in corners])
        row = np.tile(np.arange(len(rows)), 4)
        return sp.csr_matrix((values, (row, index)), shape=(len(rows), self.size))

    def upsample(self, nodes: np.ndarray) -> np.ndarray:
        """(ny, nx) node values -> (H, W) float32 bilinear field.

        Separable: nodes to (ny, W) rows by a small matrix product, then each image row blends
        its two node rows elementwise (cheaper than an (H, ny) @ (ny, W) product here).
        """
        node_rows = nodes @ _interp_1d(self.width, self.nx).T  # (ny, W)
        lower, fraction = _cell(np.arange(self.height), self.height, self.ny)
        upper = np.minimum(lower + 1, self.ny - 1)
        fraction = fraction[:, None].astype(np.float32)
        return (1 - fraction) * node_rows[lower].astype(np.float32) + fraction * node_rows[upper].astype(np.float32)

    @cached_property
    def stiffness(self) -> np.ndarray:
        """(nx ny, nx ny) dense ``L^T L`` of the thin-plate operator (zero for a single node)."""
        if self.size == 1:
            return np.zeros((1, 1))
        operator = self.thin_plate()
        return (operator.T @ operator).toarray()

    def thin_plate(self) -> sp.csr_matrix:
        """Second differences along x, along y and mixed, one row each: (R, nx ny)."""
        dx2 = _second_difference(self.nx)
        dy2 = _second_difference(self.ny)
        dx1, dy1 = _first_difference(self.nx), _first_difference(self.ny)
        eye_x, eye_y = sp.identity(self.nx), sp.identity(self.ny)
        # Node (y, x) is column y nx + x, so kron(A_y, A_x) applies A_y along y and A_x along x.
        parts = [sp.kron(eye_y, dx2), sp.kron(dy2, eye_x), np.sqrt(2.0) * sp.kron(dy1, dx1)]
        return sp.vstack([p for p in parts if p.shape[0]]).tocsr()


def _cell(pixel: np.ndarray, n_pixels: int, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower node index and fraction toward the next, for pixel coordinates along one axis."""
    if n_nodes == 1:
        return np.zeros(len(pixel), int), np.zeros(len(pixel))
    position = pixel * (n_nodes - 1) / max(n_pixels - 1, 1)
    lower = np.minimum(np.floor(position).astype(int), n_nodes - 2)
    return lower, position - lower


def _interp_1d(n_pixels: int, n_nodes: int) -> np.ndarray:
    """(n_pixels, n_nodes) dense linear interpolation matrix."""
    lower, fraction = _cell(np.arange(n_pixels), n_pixels, n_nodes)
    matrix = np.zeros((n_pixels, n_nodes))
    matrix[np.arange(n_pixels), lower] += 1 - fraction
    matrix[np.arange(n_pixels), np.minimum(lower + 1, n_nodes - 1)] += fraction
    return matrix


def _first_difference(n: int) -> sp.csr_matrix:
    return sp.diags([-np.ones(n - 1), np.ones(n - 1)], [0, 1], shape=(n - 1, n)).tocsr()


def _second_difference(n: int) -> sp.csr_matrix:
    if n < 3:
        return sp.csr_matrix((0, n))
    return sp.diags([np.ones(n - 2), -2 * np.ones(n - 2), np.ones(n - 2)], [0, 1, 2], shape=(n - 2, n)).tocsr()


def _design(data: _Samples, grid: _Grid, fit_shift: bool, unit_m: float) -> sp.csr_matrix:
    """(M, P) sparse: the relative prediction ``(s(x) d + t) / a`` is ``design @ nodes``,
    nodes = [scale nodes, shift / unit_m]."""
    blocks = [sp.diags(data.depth / data.target) @ grid.interpolation(*data.pixels)]
    if fit_shift:
        blocks.append(sp.csr_matrix((unit_m / data.target)[:, None]))
    return sp.hstack(blocks).tocsr()


class _FieldModel:
    """Scale node values on one grid (and one shift) explaining the anchors: the design and,
    per held-out fold, the weighted normal equations of the relative residual, built once."""

    def __init__(self, data: _Samples, grid: _Grid, fit_shift: bool, unit_m: float, folds: np.ndarray):
        self.grid, self.folds = grid, folds
        self.design = _design(data, grid, fit_shift, unit_m)
        self.weight = data.weight * data.robust
        self.normal = []  # per fold: (A^T W A (P, P), A^T W 1 (P,)), dense
        for fold in range(int(folds.max()) + 1):
            part = self.design[folds == fold]
            weighted = sp.diags(self.weight[folds == fold]) @ part
            self.normal.append(((part.T @ weighted).toarray(), np.asarray(weighted.sum(axis=0)).ravel()))
        self.stiffness = scipy.linalg.block_diag(grid.stiffness, np.zeros((int(fit_shift),) * 2))  # the shift is one value

    def solve(self, prior: np.ndarray, regularisation: tuple[float, float], leave_out: int | None = None) -> np.ndarray:
        """Nodes (P,) minimising data + smooth |L x|^2 + pull |x - prior|^2, without fold ``leave_out``.

        Both weights count per unit of the data's own weight per node, so a candidate means the
        same for any number of people or anchors. On a grid, scale nodes are kept within
        MAX_FIELD_RATIO of the prior's scale (a guard against wild extrapolation).
        """
        used = [normal for fold, normal in enumerate(self.normal) if fold != leave_out]
        matrix = sum(m for m, _ in used)
        rhs = sum(r for _, r in used)
        data_weight = max(np.trace(matrix) / len(prior), 1e-12)
        smooth, pull = regularisation
        matrix = matrix + data_weight * (smooth * self.stiffness + pull * np.eye(len(prior)))
        rhs = rhs + data_weight * pull * prior
        # A small dense SPD system: LAPACK Cholesky through scipy (numpy's multithreaded
        # OpenBLAS was seen taking 100 ms for this size on a busy 2-core machine).
        nodes = scipy.linalg.solve(matrix, rhs, assume_a="pos", check_finite=False)
        n = self.grid.size
        if n > 1:
            nodes[:n] = np.clip(nodes[:n], prior[0] / MAX_FIELD_RATIO, prior[0] * MAX_FIELD_RATIO)
        return nodes

    def error(self, nodes: np.ndarray, fold: int) -> float:
        """Weighted median |relative residual| of fold ``fold``'s anchors under ``nodes``."""
        held = self.folds == fold
        return weighted_median(np.abs(self.design[held] @ nodes - 1.0), self.weight[held])


def _fit_global(data: _Samples, grid: _Grid, fit_shift: bool, unit_m: float, iterations: int = 8):
    """Robust (Cauchy IRLS) one-node fit; returns the robust weights (M,) and nodes [s, t/unit]."""
    design = _design(data, grid, fit_shift, unit_m).toarray()
    # Start from the weighted median ratio: a least-squares start could sit on an outlier.
    nodes = np.array([weighted_median(data.target / data.depth, data.weight)] + ([0.0] if fit_shift else []))
    robust = np.ones(len(data.target))
    for _ in range(iterations):
        residual = design @ nodes - 1.0
        robust = 1.0 / (1.0 + (residual / ROBUST_SCALE) ** 2)
        weighted = design * (data.weight * robust)[:, None]
        nodes = scipy.linalg.solve(design.T @ weighted, weighted.sum(axis=0), assume_a="pos", check_finite=False)
    return robust, nodes


def _holdout_errors(one_node: _FieldModel, fields: _FieldModel) -> tuple[float, list[float]]:
    """Held-out error of the global fit and of the field for each of _REGULARISATION: the mean
    over folds of the weighted median |relative residual| on a fold fitted without it (the
    global fit the field is pulled toward is refitted without it too)."""
    global_errors, field_errors = [], []
    for fold in range(len(fields.normal)):
        if not (fields.folds == fold).any():
            continue
        global_nodes = one_node.solve(np.zeros(len(one_node.normal[0][1])), (0.0, 0.0), leave_out=fold)
        global_errors.append(one_node.error(global_nodes, fold))
        prior = _field_prior(global_nodes, fields.grid)
        field_errors.append([fields.error(fields.solve(prior, reg, leave_out=fold), fold) for reg in _REGULARISATION])
    return float(np.mean(global_errors)), list(np.mean(field_errors, axis=0))


# ---------------------------------------------------------------------------------------
# Feet on the floor, the summary
# ---------------------------------------------------------------------------------------


def _median_feet_to_floor(depth_m: np.ndarray, anchors: Anchors) -> float | None:
    """Median |feet_to_floor_m| over the people, or None without contacts or a floor."""
    if not len(anchors.contacts_m) or anchors.floor is None:
        return None
    distances = feet_to_floor_m(depth_m, anchors.K, anchors.contacts_m, anchors.floor.up, anchors.on_people)
    return float(np.nanmedian(np.abs(distances))) if np.isfinite(distances).any() else None


def scene_summary(estimate: DepthEstimate | None, refinement: DepthRefinement | None, floor: FloorPlane | None) -> dict:
    """The ``scene`` record of ``result.json``: backend, refinement and floor (JSON-ready)."""
    out: dict = {"backend": estimate.backend if estimate is not None else "none"}
    if refinement is not None:
        out["refinement"] = refinement.to_dict()
    if floor is not None:
        pitch_deg, roll_deg = camera_pitch_roll_deg(floor.up)
        out["floor"] = {**floor.to_dict(), "camera_pitch_deg": round(pitch_deg, 2), "camera_roll_deg": round(roll_deg, 2)}
    return out


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), digits)
