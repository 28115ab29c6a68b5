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
- :func:`relinked`: after the pass, which tracks are one person (a track that ends and one that
  starts a few seconds later where the first was heading, as tall, alike in :func:`appearances`).
- :func:`smooth_positions`: a track's positions smoothed over time after the pass (a
  constant-velocity Kalman filter and Rauch-Tung-Striebel smoother from ``filterpy``).
- :func:`smooth_poses`: a track's pose about its hips smoothed over time after the pass (a
  centred Gaussian over time, rotations brought back onto SO(3) with ``roma``).
- :func:`floor_coordinates`: positions on the floor, in a right-handed frame under the camera.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import roma
import torch
from filterpy.kalman import batch_filter, rts_smoother
from scipy.optimize import linear_sum_assignment

from metrichmsr.geometry import unit
from metrichmsr.scene._stats import weighted_median
from metrichmsr.scene.floor import KNOWN_HEIGHT_SOURCES, FloorPlane, shared_floor_scales, standing_on

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
#: The walker of :func:`smooth_positions`: white-noise acceleration, m^2/s^3. At 1 a walker
#: turning on a 3 m circle at 1.5 m/s is followed within 2 cm; on PETS 2009 (people 15-35 m
#: away) 0.3-10 leave the hip midpoint's jitter at 0.8-1.8 cm, from 12 cm unsmoothed, and on
#: synthetic clips the median position error moves by under 0.05 points (the depth's bias
#: dominates it).
ACCEL_NOISE = 1.0
#: A position is read this far off across the line of sight (metres; one standard deviation) ...
ACROSS_NOISE_M = 0.045
#: ... and this share of its range along it. Measured on PETS 2009 against a local line over
#: a second: 4.5 cm across and 12-14 cm along (0.5-0.7% of 15-35 m), hips and ankles alike.
ALONG_NOISE = 0.006
#: Standard deviation (seconds) of :func:`smooth_poses`'s centred Gaussian. Each frame's
#: BlazePose landmarks are read afresh, so the legs about the hips shake by a few cm from one
#: frame to the next; walking moves them at the stride's 1-2 Hz, which a Gaussian of 0.05 s
#: keeps to 95-82% of its swing (exp(-(2 pi f sigma)^2 / 2)), with no lag: it is centred.
POSE_SMOOTHING_S = 0.05
#: Once the clip has ended, a track may go on as one that starts up to this many seconds after
#: it ends (:func:`relinked`): people walk behind a post or one another, or are missed
#: between scans, for a few seconds ...
RELINK_GAP_S = 3.0
#: ... each heading on at the velocity of its last (first) this many seconds ...
RELINK_FIT_S = 1.0
#: ... their boxes as tall, in metres, within this ratio (a box is a person's visible part: a
#: leg hidden for a frame or two moves it by 10-20%) ...
RELINK_SIZE_RATIO = 1.3
#: ... and look alike (:func:`appearance_distance` at most this: on PETS 2009 a person a few
#: seconds apart in one track is 0.35 off, median, two people seen at once 0.58).
RELINK_LOOK_DISTANCE = 0.5
#: A track seen in fewer frames than this once the clip has ended (relinked) is dropped: a
#: detection that neither BlazePose's following nor a later scan found again, nor any other
#: track goes on from, is a phantom or a glimpse (on PETS 2009 a box drifted onto a cone, a
#: person seen once between scans).
MIN_TRACK_FRAMES = 3
#: ... and so is a fixed camera's track whose box stands under this tall (metres, median over
#: its frames) where it meets the floor: nobody on their feet, not even an infant (a 1-year-old
#: stands 0.75 m); on PETS 2009 a yellow coat on the lawn, 0.22-0.26 m, found at scan after scan.
MIN_BOX_HEIGHT_M = 0.4
#: Hue, saturation and value bins of :func:`appearances`.
APPEARANCE_BINS = (8, 3, 3)
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


