"""Pipeline steps between the stages that need no models."""

import numpy as np

from metrichmsr.pipeline import PersonResult, without_parts_read_as_far


def _person(person_id: int, bbox, score: float, distance_m: float) -> PersonResult:
    return PersonResult(
        id=person_id, bbox=np.array(bbox, dtype=float), score=score, translation=np.array([0.0, 0.0, distance_m]), height_m=1.7,
        joints3d=np.zeros((23, 3)), keypoints2d=np.zeros((33, 3)), vertices=np.zeros((10, 3)), phenotype=np.full(6, 0.5),
        bone_rotvec=np.zeros((18, 3)), global_rotation=np.eye(3),
    )  # fmt: skip


def test_parts_read_as_far_away_people_are_dropped():
    people = [
        _person(0, [100, 100, 200, 400], 0.9, 3.0),  # a near adult
        _person(1, [120, 110, 150, 170], 0.5, 12.0),  # their head, read as a small person 4x as far
        _person(2, [130, 250, 180, 390], 0.6, 2.8),  # a child in front of them: nearer, kept
        _person(3, [110, 120, 160, 200], 0.95, 9.0),  # better seen than the adult: kept
        _person(4, [150, 150, 260, 250], 0.4, 12.0),  # half outside the adult's box: kept
        _person(5, [400, 100, 430, 160], 0.3, 20.0),  # small and far, but inside no one: kept
    ]
    kept = without_parts_read_as_far(people)
    assert [p.bbox[0] for p in kept] == [100, 130, 110, 150, 400]
    assert [p.id for p in kept] == [0, 1, 2, 3, 4]
    assert [p.id for p in people] == [0, 1, 2, 3, 4, 5]  # the input is left as it was
    # Just under 1.5 times as far: someone standing behind, kept.
    behind = [people[0], _person(1, [120, 110, 150, 170], 0.5, 4.4)]
    assert len(without_parts_read_as_far(behind)) == 2
