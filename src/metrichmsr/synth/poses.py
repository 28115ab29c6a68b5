"""Natural pose families for synthetic people, as POSE_BONES rotation vectors.

Anny's local-ref pose turns each bone about its head in the rest pose's world-aligned axes
(x = the person's left, y = backward, z = up), composed parent -> child. In those axes, for
the person's left side: a thigh or an arm swings forward with a negative x turn, a knee bends
with a positive one, an arm rises sideways with a negative y turn, and the spine bends
forward with a positive x turn. The right side mirrors y and z turns.

Each family draws its defining angles from ranges, adds small noise on every bone, and
clips to joint limits, so a pose is plausible on its own and varied across draws.
"""

from __future__ import annotations

import math

import numpy as np

from metrichmsr.body import POSE_BONES

POSE_FAMILIES = ("standing", "walking", "arms_raised", "arms_forward", "crouching", "sitting", "leaning")
#: Families drawn only where asked for (``SceneConfig.pose_families``, a training run's
#: ``pose_families``): the held-out renders keep POSE_FAMILIES, so their figures stay comparable.
EXTRA_POSE_FAMILIES = ("kneeling",)

_NOISE_RAD = 0.07
#: Per-bone limit on |rotation vector| (rad): beyond these a body self-intersects or breaks.
_LIMIT_RAD = {
    "spine03": 0.6, "spine01": 0.8, "neck01": 0.6, "head": 0.6,
    "clavicle.L": 0.3, "clavicle.R": 0.3,
    "upperarm01.L": 2.4, "upperarm01.R": 2.4, "lowerarm01.L": 2.0, "lowerarm01.R": 2.0,
    "wrist.L": 0.8, "wrist.R": 0.8,
    "upperleg01.L": 2.2, "upperleg01.R": 2.2, "lowerleg01.L": 2.4, "lowerleg01.R": 2.4,
    "foot.L": 0.6, "foot.R": 0.6,
}  # fmt: skip
_INDEX = {name: i for i, name in enumerate(POSE_BONES)}
#: How square a walker's thigh swing is (``walking_gait``): 0 a sine, 1 a sharp triangle wave.
_GAIT_ROUNDING = 0.99


def _set(pose: np.ndarray, bone: str, x: float = 0.0, y: float = 0.0, z: float = 0.0, both_sides: bool = False) -> None:
    """Add a turn to ``bone`` (".L" names); with ``both_sides`` also its mirror on ".R"."""
    pose[_INDEX[bone]] += (x, y, z)
    if both_sides:
        pose[_INDEX[bone.replace(".L", ".R")]] += (x, -y, -z)


def _arms_down(pose: np.ndarray, rng: np.random.Generator) -> None:
    """From Anny's A-pose to arms hanging by the sides, elbows a little bent."""
    for side, sign in ((".L", 1.0), (".R", -1.0)):
        _set(pose, "upperarm01" + side, x=rng.uniform(-0.3, 0.2), y=sign * rng.uniform(0.3, 0.8))
        _set(pose, "lowerarm01" + side, x=-rng.uniform(0.0, 0.6))


def _family_pose(family: str, rng: np.random.Generator) -> np.ndarray:
    pose = np.zeros((len(POSE_BONES), 3))
    u = rng.uniform
    if family == "standing":
        _arms_down(pose, rng)
        _set(pose, "upperleg01.L", y=u(-0.1, 0.1), z=u(-0.2, 0.2), both_sides=True)
    elif family == "walking":
        phase, stride = u(-1.0, 1.0), u(0.25, 0.55)
        _arms_down(pose, rng)
        _set(pose, "upperleg01.L", x=-stride * phase)
        _set(pose, "upperleg01.R", x=stride * phase)
        _set(pose, "lowerleg01.R" if phase > 0 else "lowerleg01.L", x=u(0.2, 0.7))  # the trailing knee
        _set(pose, "upperarm01.L", x=0.6 * stride * phase)
        _set(pose, "upperarm01.R", x=-0.6 * stride * phase)
    elif family == "arms_raised":
        for side, sign in ((".L", 1.0), (".R", -1.0)):
            lift = u(1.0, 2.2) if rng.random() < 0.8 else u(-0.6, 0.3)  # sometimes one arm only
            _set(pose, "upperarm01" + side, x=u(-0.5, 0.2), y=-sign * lift)
            _set(pose, "lowerarm01" + side, x=-u(0.0, 1.0))
    elif family == "arms_forward":
        for side, sign in ((".L", 1.0), (".R", -1.0)):
            _set(pose, "upperarm01" + side, x=-u(0.8, 1.6), y=sign * u(0.5, 0.9))  # y: in from the A-pose
            _set(pose, "lowerarm01" + side, x=-u(0.0, 0.9))
    elif family == "crouching":
        depth = u(0.6, 1.0)
        _set(pose, "upperleg01.L", x=-depth * 2.0, y=u(-0.1, 0.2), both_sides=True)
        _set(pose, "lowerleg01.L", x=depth * 2.2, both_sides=True)
        _set(pose, "foot.L", x=-depth * 0.4, both_sides=True)
        _set(pose, "spine01", x=u(0.2, 0.6))
        _set(pose, "upperarm01.L", x=-u(0.3, 1.0), y=u(0.0, 0.5), both_sides=True)
        _set(pose, "lowerarm01.L", x=-u(0.2, 1.0), both_sides=True)
    elif family == "sitting":
        _set(pose, "upperleg01.L", x=-u(1.3, 1.7), y=u(-0.05, 0.2), both_sides=True)
        _set(pose, "lowerleg01.L", x=u(1.2, 1.8), both_sides=True)
        _set(pose, "upperarm01.L", x=-u(0.1, 0.6), y=u(0.3, 0.7), both_sides=True)
        _set(pose, "lowerarm01.L", x=-u(0.4, 1.2), both_sides=True)
        _set(pose, "spine01", x=u(-0.1, 0.3))
    elif family == "kneeling":
        # The front row of a group photo: on one knee (that foot flat, its shin upright) or on
        # both, the knees and tucked toes on the floor (the shins back, rising a foot's height
        # to the ankles: thigh and knee turns summing to a little over a right angle), the
        # body upright.
        for side in (".L", ".R"):
            thigh = u(-0.1, 0.35)
            _set(pose, "upperleg01" + side, x=thigh)
            _set(pose, "lowerleg01" + side, x=math.pi / 2 - thigh + u(0.25, 0.45))
            _set(pose, "foot" + side, x=u(-0.2, 0.2))
        if rng.random() < 0.6:
            front = ".L" if rng.random() < 0.5 else ".R"
            thigh = u(1.4, 1.7)  # about level: the other knee reaches the floor
            pose[_INDEX["upperleg01" + front], 0] = -thigh
            pose[_INDEX["lowerleg01" + front], 0] = thigh + u(-0.2, 0.2)
            pose[_INDEX["foot" + front], 0] = -u(0.0, 0.3)
        _set(pose, "spine01", x=u(-0.1, 0.4))
        _set(pose, "upperarm01.L", x=-u(0.0, 1.0), y=u(0.2, 0.7), both_sides=True)
        _set(pose, "lowerarm01.L", x=-u(0.2, 1.2), both_sides=True)
    elif family == "leaning":
        _arms_down(pose, rng)
        _set(pose, "spine01", x=u(-0.2, 0.6), y=u(-0.35, 0.35))
        _set(pose, "spine03", z=u(-0.4, 0.4))
    else:
        raise ValueError(f"unknown pose family {family!r}; choose from {', '.join(POSE_FAMILIES + EXTRA_POSE_FAMILIES)}")
    _set(pose, "head", x=u(-0.2, 0.3), z=u(-0.6, 0.6))
    return pose


