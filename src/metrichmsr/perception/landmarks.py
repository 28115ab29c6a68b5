"""BlazePose's 33 landmarks: their names, which of them are the body model's joints, whose feet were seen.

Plain data and numpy, no mediapipe: the models and the training data read these without
loading the detector.
"""

import numpy as np

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

_FEET = [27, 28, 29, 30, 31, 32]  # ankles, heels and toes in BLAZEPOSE_LANDMARK_NAMES


def feet_seen(landmarks2d: np.ndarray, min_visibility: float = 0.5) -> np.ndarray:
    """(N,) bool: whose ankle, heel or toe BlazePose saw (in the image, not occluded).

    landmarks2d: (N, 33, 3) as in :class:`PersonObservation` (x, y, visibility).
    """
    return np.asarray(landmarks2d)[:, _FEET, 2].max(axis=1) >= min_visibility
