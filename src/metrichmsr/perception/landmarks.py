"""BlazePose's 33 landmarks: their names, which of them are the body model's joints, whose feet
were seen, how many of them a body explains.

Plain data and numpy, no mediapipe: the models and the training data read these without
loading the detector.
"""

import numpy as np

from metrichmsr.joints import JOINT_NAMES

BLAZEPOSE_LANDMARK_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)

#: BlazePose landmark index for each of JOINT_NAMES (None: BlazePose has no such point).
BLAZEPOSE_FOR_JOINT = {
    "nose": 0, "left_eye": 2, "right_eye": 5, "left_ear": 7, "right_ear": 8,
    "left_shoulder": 11, "right_shoulder": 12, "left_elbow": 13, "right_elbow": 14,
    "left_wrist": 15, "right_wrist": 16, "left_hip": 23, "right_hip": 24,
    "left_knee": 25, "right_knee": 26, "left_ankle": 27, "right_ankle": 28,
    "left_big_toe": 31, "right_big_toe": 32, "left_small_toe": None, "right_small_toe": None,
    "left_heel": 29, "right_heel": 30,
}  # fmt: skip

#: (joint index in JOINT_NAMES, landmark index) of the points both name alike: COCO-17 and the heels.
SAME_NAMED = tuple(
    (j, BLAZEPOSE_LANDMARK_NAMES.index(name)) for j, name in enumerate(JOINT_NAMES) if name in BLAZEPOSE_LANDMARK_NAMES
)

#: A body posed onto a person's landmarks lies on most of them (median share 1.0 on PETS 2009's
#: stills; no held-out render's person falls under a third); one that explains fewer than this
#: share of them is no one person: a box over two people, a part of one, a sign or a bag read
#: as a pose (24 of the 28 PETS detections under 0.3, by eye).
MIN_EXPLAINED_SHARE = 1 / 3

_FEET = [27, 28, 29, 30, 31, 32]  # ankles, heels and toes in BLAZEPOSE_LANDMARK_NAMES


def feet_seen(landmarks2d: np.ndarray, min_visibility: float = 0.5) -> np.ndarray:
    """(N,) bool: whose feet BlazePose saw (in the image, not occluded): each foot's best seen
    point (ankle, heel or toe), averaged over the two feet, at least ``min_visibility``. One
    point of one foot is not enough: BlazePose guesses the legs of a body the image's border
    cuts at the waist, folded up, with an ankle or a toe seen at 0.5-0.55 and the other foot
    at 0.2-0.3 (``basketball1.png``'s near man), and those feet placed the floor.

    landmarks2d: (N, 33, 3) as in :class:`PersonObservation` (x, y, visibility).
    """
    visibility = np.asarray(landmarks2d)[:, _FEET, 2]
    return (visibility[:, 0::2].max(axis=1) + visibility[:, 1::2].max(axis=1)) / 2 >= min_visibility


def landmarks_explained(
    joints3d: np.ndarray,
    landmarks2d: np.ndarray,
    boxes: np.ndarray,
    K: np.ndarray,
    fraction: float = 0.05,
    min_visibility: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """How many of each person's seen landmarks their body explains: (N,) int each, the seen
    landmarks of :data:`SAME_NAMED` (visibility above ``min_visibility``) and those within
    ``fraction`` of the box's longer side of their joint projected through K (PCK@fraction).

    Args:
        joints3d: (N, 23, 3) JOINT_NAMES order, camera frame, metres.
        landmarks2d: (N, 33, 3) x_px, y_px, visibility.
        boxes: (N, 4) ``[x0, y0, x1, y1]`` px.
        K: (3, 3) intrinsics, pixels.

    Returns:
        (explained, seen). A joint behind the camera projects nowhere: never explained; a
        landmark whose joint is not finite (not given) is not scored.
    """
    joints, landmarks = np.asarray(joints3d, dtype=np.float64), np.asarray(landmarks2d, dtype=np.float64)
    joint_index, landmark_index = np.array(SAME_NAMED).T
    projected = joints[:, joint_index] @ np.asarray(K, dtype=np.float64).T  # (N, M, 3)
    in_front = projected[..., 2] > 0
    pixels = projected[..., :2] / np.where(in_front, projected[..., 2], 1.0)[..., None]
    seen = (landmarks[:, landmark_index, 2] > min_visibility) & np.isfinite(joints[:, joint_index]).all(axis=-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    tolerance = fraction * np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    near = np.linalg.norm(pixels - landmarks[:, landmark_index, :2], axis=-1) <= tolerance[:, None]
    return (seen & in_front & near).sum(axis=1), seen.sum(axis=1)


def unexplained(joints3d: np.ndarray, landmarks2d: np.ndarray, boxes: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N,) bool: whose body, posed onto their landmarks, explains under ``MIN_EXPLAINED_SHARE``
    of the seen ones (:func:`landmarks_explained`; arguments as there)."""
    explained, seen = landmarks_explained(joints3d, landmarks2d, boxes, K)
    return explained < MIN_EXPLAINED_SHARE * seen
