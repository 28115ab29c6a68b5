"""People followed across the frames of a clip, and the one floor a fixed camera sees them on.

Arrays in, arrays out (camera frame, OpenCV axes, metres; pixels; seconds), so the pipeline
and the tests drive the same code:

- :class:`Tracker`: who is who from frame to frame. Online: each frame's people are assigned
  to the tracks alive by the Hungarian method (``scipy.optimize.linear_sum_assignment``) on the
  metric distance between each track's constant-velocity prediction and where each person
  stands on the floor (:func:`standing_positions`), a step along the line of sight counting
  less the farther they are (a monocular distance is read a few percent off from one frame to
  the next). A pair may match when that
  distance is inside a gate in metres that widens with the time since the track was last
  seen, or when their boxes overlap (IoU) enough: a person's distance read wrong in one frame
  moves them along their ray, not across the image, so the box still says who they are.
  People left over start new tracks; a track not seen for more than a second ends.
  Why this and not a learned tracker (appearance embeddings, ByteTrack-style cascades): a
  clip holds a few people to a few dozen, so one small assignment per frame is cheap; the
  people are placed in metres, so the gate is a walking distance (a person covers about
  1.5 m/s, whatever their size in the image), which no pixel gate can say at every depth; and
  it needs nothing beyond scipy.
- :func:`pooled_floor`: a fixed camera sees one floor for the whole clip; every frame's people
  place it again (``Recoverer.stand_on_floor``), and the robust medians of their camera
  heights and up directions pin it far better than one frame.
- :func:`onto_floor_scales`: how much each person is scaled about the camera so their feet
  stand on that floor.
- :func:`standing_positions`: where each person stands, what the tracker compares.
- :func:`smooth_positions`: a track's positions smoothed over time after the pass.
- :func:`floor_coordinates`: positions on the floor, in a right-handed frame under the camera.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.signal import savgol_filter

from metrichmsr.geometry import unit
from metrichmsr.scene._stats import weighted_median
from metrichmsr.scene.floor import KNOWN_HEIGHT_SOURCES, SHARED_FLOOR_BAND, FloorPlane, shared_floor_scales

#: A person may be matched to a track when they are within ``GATE_M + GATE_SPEED_MPS * dt``
#: metres of its constant-velocity prediction, ``dt`` seconds after it was last seen: the
#: position's own noise (people on a pooled floor 20-25 m away move 0.6 m between frames
#: 0.24 s apart, median, on PETS 2009: which foot is down, how the legs swing), plus how far a
#: walker strays from a straight line at constant speed in ``dt``.
GATE_M = 1.0
GATE_SPEED_MPS = 2.0
#: Along the line of sight a person's distance is read with about this relative error from one
#: frame to the next (a monocular reading; across it, the image pins them to a few cm): a
#: step along it counts for ``GATE_M / (GATE_M + RANGE_NOISE * range)`` of one across it.
RANGE_NOISE = 0.05
#: ... or when their box overlaps the track's last box by at least this (see the module doc).
IOU_GATE = 0.5
#: A track not seen for longer than this (seconds) ends; a person seen again later gets a new
#: id. BlazePose misses a person for a few frames at a time (small, blurred, behind someone
#: crossing): a second at a walk is inside the gate (``GATE_M + GATE_SPEED_MPS`` m). A count of
#: frames would wait 0.2 s at 25 frames/s and over a second on sparse stills.
MAX_UNSEEN_S = 1.0
#: Weight of the newest step in the track's velocity (exponential smoothing): one frame's
#: position noise would otherwise swing the prediction.
VELOCITY_WEIGHT = 0.5
#: Speeds above this (m/s) are position noise, not people: the velocity is clipped to it.
MAX_SPEED_MPS = 8.0
#: Length of the centred Savitzky-Golay window that smooths a track's positions, seconds. A
#: walker's speed and heading change over a second or more, which a quadratic over half a
#: second follows; centred, it lags nothing.
SMOOTHING_WINDOW_S = 0.5
_NO_MATCH = 1e9


def box_ious(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, B) intersection over union of boxes a (A, 4) and b (B, 4), [x0, y0, x1, y1] px."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)[:, None]
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)[None]
    inter = np.prod(np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None), axis=-1)
    area = lambda box: np.prod(np.clip(box[..., 2:] - box[..., :2], 0, None), axis=-1)  # noqa: E731
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def horizontal(points: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Points (..., 3) dropped along ``up`` (3,) onto the horizontal plane through the camera:
    where they stand, as far as distances between people go (the floor lies the camera's
    height below; the distances are the same)."""
    points = np.asarray(points, dtype=np.float64)
    up = unit(np.asarray(up, dtype=np.float64))
    return points - (points @ up)[..., None] * up


