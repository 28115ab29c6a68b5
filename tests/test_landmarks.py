"""How many of a person's BlazePose landmarks their body explains, and the people it drops."""

import numpy as np

from metrichmsr.joints import JOINT_NAMES
from metrichmsr.perception.landmarks import SAME_NAMED, landmarks_explained, unexplained

K = np.array([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])


def standing(x_m: float = 0.0, z_m: float = 5.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 1.7 m stick figure ``z_m`` ahead: (23, 3) joints, (33, 3) landmarks on their
    projections (visibility 0.9; the landmarks of no joint 0) and its (4,) box."""
    spread = np.linspace(-1.0, 1.0, len(JOINT_NAMES))
    joints = np.stack([x_m + 0.2 * spread, np.linspace(-0.8, 0.9, len(JOINT_NAMES)), np.full(len(JOINT_NAMES), z_m)], -1)
    projected = joints @ K.T
    pixels = projected[:, :2] / projected[:, 2:]
    landmarks = np.zeros((33, 3))
    for joint, landmark in SAME_NAMED:
        landmarks[landmark] = [*pixels[joint], 0.9]
    box = np.concatenate([pixels.min(axis=0), pixels.max(axis=0)])
    return joints, landmarks, box


def test_same_named_points_are_coco_and_the_heels():
    assert len(SAME_NAMED) == 19
    assert {JOINT_NAMES[j] for j, _ in SAME_NAMED} == set(JOINT_NAMES[:17]) | {"left_heel", "right_heel"}


def test_a_body_explains_the_landmarks_it_lies_on():
    joints, landmarks, box = standing()
    side = box[3] - box[1]  # 170 px: the tolerance is 8.5 px
    explained, seen = landmarks_explained(joints[None], landmarks[None], box[None], K)
    assert (explained.tolist(), seen.tolist()) == ([19], [19])
    moved = landmarks.copy()
    moved[[l for _, l in SAME_NAMED[:14]], 0] += 0.06 * side  # just past the tolerance
    moved[SAME_NAMED[14][1], 0] += 0.04 * side  # just inside it
    hidden = moved.copy()
    hidden[[l for _, l in SAME_NAMED[15:17]], 2] = 0.3  # not seen: not scored
    behind = joints.copy()
    behind[SAME_NAMED[17][0], 2] = -1.0  # a joint behind the camera projects nowhere
    explained, seen = landmarks_explained(
        np.stack([joints, joints, behind]), np.stack([moved, hidden, landmarks]), np.stack([box] * 3), K
    )
    assert explained.tolist() == [5, 3, 18] and seen.tolist() == [19, 17, 19]


def test_people_whose_bodies_explain_under_a_third_of_their_landmarks_are_dropped():
    from metrichmsr.pipeline import without_unexplained
    from metrichmsr.result import PersonResult

    people = []
    for i, (x_m, moved_count) in enumerate([(-1.0, 0), (0.0, 13), (1.0, 12)]):
        joints, landmarks, box = standing(x_m)
        landmarks[[l for _, l in SAME_NAMED[:moved_count]], 1] += 30.0  # a tolerance of 8.5 px
        people.append(
            PersonResult(
                id=i,
                bbox=box,
                score=0.9,
                translation=joints[11:13].mean(axis=0),
                height_m=1.7,
                joints3d=joints,
                keypoints2d=landmarks,
                vertices=np.zeros((10, 3)),
                phenotype=np.full(6, 0.5),
                bone_rotvec=np.zeros((18, 3)),
                global_rotation=np.eye(3),
            )  # fmt: skip
        )
    stack = lambda name: np.stack([getattr(p, name) for p in people])  # noqa: E731
    # 13 of 19 moved leaves 6 < 19 / 3; 12 leaves 7.
    assert unexplained(stack("joints3d"), stack("keypoints2d"), stack("bbox"), K).tolist() == [False, True, False]
    kept = without_unexplained(people, K)
    assert [p.id for p in kept] == [0, 1] and kept[1].bbox.tolist() == people[2].bbox.tolist()
    assert without_unexplained([], K) == []
