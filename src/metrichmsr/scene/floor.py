"""The floor plane in the camera frame (OpenCV axes, metres)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metrichmsr.geometry import image_rays_z1, unit
from metrichmsr.joints import ANKLES, HIPS, JOINT_NAMES, SHOULDERS
from metrichmsr.scene._stats import weighted_median


@dataclass(frozen=True)
class FloorPlane:
    """A horizontal floor seen from the camera.

    Floor points X (camera frame, metres) satisfy ``up @ X == -camera_height_m``.

    Attributes:
        up: (3,) unit vector against gravity, camera frame (a level camera has (0, -1, 0)).
        camera_height_m: height of the camera centre above the floor, metres (> 0).
        up_source: what gave ``up``: ``"people"`` (their bodies and feet) or ``"lines"`` (the
            image's vanishing points, ``scene.horizon``).
        height_source: what gave ``camera_height_m``: ``"people"`` (their feet), ``"user"``
            (the camera's known height, ``recover --camera-height``) or ``"video"`` (the people
            of every frame of a fixed camera's clip, ``tracking.pooled_floor``).
        wall_distance_m: how far ahead (metres along :attr:`forward`) vertical lines stand on
            the floor behind the people, where a far wall or building begins
            (``scene.horizon.wall_distance_m``); None when unknown.
        floor_seen_m: how far ahead (metres along :attr:`forward`) the floor's own lines
            are seen behind the people, so the floor reaches at least that far
            (``scene.horizon.floor_seen_m``); None when unknown.
    """

    up: np.ndarray
    camera_height_m: float
    up_source: str = "people"
    wall_distance_m: float | None = None
    height_source: str = "people"
    floor_seen_m: float | None = None

    @classmethod
    def level(cls, camera_height_m: float) -> "FloorPlane":
        """The floor under a level camera (no pitch, no roll)."""
        return cls(np.array([0.0, -1.0, 0.0]), float(camera_height_m))

    @property
    def forward(self) -> np.ndarray:
        """(3,) unit: the camera's optical axis (0, 0, 1) made horizontal (its component
        along ``up`` removed). Undefined (NaN) for a camera looking straight up or down."""
        up = np.asarray(self.up, dtype=np.float64)
        return unit(np.array([0.0, 0.0, 1.0]) - up[2] * up)

    def height_above(self, points: np.ndarray) -> np.ndarray:
        """Signed height (...,) metres of camera-frame points (..., 3) above the floor."""
        return np.asarray(points) @ np.asarray(self.up) + self.camera_height_m

    def depth_map(self, K: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """(H, W) float32 depth (z, metres) of the floor at each pixel centre; inf where a ray misses it.

        size: (W, H) pixels.
        """
        return self.ray_depth(image_rays_z1(K, size)).astype(np.float32)

    def ray_depth(self, rays: np.ndarray) -> np.ndarray:
        """(...) float64 depth (z, metres) where camera rays (..., 3) with z = 1 meet the floor; inf where they miss it."""
        down = -(np.asarray(rays) @ np.asarray(self.up, dtype=np.float64))  # how fast each ray descends per metre of depth
        with np.errstate(divide="ignore"):
            return np.where(down > 1e-9, self.camera_height_m / down, np.inf)

    def below_ratio(self, points: np.ndarray) -> np.ndarray:
        """(...) how far camera-frame points (..., 3) lie below the camera, in camera heights
        (1 on the floor, more below it; NaN for NaN points)."""
        return -(np.asarray(points, dtype=np.float64) @ np.asarray(self.up, dtype=np.float64)) / self.camera_height_m

    def to_dict(self) -> dict:
        return {
            "up": [round(float(v), 6) for v in self.up],
            "camera_height_m": round(float(self.camera_height_m), 4),
            "up_source": self.up_source,
            "camera_height_source": self.height_source,
            "wall_distance_m": _rounded(self.wall_distance_m),
            "floor_seen_m": _rounded(self.floor_seen_m),
        }


def _rounded(metres: float | None) -> float | None:
    return None if metres is None else round(float(metres), 3)


# ---------------------------------------------------------------------------------------
# The floor from the recovered people
# ---------------------------------------------------------------------------------------

_J = {name: i for i, name in enumerate(JOINT_NAMES)}
#: Foot joints and how far each sits above the sole of a standing Anny body, metres (mean over
#: 64 bodies of Anny's population prior, standing in the rest pose; spread 2-12 mm).
_FOOT_JOINTS = np.array(
    [_J[f"{side}_{part}"] for part in ("ankle", "big_toe", "small_toe", "heel") for side in ("left", "right")]
)
_FOOT_ABOVE_SOLE_M = np.repeat([0.092, 0.019, 0.017, 0.036], 2)

#: A person whose body axis leans further than this from the others' is not used for the up
#: direction (lying, bending, badly fitted).
MAX_LEAN_DEG = 25.0


def body_up_directions(joints: np.ndarray) -> np.ndarray:
    """Per-person up direction: the mean of the leg (ankles -> hips) and trunk (hips -> shoulders) directions.

    joints: (N, 23, 3) camera frame, metres, JOINT_NAMES order -> (N, 3) unit vectors
    (NaN rows for people whose joints are not finite or collapse to a point).
    """
    joints = np.asarray(joints, dtype=np.float64)
    ankle, hip, shoulder = (joints[:, idx].mean(axis=1) for idx in (ANKLES, HIPS, SHOULDERS))
    # Two unit directions, not one long one: a bent knee or a slouch tilts only half of it.
    up = unit(unit(hip - ankle) + unit(shoulder - hip))
    return up


def foot_contacts(joints: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Where each person touches the floor: under their lowest foot joint, at sole level.

    joints: (N, 23, 3) camera frame, metres; up: (3,) unit vector against gravity.
    Returns (N, 3) camera-frame points, metres: the foot joint whose sole estimate
    (joint height along ``up`` minus its height above the sole) is lowest, moved down to it.
    """
    feet = np.asarray(joints, dtype=np.float64)[:, _FOOT_JOINTS]  # (N, 8, 3)
    sole_height = feet @ up - _FOOT_ABOVE_SOLE_M  # (N, 8)
    lowest = np.argmin(np.where(np.isfinite(sole_height), sole_height, np.inf), axis=1)
    rows = np.arange(len(feet))
    return feet[rows, lowest] - np.outer(_FOOT_ABOVE_SOLE_M[lowest], up)


def floor_from_people(
    joints: np.ndarray,
    ups: np.ndarray | None = None,
    feet_seen: np.ndarray | None = None,
    contact_noise_m: float = 0.03,
    depth_noise: float = 0.0,
    up_noise_deg: float = 5.0,
    scene_up: np.ndarray | None = None,
    scene_up_noise_deg: float = 0.5,
    iterations: int = 3,
) -> FloorPlane | None:
    """The floor the recovered people stand on.

    1. Up: the mean of the people's up directions (``ups``, else :func:`body_up_directions`)
       over the largest group within :data:`MAX_LEAN_DEG` of one another; the others (lying,
       bending, badly fitted) are left out. When no two agree, the mean of all, and then those
       within that angle of it. With ``scene_up`` (the image's own, e.g. from its vanishing
       points) that is the up instead, and the people within that angle of it stand.
    2. Contacts: the lowest sole point along that up (:func:`foot_contacts`) of each of them.
       Only people whose feet were seen (``feet_seen``) take part, unless nobody's were: a
       contact under a body cut off at the knees is a guess.
    3. Normal: the unit ``n`` minimising ``sum_i w_i (n . (c_i - c_mean))^2 + lam (1 - (n . up)^2)``,
       i.e. the plane through the contacts, pulled toward the mean up with
       ``lam = N (sigma / up_noise)^2`` (``(sigma / scene_up_noise)^2`` with a scene up): one
       person gives their up; two fix the tilt along the line through their feet; three or
       more spread out fit the full normal. The contacts
       are reweighted (Huber on the height residual) so a person on a step or a chair counts
       less.
    4. Height: the weighted median of the contacts' heights below the camera.

    ``sigma``, the error of one contact's height, is ``contact_noise_m`` plus (in quadrature)
    ``depth_noise`` times the camera height: a person placed a fraction ``e`` too far has
    their feet moved along the ray, ``e`` times the camera height too low.

    Args:
        joints: (N, 23, 3) posed joints, camera frame, metres, JOINT_NAMES order.
        ups: optional (N, 3) unit up directions of the people's bodies, camera frame (e.g.
            :func:`metrichmsr.body.up_directions` of their global rotations).
        feet_seen: optional (N,) bool, whose feet the detector saw (default: everybody's).
        contact_noise_m: error of one contact height from the body's pose, metres.
        depth_noise: relative error of the people's distances (0 for true bodies; ~0.1 for
            bodies recovered from one photo).
        up_noise_deg: expected error of one person's up direction, degrees.
        scene_up: optional (3,) up direction of the scene (``scene.horizon.up_from_lines``).
        scene_up_noise_deg: its expected error, degrees.

    Returns:
        The floor, or None when no person is usable or the fit puts the camera on or below it.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (len(JOINT_NAMES), 3):
        raise ValueError(f"joints must be (N, {len(JOINT_NAMES)}, 3), got shape {joints.shape}")
    ups = body_up_directions(joints) if ups is None else unit(np.asarray(ups, dtype=np.float64).reshape(-1, 3))
    feet_seen = np.ones(len(joints), bool) if feet_seen is None else np.asarray(feet_seen, dtype=bool).reshape(-1)
    if len(ups) != len(joints) or len(feet_seen) != len(joints):
        raise ValueError(f"ups and feet_seen must have one row per person ({len(joints)})")
    usable = np.all(np.isfinite(ups), axis=1) & np.any(np.isfinite(joints[:, _FOOT_JOINTS]).all(-1), axis=1)
    usable &= placing_people(usable & feet_seen)
    if not usable.any():
        return None
    ups, joints = ups[usable], joints[usable]
    if scene_up is None:
        mean_up = _consensus_up(ups)
        standing = ups @ mean_up > np.cos(np.radians(MAX_LEAN_DEG))
        if not standing.any():
            return None
        mean_up = unit(ups[standing].sum(axis=0))
        up_prior_noise = np.radians(up_noise_deg) / np.sqrt(standing.sum())
    else:
        mean_up = unit(np.asarray(scene_up, dtype=np.float64).reshape(3))
        standing = ups @ mean_up > np.cos(np.radians(MAX_LEAN_DEG))
        standing = standing if standing.any() else np.ones_like(standing)  # sitting or crouching: feet still down
        up_prior_noise = np.radians(scene_up_noise_deg)

    contacts = foot_contacts(joints[standing], mean_up)
    drop_m = float(np.median(-(contacts @ mean_up)))
    sigma_m = float(np.hypot(contact_noise_m, depth_noise * max(drop_m, 0.0)))
    lam = (sigma_m / up_prior_noise) ** 2
    weights = np.ones(len(contacts))
    up = mean_up
    for _ in range(iterations):
        centre = np.average(contacts, axis=0, weights=weights)
        spread = (weights[:, None] * (contacts - centre)).T @ (contacts - centre)
        _, vectors = np.linalg.eigh(spread + lam * (np.eye(3) - np.outer(mean_up, mean_up)))
        up = vectors[:, 0] * np.sign(vectors[:, 0] @ mean_up)  # the smallest eigenvalue's vector
        heights = -(contacts @ up)  # each contact's depth below the camera centre
        camera_height_m = weighted_median(heights, weights)
        residual = np.abs(heights - camera_height_m)
        weights = np.minimum(1.0, sigma_m / np.maximum(residual, 1e-9))
    if not camera_height_m > 0:
        return None
    return FloorPlane(up=up, camera_height_m=float(camera_height_m), up_source="people" if scene_up is None else "lines")


def _consensus_up(ups: np.ndarray) -> np.ndarray:
    """(3,) the mean up (N, 3) of the largest group of people within :data:`MAX_LEAN_DEG` of
    one another. The person the most others agree with picks the group: a plain mean first
    would let one lying person push upright ones out."""
    agree = ups @ ups.T > np.cos(np.radians(MAX_LEAN_DEG))
    reference = np.argmax(agree.sum(axis=1) + 1e-3 * (ups @ ups.T).sum(axis=1))
    # Nobody agreeing with anybody (crouching, bending people) singles no one out: average all.
    return unit(ups[agree[reference]].sum(axis=0) if agree[reference].sum() > 1 else ups.sum(axis=0))


def placing_people(feet_seen: np.ndarray) -> np.ndarray:
    """(N,) bool: who places the floor: the people whose feet were seen, or everybody when
    nobody's were. A body cut off at the knees (or a false detection) gives a guessed contact
    and, measured on the benchmark, a worse up direction too."""
    feet_seen = np.asarray(feet_seen, dtype=bool)
    return feet_seen if feet_seen.any() else np.ones_like(feet_seen)


#: Feet this many times further below the camera than the floor are sunk into it: the body
#: is nearer and smaller than recovered (:func:`sunken_scales`). Physically anything past 1 is
#: impossible; the margin covers the people's own distance errors (on the held-out renders
#: no adult was moved at 1.5, several were at 1.2-1.35, children mostly at 1.6-2.2).
MAX_SUNKEN_RATIO = 1.5
#: Feet further down than this many times the camera height stand on another level (a street
#: seen from a terrace, the foot of a stair) or on nothing a child explains: an adult
#: (1.7-1.9 m) is about 2.2 times as tall as a toddler who can stand (0.8 m), and the
#: held-out children sank by 1.5-2.2 (:func:`sunken_scales` leaves them be).
LOWER_LEVEL_RATIO = 2.5


#: Who is a child read as an adult further away, or an adult read as a child nearby, is
#: decided against a floor at least this share of the people placing it stand on (their feet
#: within ``SHARED_FLOOR_BAND``). A floor most of them miss was placed wrong (a pair of line
#: families taken for horizontal that are not, a tilted consensus of bodies): on 7 of PETS's
#: 67 stills it put 1-3 of 5-6 adults' feet 1.5-2.2 times too far below it, and they were
#: shrunk into children.
MIN_STANDING_SHARE = 0.5


def standing_on(floor: FloorPlane, contacts_m: np.ndarray) -> np.ndarray:
    """(N,) bool: whose contacts (N, 3) (camera frame, metres; NaN rows: unknown, False) lie
    within ``SHARED_FLOOR_BAND`` of the floor's depth below the camera, either way."""
    ratio = floor.below_ratio(np.asarray(contacts_m, dtype=np.float64).reshape(-1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(np.log(np.where(ratio > 0, ratio, np.nan))) <= np.log(SHARED_FLOOR_BAND)


def stood_on(floor: FloorPlane, contacts_m: np.ndarray) -> bool:
    """Whether at least :data:`MIN_STANDING_SHARE` of the people with a known contact (N, 3)
    (camera frame, metres; NaN rows: not placing the floor) stand on ``floor`` (:func:`standing_on`)."""
    known = np.isfinite(floor.below_ratio(contacts_m))
    return bool(standing_on(floor, contacts_m).sum() >= MIN_STANDING_SHARE * known.sum())


def sunken_scales(
    floor: FloorPlane, contacts_m: np.ndarray, max_ratio: float = MAX_SUNKEN_RATIO, lower_level_ratio: float = LOWER_LEVEL_RATIO
) -> np.ndarray:
    """How much nearer each person must be for their feet to meet the floor, where they sink.

    One image cannot tell a child nearby from an adult further away: the two project alike,
    and a network reading keypoints leans toward the commoner adult. The floor the others
    stand on can: the far adult's feet would lie below it. A person's contact ``c`` lies
    ``-up . c`` below the camera; when that is more than ``max_ratio`` times the camera
    height, the person is scaled about the camera by ``camera_height / (-up . c)``, which
    puts the contact on the floor and leaves the image unchanged.
    People whose feet are above the floor are left alone (a step, a chair, a jump), and so
    are those further down than ``lower_level_ratio`` times the camera height (another level),
    and everyone where fewer than half stand on the floor (:func:`stood_on`).

    Args:
        floor: the floor, placed by the people (:func:`floor_from_people`).
        contacts_m: (N, 3) camera-frame foot contacts, metres (NaN rows: not known).

    Returns:
        (N,) factors in (0, 1] (1 for people left where they are).
    """
    ratio = floor.below_ratio(contacts_m)
    if not stood_on(floor, contacts_m):
        return np.ones(len(ratio))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isfinite(ratio) & (ratio > max_ratio) & (ratio <= lower_level_ratio), 1.0 / ratio, 1.0)


#: The tallest standing height (metres) a person brought onto the floor from above may reach
#: (:func:`floating_scales`): beyond it what floats is no person read as too small (a box over
#: two walkers, a jump), and it is left where it is.
MAX_STANDING_HEIGHT_M = 2.1


def floating_scales(
    floor: FloorPlane, contacts_m: np.ndarray, heights_m: np.ndarray, max_ratio: float = MAX_SUNKEN_RATIO
) -> np.ndarray:
    """How much farther each person must be for their feet to meet the floor, where they float above it.

    The mirror of :func:`sunken_scales`: an adult far away read as a child nearby stands in
    the air. A person whose contact lies less than ``1 / max_ratio`` of the camera's height
    below the camera (feet more than a third of it above the floor; a jump or a chair is
    less) is scaled about the camera by ``camera_height / (-up . c)``, which puts the
    contact on the floor and leaves the image unchanged, unless that makes them taller than
    :data:`MAX_STANDING_HEIGHT_M`. Feet at or above the camera's height are left alone, and
    so is everyone where fewer than half stand on the floor (:func:`stood_on`).

    Args:
        floor: the floor, placed by the people (:func:`floor_from_people`) or of known height.
        contacts_m: (N, 3) camera-frame foot contacts, metres (NaN rows: not known).
        heights_m: (N,) the people's standing heights, metres.

    Returns:
        (N,) factors >= 1 (1 for people left where they are).
    """
    ratio = floor.below_ratio(contacts_m)
    if not stood_on(floor, contacts_m):
        return np.ones(len(ratio))
    with np.errstate(invalid="ignore", divide="ignore"):
        scales = np.where(np.isfinite(ratio) & (ratio > 0) & (ratio < 1.0 / max_ratio), 1.0 / ratio, 1.0)
    return np.where(np.asarray(heights_m) * scales <= MAX_STANDING_HEIGHT_M, scales, 1.0)


#: People whose feet lie within this factor of the floor's depth below the camera (either
#: way) stand on the floor they share (:func:`shared_floor_scales`); further off, on a step,
#: a chair or another level, or sunk (:func:`sunken_scales`). A floor of known height is no
#: consensus an outlier could drag: everyone between the floating and the sunk
#: (:data:`MAX_SUNKEN_RATIO` either way) is brought toward it, so nobody is left in between.
SHARED_FLOOR_BAND = 1.25
#: ``FloorPlane.height_source`` values of a floor whose height is known, not placed by the
#: people it is then used on: the user's camera height, or one pooled over a clip's frames.
KNOWN_HEIGHT_SOURCES = ("user", "video")
#: One recovered person's distance error, relative (the median on the renders), and one foot
#: contact's height error, metres: how far each person is moved toward the shared floor
#: (:func:`shared_floor_pull`).
RECOVERED_DISTANCE_ERROR = 0.05
CONTACT_ERROR_M = 0.03
#: Moves smaller than this (log factor) are left out: below what one photo can tell.
MIN_SHARED_FLOOR_MOVE = 0.01


def shared_floor_pull(camera_height_m: float) -> float:
    """How far each person is moved toward the floor they share, as a fraction of their log
    distance from it: ``s^2 / (s^2 + c^2)``, the weight of the feet against the body when
    ``s`` (:data:`RECOVERED_DISTANCE_ERROR`) is the body's relative error and ``c`` the
    contact's, :data:`CONTACT_ERROR_M` over the camera's height. 0.8 at 1.2 m (what both
    benches found best at a fixed pull before, 0.7-0.8); a camera high above the floor sees
    the feet's depth far better than a body's size tells it (0.99 at 7 m)."""
    contact = CONTACT_ERROR_M / camera_height_m
    return RECOVERED_DISTANCE_ERROR**2 / (RECOVERED_DISTANCE_ERROR**2 + contact**2)


def shared_floor_scales(
    floor: FloorPlane, contacts_m: np.ndarray, band: float | None = None, pull: float | None = None
) -> np.ndarray:
    """How much farther (> 1) or nearer (< 1) each person stands on the floor they share with the others.

    Each recovered person's distance, and with it their height, is off by a few percent, and
    not the same way for everybody. People standing on one floor must have their feet at one
    depth below the camera, so the feet say how each is off against the others: a person
    read 6% too far has feet 6% too low. Everyone whose contact ``c`` lies within ``band``
    of the floor (``r = -up . c / camera_height`` in ``[1/band, band]``) takes part, with at
    least two of them; each is scaled about the camera, which leaves the image unchanged, by
    ``exp(-pull * (log r - mean log r))``: toward the depth they agree on. With N people the
    error that is left is about the mean of their errors, ``1/sqrt(N)`` of one.

    A floor whose camera height is known (``height_source`` ``"user"``, or ``"video"``:
    pooled over a clip's frames) is itself the depth to agree on: ``mean log r`` is then 0,
    and one person is enough.

    Args:
        floor: the floor, placed by the people (:func:`floor_from_people`).
        contacts_m: (N, 3) camera-frame foot contacts, metres (NaN rows: not known).
        band: default :data:`SHARED_FLOOR_BAND`, or :data:`MAX_SUNKEN_RATIO` for a floor of
            known height.
        pull: default :func:`shared_floor_pull` of the floor's camera height.

    Returns:
        (N,) factors (1 for people left where they are).
    """
    known = floor.height_source in KNOWN_HEIGHT_SOURCES
    if band is None:
        band = MAX_SUNKEN_RATIO if known else SHARED_FLOOR_BAND
    if pull is None:
        pull = shared_floor_pull(floor.camera_height_m)
    ratio = floor.below_ratio(contacts_m)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_ratio = np.log(np.where(ratio > 0, ratio, np.nan))
    on_floor = np.abs(log_ratio) <= np.log(band)  # False for NaN
    scales = np.ones(len(ratio))
    if on_floor.sum() < (1 if known else 2):
        return scales
    log_scale = -pull * (log_ratio[on_floor] - (0.0 if known else log_ratio[on_floor].mean()))
    scales[on_floor] = np.where(np.abs(log_scale) >= MIN_SHARED_FLOOR_MOVE, np.exp(log_scale), 1.0)
    return scales


def camera_pitch_roll_deg(up: np.ndarray) -> tuple[float, float]:
    """Camera attitude from the up direction (3,) in its frame (OpenCV axes).

    Returns ``(pitch, roll)`` degrees: pitch > 0 when the optical axis points below the
    horizon; roll > 0 when the world's up leans toward the image's right (+x), i.e. the
    camera is turned counter-clockwise about its optical axis as seen from behind.
    """
    x, y, z = unit(np.asarray(up, dtype=np.float64))
    return float(np.degrees(np.arcsin(np.clip(-z, -1.0, 1.0)))), float(np.degrees(np.arctan2(x, -y)))