def sight_distances(a: np.ndarray, b: np.ndarray, gate_m: float = GATE_M) -> np.ndarray:
    """(...) distances, metres, between positions ``a`` and ``b`` (..., 3) on the horizontal
    plane through the camera (broadcast), a step along ``b``'s line of sight counting
    ``gate_m / (gate_m + RANGE_NOISE * range)`` of one across it: a monocular distance is read
    a few percent off from one frame to the next, the image pins a person across it."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    offset = b - a
    range_m = np.maximum(np.linalg.norm(b, axis=-1), 1e-6)
    sight = b / range_m[..., None]
    along = np.sum(offset * sight, axis=-1)
    across = offset - along[..., None] * sight
    along_weight = gate_m / (gate_m + RANGE_NOISE * range_m)
    return np.sqrt(np.sum(across**2, axis=-1) + (along * along_weight) ** 2)


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
        distance = sight_distances(predicted[:, None], positions[None], self.gate_m)  # (T, N) m
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


def appearances(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, 2 * prod(:data:`APPEARANCE_BINS`)) what N people look like, for :func:`relinked`: a
    hue-saturation-value histogram of the middle half of each box's width, over the upper body
    (20-50% of its height) and over the legs (55-90%), each summing to 1 (zeros where the box
    holds no pixel). Cheap, and it tells a red jacket from a black coat and jeans from dark
    trousers, which is what sets apart people of one size walking close together.

    ``image``: (H, W, 3) uint8 RGB; ``boxes``: (N, 4) [x0, y0, x1, y1] px.
    """
    import cv2

    hsv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2HSV)
    height, width = hsv.shape[:2]
    size = int(np.prod(APPEARANCE_BINS))
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = np.zeros((len(boxes), 2 * size), dtype=np.float32)
    for n, (x0, y0, x1, y1) in enumerate(boxes):
        columns = slice(*np.clip(np.round([x0 + (x1 - x0) / 4, x1 - (x1 - x0) / 4]).astype(int), 0, width))
        for k, (top, bottom) in enumerate(((0.2, 0.5), (0.55, 0.9))):
            rows = slice(*np.clip(np.round([y0 + top * (y1 - y0), y0 + bottom * (y1 - y0)]).astype(int), 0, height))
            part = np.ascontiguousarray(hsv[rows, columns])
            if part.size:
                hist = cv2.calcHist([part], [0, 1, 2], None, list(APPEARANCE_BINS), [0, 180, 0, 256, 0, 256]).ravel()
                out[n, k * size : (k + 1) * size] = hist / hist.sum()
    return out


def appearance_distance(a: np.ndarray, b: np.ndarray) -> float:
    """How unalike two :func:`appearances` rows look, 0 (the same) to 1: the Bhattacharyya
    distance of the upper bodies' histograms and of the legs', averaged over the parts both
    show; 0 when they share none (nothing to tell them apart)."""
    size = int(np.prod(APPEARANCE_BINS))
    distances = []
    for k in range(2):
        p, q = a[k * size : (k + 1) * size], b[k * size : (k + 1) * size]
        if p.sum() > 0 and q.sum() > 0:
            distances.append(np.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(p * q))))))
    return float(np.mean(distances)) if distances else 0.0


@dataclass
class TrackSpan:
    """One track as :func:`relinked` sees it: its times (M,) seconds, increasing; where it
    stood (M, 3), metres (:func:`standing_positions`); and how tall its box stood there (M,),
    metres (box height px times range over focal length px: a person's size, whatever their
    distance); and, when known, what it looked like (M, D) (:func:`appearances`)."""

    times_s: np.ndarray
    positions: np.ndarray
    box_heights_m: np.ndarray
    looks: np.ndarray | None = None