def standing_positions(
    translations: np.ndarray, boxes: np.ndarray, on_floor: np.ndarray, K: np.ndarray, floor: FloorPlane | None
) -> np.ndarray:
    """(N, 3) where N people stand, for :class:`Tracker` (camera frame, metres, on the
    horizontal plane through the camera: :func:`horizontal`).

    Someone standing on ``floor`` (``on_floor``) stands under their hip midpoint
    (``translations`` (N, 3)). For anyone else the body's distance is in doubt (read 30-60% too
    near, a part of a person): they stand where the ray through their box's bottom centre
    (``boxes`` (N, 4) px, intrinsics ``K`` (3, 3)) meets the floor, since a misread distance
    moves a body along its rays but leaves its box where it is. On PETS 2009 (people 15-35 m
    away, a quarter of them not on the floor) this kept 80% of the people seen in two
    consecutive frames on one track, against 66% from the bodies alone. Without a floor known
    for the clip (``floor`` None: none yet, or a moving camera) everyone stands under their
    hip midpoint, and the up direction is a level camera's.
    """
    translations = np.asarray(translations, dtype=np.float64).reshape(-1, 3)
    if floor is None:
        return horizontal(translations, np.array([0.0, -1.0, 0.0]))
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    pixels = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3], np.ones(len(boxes))], axis=1)
    rays = pixels @ np.linalg.inv(np.asarray(K, dtype=np.float64)).T  # (N, 3), z = 1
    on_rays = floor.ray_depth(rays)[:, None] * rays
    use_ray = ~np.asarray(on_floor, dtype=bool) & np.isfinite(on_rays).all(axis=1)  # a ray above the horizon misses it
    return horizontal(np.where(use_ray[:, None], on_rays, translations), floor.up)


@dataclass
class Track:
    """One person followed: position (3,) m and velocity (3,) m/s on the floor as last seen
    (camera frame), their box (4,) px, when (s), and how often seen."""

    id: int
    position: np.ndarray
    velocity: np.ndarray
    box: np.ndarray
    time_s: float
    hits: int = 1

    def predicted(self, time_s: float) -> np.ndarray:
        """(3,) where constant velocity puts the person at ``time_s``."""
        return self.position + self.velocity * (time_s - self.time_s)