def clip_to_limits(bone_rotvec: np.ndarray) -> np.ndarray:
    """Scale each bone's rotation vector (..., P, 3) down to its joint limit, radians."""
    limits = np.array([_LIMIT_RAD[name] for name in POSE_BONES])
    norm = np.linalg.norm(bone_rotvec, axis=-1, keepdims=True)
    return bone_rotvec * np.minimum(1.0, limits[:, None] / np.maximum(norm, 1e-9))


def sample_pose(rng: np.random.Generator, family: str | None = None) -> tuple[np.ndarray, str]:
    """A natural pose: ``(bone_rotvec (P, 3) rad in POSE_BONES order, family name)``.

    ``family=None`` draws one of POSE_FAMILIES uniformly.
    """
    family = family or POSE_FAMILIES[rng.integers(len(POSE_FAMILIES))]
    pose = _family_pose(family, rng) + rng.normal(0.0, _NOISE_RAD, (len(POSE_BONES), 3))
    return clip_to_limits(pose), family


def walking_gait(phase: np.ndarray, stride: float, rng: np.random.Generator) -> np.ndarray:
    """One person's walk, the "walking" family made periodic: bone_rotvec (T, P, 3) rad at gait
    phases ``phase`` (T,) rad (one cycle, two steps, per 2 pi).

    The thighs swing ``stride`` (rad) either way (the left forward first), at a steady rate but
    for the turns at either end; the knee of the leg swinging forward bends (most as it passes
    under the hip); the arms hang by the sides (nearer them than :func:`_arms_down`'s: a
    walker's arms do not reach forward) and swing against the legs. The arms' carriage, the
    head and the small noise on every bone are drawn once from ``rng``, so the cycle repeats
    exactly, as a walker's does.
    """
    phase = np.asarray(phase, dtype=np.float64)
    u = rng.uniform
    base = np.zeros((len(POSE_BONES), 3))
    for side, sign in ((".L", 1.0), (".R", -1.0)):
        _set(base, "upperarm01" + side, x=u(-0.1, 0.1), y=sign * u(0.6, 0.8))
        _set(base, "lowerarm01" + side, x=-u(0.0, 0.3))
    _set(base, "head", x=u(-0.1, 0.2), z=u(-0.3, 0.3))
    base += rng.normal(0.0, _NOISE_RAD, base.shape)
    knee = u(0.5, 0.9)  # peak bend of the swinging knee
    # The left thigh's angle in [-1, 1]: a triangle wave with rounded turns, not a sine, so the
    # foot on the floor moves back under the hip at a steady speed and the walker's steady
    # speed can match it (a sine's would be pi / 2 times faster at mid-stance: the foot slides).
    swing = np.arcsin(_GAIT_ROUNDING * np.sin(phase)) / np.arcsin(_GAIT_ROUNDING)
    forward = np.cos(phase)  # > 0 while the left thigh swings forward
    pose = np.repeat(base[None], len(phase), axis=0)
    pose[:, _INDEX["upperleg01.L"], 0] -= stride * swing
    pose[:, _INDEX["upperleg01.R"], 0] += stride * swing
    pose[:, _INDEX["lowerleg01.L"], 0] += knee * np.maximum(forward, 0.0)
    pose[:, _INDEX["lowerleg01.R"], 0] += knee * np.maximum(-forward, 0.0)
    pose[:, _INDEX["upperarm01.L"], 0] += 0.6 * stride * swing
    pose[:, _INDEX["upperarm01.R"], 0] -= 0.6 * stride * swing
    return clip_to_limits(pose)