def relinked(
    spans: Sequence[TrackSpan],
    max_gap_s: float = RELINK_GAP_S,
    gate_m: float = GATE_M,
    gate_speed_mps: float = GATE_SPEED_MPS,
) -> np.ndarray:
    """Which tracks are one person, once the clip has ended: (T,) int, for each of T tracks the
    index of the first track of its chain (its own when it goes on from none).

    The tracker lets a person go after :data:`MAX_UNSEEN_S`; behind a post or another walker,
    or missed between scans, they often come back later as a new track. A track that ends may
    go on as one that starts after it, at most ``max_gap_s`` later, when

    1. the two meet: each carried over half the gap at the velocity of its last (first)
       :data:`RELINK_FIT_S`, smoothed (:func:`smooth_positions`), they lie within
       ``gate_m + gate_speed_mps * gap`` of each other (:func:`sight_distances`: the tracker's
       gate over the same time). Someone leaving where someone else comes in heads the other
       way, so their paths do not meet;
    2. their boxes stand as tall (medians over those seconds, within :data:`RELINK_SIZE_RATIO`)
       and, where ``looks`` are known, they look alike (their mean :func:`appearances` within
       :data:`RELINK_LOOK_DISTANCE`): where people walk close together, the one who comes back
       is the one of that size and those colours.

    Each end goes on as at most one start and the other way round, the nearest pairs first
    (Hungarian); chains form through tracks linked at both ends.
    """
    count = len(spans)
    ends, starts = [], []  # per track: (time s, position (3,), velocity (3,), box height m, look or None)
    for span in spans:
        times_s, positions = np.asarray(span.times_s, dtype=np.float64), np.asarray(span.positions, dtype=np.float64)
        smoothed = smooth_positions(times_s, positions)
        for side, at in ((ends, -1), (starts, 0)):
            near = np.abs(times_s - times_s[at]) <= RELINK_FIT_S
            look = None if span.looks is None else np.asarray(span.looks, dtype=np.float64)[near].mean(axis=0)
            size_m = float(np.median(np.asarray(span.box_heights_m)[near]))
            side.append((times_s[at], smoothed[at], _heading(times_s[near], smoothed[near]), size_m, look))
    cost = np.full((count, count), _NO_MATCH)
    by_start = np.argsort([start[0] for start in starts], kind="stable")
    start_times_s = np.array([starts[b][0] for b in by_start])
    for a, (end_s, end, end_velocity, end_size_m, end_look) in enumerate(ends):
        window = slice(*np.searchsorted(start_times_s, [end_s, end_s + max_gap_s], side="right"))
        for b in by_start[window]:  # the starts after this end, within the gap: a long clip has thousands of tracks
            start_s, start, start_velocity, start_size_m, start_look = starts[b]
            gap_s = start_s - end_s
            as_tall = max(end_size_m, start_size_m) <= RELINK_SIZE_RATIO * min(end_size_m, start_size_m)
            alike = end_look is None or start_look is None or appearance_distance(end_look, start_look) <= RELINK_LOOK_DISTANCE
            if not (0 < gap_s <= max_gap_s and as_tall and alike):
                continue
            distance = sight_distances(end + end_velocity * gap_s / 2, start - start_velocity * gap_s / 2, gate_m)
            if distance <= gate_m + gate_speed_mps * gap_s:
                cost[a, b] = distance
    first = np.arange(count)
    if count:
        rows, cols = linear_sum_assignment(cost)
        follows = {int(a): int(b) for a, b in zip(rows, cols) if cost[a, b] < _NO_MATCH}
        for a in by_start:  # a track's chain is known before it goes on
            if a in follows:
                first[follows[a]] = first[a]
    return first