@dataclass
class Tracker:
    """Online tracking by assignment (see the module doc); call :meth:`update` once per frame, in time order."""

    gate_m: float = GATE_M
    gate_speed_mps: float = GATE_SPEED_MPS
    iou_gate: float = IOU_GATE
    max_unseen_s: float = MAX_UNSEEN_S
    velocity_weight: float = VELOCITY_WEIGHT
    tracks: list[Track] = field(default_factory=list)  # alive
    next_id: int = 0

    def update(self, time_s: float, positions: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Assign a frame's N people to tracks.

        Args:
            time_s: the frame's time, seconds (not before the previous frame's).
            positions: (N, 3) where each person stands, camera frame, metres (:func:`horizontal`
                of their hip midpoints, or their floor contacts).
            boxes: (N, 4) their boxes [x0, y0, x1, y1] px.

        Returns:
            (N,) int track ids: an alive track's, or a new one's.
        """
        positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(positions) != len(boxes):
            raise ValueError(f"positions ({len(positions)}) and boxes ({len(boxes)}) must have one row per person")
        ids = np.full(len(positions), -1, dtype=np.int64)
        if self.tracks and len(positions):
            rows, cols, cost, near = self._assignment(time_s, positions, boxes)
            for t, d in zip(rows, cols):
                if cost[t, d] >= _NO_MATCH:
                    continue
                # Let in by its box alone, the person's position is the misread one: the track
                # goes on where it was heading.
                position = positions[d] if near[t, d] else self.tracks[t].predicted(time_s)
                self._seen(self.tracks[t], time_s, position, boxes[d])
                ids[d] = self.tracks[t].id
        self.tracks = [track for track in self.tracks if time_s - track.time_s <= self.max_unseen_s]
        for d in np.flatnonzero(ids < 0):
            track = Track(self.next_id, positions[d].copy(), np.zeros(3), boxes[d].copy(), float(time_s))
            self.tracks.append(track)
            ids[d] = track.id
            self.next_id += 1
        return ids

    def _assignment(self, time_s: float, positions: np.ndarray, boxes: np.ndarray):
        """Hungarian assignment of tracks (rows) to people (columns): the rows, the columns, the
        (T, N) cost and (T, N) bool, which pairs lie inside the metric gate."""
        predicted = np.stack([track.predicted(time_s) for track in self.tracks])  # (T, 3)
        offset = positions[None] - predicted[:, None]  # (T, N, 3) m
        range_m = np.maximum(np.linalg.norm(positions, axis=1), 1e-6)  # (N,) on the horizontal plane
        sight = positions / range_m[:, None]  # (N, 3) each person's horizontal line of sight
        along = np.einsum("tnk,nk->tn", offset, sight)
        across = offset - along[..., None] * sight[None]
        along_weight = self.gate_m / (self.gate_m + RANGE_NOISE * range_m)
        distance = np.sqrt(np.sum(across**2, axis=-1) + (along * along_weight) ** 2)  # (T, N) m, along-sight shrunk
        gate = self.gate_m + self.gate_speed_mps * np.array([time_s - track.time_s for track in self.tracks])
        iou = box_ious(np.stack([track.box for track in self.tracks]), boxes)
        near = distance <= gate[:, None]
        # Inside the metric gate the distance is the cost; a pair let in by its boxes alone
        # costs more than any pair inside the gate, so the distance decides first.
        cost = np.where(near, distance, np.where(iou >= self.iou_gate, gate[:, None] + 1.0 - iou, _NO_MATCH))
        rows, cols = linear_sum_assignment(cost)
        return rows, cols, cost, near

    def _seen(self, track: Track, time_s: float, position: np.ndarray, box: np.ndarray) -> None:
        dt = time_s - track.time_s
        if dt > 0:
            step = (position - track.position) / dt
            weight = 1.0 if track.hits == 1 else self.velocity_weight
            velocity = weight * step + (1 - weight) * track.velocity
            speed = float(np.linalg.norm(velocity))
            track.velocity = velocity * min(1.0, MAX_SPEED_MPS / speed) if speed > 0 else velocity
        track.position, track.box, track.time_s = position.copy(), box.copy(), float(time_s)
        track.hits += 1


def pooled_floor(floors: Sequence[FloorPlane], weights: Sequence[float] | None = None) -> FloorPlane | None:
    """The one floor a fixed camera sees, from the floors its frames placed (``FloorPlane``s).

    Its up direction is the weighted median of theirs, component by component, made unit; its
    camera height the weighted median of theirs. ``weights`` (one per floor, default 1): how
    many people placed each (a frame with eight people says more than one with one). Medians,
    not means: a frame where a child read as an adult, or one person alone, tilted or lowered
    the floor does not move it. ``height_source`` is ``"user"`` when every frame had the
    user's camera height, else ``"video"``; ``up_source`` what gave most frames' up.
    None without floors.
    """
    if not floors:
        return None
    w = np.ones(len(floors)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(w) != len(floors):
        raise ValueError(f"weights must have one value per floor ({len(floors)}), got {len(w)}")
    w = w if w.sum() > 0 else np.ones(len(floors))
    ups = np.stack([np.asarray(floor.up, dtype=np.float64) for floor in floors])
    up = unit(np.array([weighted_median(ups[:, k], w) for k in range(3)]))
    height = weighted_median(np.array([floor.camera_height_m for floor in floors]), w)
    from_lines = sum(wi for wi, floor in zip(w, floors) if floor.up_source == "lines")
    return FloorPlane(
        up=up,
        camera_height_m=float(height),
        up_source="lines" if from_lines > w.sum() / 2 else "people",
        height_source="user" if all(floor.height_source == "user" for floor in floors) else "video",
    )


def onto_floor_scales(floor: FloorPlane, contacts_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How much each person is scaled about the camera so their feet stand on ``floor`` (a
    pooled or known one), and who stands on it.

    ``scene.floor.shared_floor_scales`` toward a floor of known height, all the way (pull 1):
    over a clip the floor's height is known from every frame's people, far better than one
    person's distance. People whose feet are further off than its band (a step, a chair,
    another level) or unknown (NaN contacts: feet not seen) are left alone.

    Args:
        floor: a floor with ``height_source`` ``"user"`` or ``"video"``.
        contacts_m: (N, 3) camera-frame foot contacts along ``floor.up``, metres (NaN rows: unknown).

    Returns:
        ((N,) scale factors, 1 for those left alone; (N,) bool, who stands on the floor).
    """
    if floor.height_source not in KNOWN_HEIGHT_SOURCES:
        raise ValueError(f"onto_floor_scales needs a floor of known height, got one from {floor.height_source!r}")
    ratio = floor.below_ratio(np.asarray(contacts_m, dtype=np.float64).reshape(-1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        on_floor = np.abs(np.log(np.where(ratio > 0, ratio, np.nan))) <= np.log(SHARED_FLOOR_BAND)
    return shared_floor_scales(floor, contacts_m, pull=1.0), on_floor


def smooth_positions(
    times_s: np.ndarray, positions: np.ndarray, rate_hz: float, window_s: float = SMOOTHING_WINDOW_S
) -> np.ndarray:
    """One track's positions (M, 3) at ``times_s`` (M,) seconds, smoothed over time.

    A centred Savitzky-Golay filter over ``window_s`` (a local quadratic fit): a straight path
    at constant speed, and one that turns or speeds up smoothly, pass unchanged, while the
    frame-to-frame jitter of single-frame recovery (independent between frames) is averaged
    out. Centred, so it needs the frames after each one: run after the pass, not live.
    ``rate_hz`` is the rate of the processed frames; the track is cut where a frame is
    missing (a gap over 1.5 frames) and each run smoothed alone. A window under three frames
    (a clip sampled sparsely) smooths nothing; one of three is a centred 3-frame fit of a line.
    """
    times_s = np.asarray(times_s, dtype=np.float64).reshape(-1)
    positions = np.asarray(positions, dtype=np.float64)
    window = int(round(window_s * rate_hz)) | 1  # odd
    out = positions.copy()
    if window < 3:
        return out
    order = min(2, window - 2)
    cuts = np.flatnonzero(np.diff(times_s) > 1.5 / rate_hz) + 1
    for run in np.split(np.arange(len(times_s)), cuts):
        if len(run) >= window:
            out[run] = savgol_filter(positions[run], window, order, axis=0, mode="interp")
    return out


def floor_axes(floor: FloorPlane) -> tuple[np.ndarray, np.ndarray]:
    """(right, forward): unit (3,) camera-frame axes of the floor frame under the camera.

    ``forward`` is the optical axis made horizontal (``FloorPlane.forward``), ``right`` =
    ``forward x up``: with ``up`` they make a right-handed frame (x right, y forward, z up),
    its origin on the floor right below the camera.
    """
    forward = floor.forward
    return unit(np.cross(forward, np.asarray(floor.up, dtype=np.float64))), forward


def floor_coordinates(points: np.ndarray, floor: FloorPlane) -> np.ndarray:
    """(..., 2) floor coordinates (x right, y forward, metres; :func:`floor_axes`) of camera-frame
    points (..., 3) dropped onto the floor."""
    right, forward = floor_axes(floor)
    points = np.asarray(points, dtype=np.float64)
    return np.stack([points @ right, points @ forward], axis=-1)
