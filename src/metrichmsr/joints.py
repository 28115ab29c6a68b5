"""The names of the 23 joints every body carries: COCO-17 then 6 foot points, in that order.

Anny's COCO keypoint regressor gives them (``body.BodyModel``); ``result.json`` names them;
geometry on plain arrays (the floor, the metrics) indexes them. Plain data, no torch.
"""

COCO_JOINT_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
FOOT_JOINT_NAMES = (
    "left_big_toe", "right_big_toe", "left_small_toe", "right_small_toe", "left_heel", "right_heel",
)  # fmt: skip
#: The 23 joints every BodyOutput carries, in this order.
JOINT_NAMES = COCO_JOINT_NAMES + FOOT_JOINT_NAMES


def _left_right(name: str) -> list[int]:
    return [JOINT_NAMES.index(f"left_{name}"), JOINT_NAMES.index(f"right_{name}")]


#: [left, right] indices into JOINT_NAMES of the pairs whose midpoints code reads; the hips'
#: midpoint is the body root.
EYES, SHOULDERS, HIPS, ANKLES, HEELS = (_left_right(name) for name in ("eye", "shoulder", "hip", "ankle", "heel"))