def _heading(times_s: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(3,) m/s, the least-squares velocity of positions (M, 3) at ``times_s`` (M,), clipped to
    :data:`MAX_SPEED_MPS`; zero from a single instant."""
    t = times_s - times_s.mean()
    if not np.any(t):
        return np.zeros(3)
    velocity = t @ (positions - positions.mean(axis=0)) / (t @ t)
    speed = float(np.linalg.norm(velocity))
    return velocity * min(1.0, MAX_SPEED_MPS / speed) if speed > 0 else velocity


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
    return shared_floor_scales(floor, contacts_m, pull=1.0), standing_on(floor, contacts_m)


def smooth_positions(
    times_s: np.ndarray,
    positions: np.ndarray,
    accel_noise: float = ACCEL_NOISE,
    across_noise_m: float = ACROSS_NOISE_M,
    along_noise: float = ALONG_NOISE,
) -> np.ndarray:
    """One track's positions (M, 3) at ``times_s`` (M,) seconds, smoothed over time.

    A constant-velocity Kalman filter run forward, then the Rauch-Tung-Striebel smoother
    backward (``filterpy.kalman``): each smoothed position draws on every frame before and
    after it, so it lags nothing, and a walk at constant velocity passes unchanged. The
    walker's acceleration is white noise of ``accel_noise`` m^2/s^3 (how fast a turn or a change
    of speed is followed). A position is read ``across_noise_m`` across the line of sight and
    ``along_noise`` times its range along it (a monocular distance; the camera is at the
    origin, so a position is its own line of sight), whichever is more. Frames the track
    misses are bridged by the motion model over the time between them, so the rate of the
    frames (a sparse clip, a gap) needs no window of frames. Centred, so it needs the frames
    after each one: run after the pass, not live.
    """
    times_s = np.asarray(times_s, dtype=np.float64).reshape(-1)
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    if len(times_s) != len(positions):
        raise ValueError(f"times_s ({len(times_s)}) and positions ({len(positions)}) must have one row per frame")
    if len(positions) < 2:
        return positions.copy()
    eye, zero = np.eye(3), np.zeros((3, 3))
    steps_s = np.diff(times_s, prepend=times_s[0])  # the first frame starts the filter: no step
    Fs = [np.block([[eye, dt * eye], [zero, eye]]) for dt in steps_s]
    Qs = [accel_noise * np.block([[dt**3 / 3 * eye, dt**2 / 2 * eye], [dt**2 / 2 * eye, dt * eye]]) for dt in steps_s]
    range_m = np.maximum(np.linalg.norm(positions, axis=1), 1e-6)
    sight = positions / range_m[:, None]
    along_var = np.maximum(along_noise * range_m, across_noise_m) ** 2 - across_noise_m**2
    Rs = across_noise_m**2 * eye + along_var[:, None, None] * np.einsum("mi,mj->mij", sight, sight)
    H = np.hstack([eye, zero])
    x0 = np.concatenate([positions[0], np.zeros(3)])[:, None]
    P0 = np.block([[Rs[0], zero], [zero, MAX_SPEED_MPS**2 * eye]])  # the first reading, at any speed
    means, covariances, _, _ = batch_filter(x0, P0, list(positions[:, :, None]), Fs, Qs, [H] * len(Fs), list(Rs))
    # The filter's Fs[k] leads into frame k, the smoother's out of it: one step on.
    smoothed, _, _, _ = rts_smoother(means, covariances, Fs[1:] + Fs[:1], Qs[1:] + Qs[:1])
    return smoothed[:, :3, 0]


def smooth_poses(
    times_s: np.ndarray,
    offsets_m: np.ndarray,
    rotations: np.ndarray | None = None,
    sigma_s: float = POSE_SMOOTHING_S,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One track's pose over time, smoothed by a centred Gaussian of ``sigma_s`` seconds.

    Args:
        times_s: (M,) the track's frame times, seconds, increasing; gaps are fine: each frame
            draws on the frames near it in time, not on its neighbours in the list.
        offsets_m: (M, J, 3) joints (or any points) relative to the hip midpoint, metres.
        rotations: optional (M, B, 3, 3) bone rotations, averaged with the same weights and
            brought back to the nearest rotation (``roma.special_procrustes``), so a mesh posed
            by them follows the smoothed joints.

    Returns:
        ((M, J, 3) smoothed offsets, (M, B, 3, 3) smoothed rotations or None).
    """
    times_s = np.asarray(times_s, dtype=np.float64).reshape(-1)
    offsets_m = np.asarray(offsets_m, dtype=np.float64)
    if offsets_m.shape[:1] != times_s.shape or offsets_m.ndim != 3:
        raise ValueError(f"offsets_m must be ({len(times_s)}, J, 3), got {offsets_m.shape}")
    if not sigma_s > 0:
        raise ValueError(f"sigma_s must be > 0, got {sigma_s}")
    weights = np.exp(-0.5 * ((times_s[:, None] - times_s[None, :]) / sigma_s) ** 2)
    weights /= weights.sum(axis=1, keepdims=True)
    offsets = np.einsum("mk,kjc->mjc", weights, offsets_m)
    if rotations is None:
        return offsets, None
    rotations = np.asarray(rotations, dtype=np.float64)
    mean = torch.from_numpy(np.einsum("mk,kbij->mbij", weights, rotations))
    return offsets, roma.special_procrustes(mean).numpy().astype(rotations.dtype)


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
