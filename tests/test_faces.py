"""Faces (BlazeFace full range) and the people ``PoseDetector.detect`` finds at them, on the
bundled group photo: about 40 people in three rows, the back one seen from the chest up."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from metrichmsr.errors import InputError
from metrichmsr.perception import PoseDetector, box_iou
from metrichmsr.perception.blazepose import _HEAD
from metrichmsr.perception.faces import FaceDetector

pytestmark = pytest.mark.filterwarnings("ignore:SymbolDatabase.GetPrototype:UserWarning")

SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "sample.jpg"


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.asarray(ImageOps.exif_transpose(Image.open(SAMPLE)).convert("RGB"))


@pytest.fixture(scope="module")
def faces(photo) -> np.ndarray:
    with FaceDetector() as detector:
        return detector.detect(photo)


@pytest.fixture(scope="module")
def people(photo, faces):
    """The sample's people without faces, and with them."""
    with PoseDetector(max_people=60) as detector:
        return detector.detect(photo), detector.detect(photo, faces=faces)


def _on_face(observation, face, margin: float = 0.2) -> bool:
    grow = margin * (face[2] - face[0])
    head = observation.landmarks2d[_HEAD, :2]
    return bool(np.mean(np.all((head >= face[:2] - grow) & (head <= face[2:4] + grow), axis=1)) > 0.5)


def test_faces_of_a_group_photo_each_once(photo, faces):
    height, width = photo.shape[:2]
    assert faces.shape[1] == 5 and len(faces) >= 34  # ~40 people, a few turned away or hidden
    assert np.all(np.diff(faces[:, 4]) <= 0), "most confident first"
    assert np.all((faces[:, 4] > 0.5) & (faces[:, 4] <= 1))
    assert np.all((faces[:, 0] >= -1) & (faces[:, 2] <= width) & (faces[:, 1] >= -1) & (faces[:, 3] <= height))
    # Faces, not people: 15-35 px tall on this 332-px photo, wider than nothing.
    heights = faces[:, 3] - faces[:, 1]
    assert np.all((heights > 10) & (heights < 40)) and np.all(faces[:, 2] > faces[:, 0])
    for i in range(len(faces)):
        for j in range(i):
            assert box_iou(faces[i, :4], faces[j, :4]) < 0.3


def test_faces_smaller_than_asked_for_are_left_out(photo, faces):
    with FaceDetector(min_face_px=24.0) as detector:
        big = detector.detect(photo)
    assert 0 < len(big) < len(faces) and np.all(big[:, 3] - big[:, 1] >= 24.0)
    assert np.all(faces[:, 3] - faces[:, 1] >= 16.0)


def test_faces_come_back_in_original_pixels_from_a_shrunk_copy(photo, faces):
    big = cv2.resize(photo, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
    with FaceDetector(min_face_px=16.0, detect_max_side=photo.shape[1]) as detector:
        found = detector.detect(big)
    # Pixel centres: x_big = 2 x + 0.5.
    expected = faces[:, :4] * 2 + 0.5
    matched = [max(box_iou(f, e) for e in expected) for f in found[:, :4]]
    assert len(found) >= 0.9 * len(faces) and np.median(matched) > 0.7


def test_a_face_detector_checks_its_arguments_and_closes():
    with pytest.raises(InputError):
        FaceDetector(min_face_px=0)
    with pytest.raises(InputError):
        FaceDetector(min_score=1.0)
    with FaceDetector() as detector:
        assert detector.detect(np.full((300, 400, 3), 127, np.uint8)).shape == (0, 5)
    with pytest.raises(RuntimeError):
        detector.detect(np.zeros((8, 8, 3), np.uint8))


def test_the_back_row_is_found_at_its_faces(photo, faces, people):
    scanned, with_faces = people
    # The scan alone finds about 23 of ~40; looking at the faces nobody holds, 35 or more.
    assert len(scanned) < 30 and len(with_faces) >= 34
    added = [o for o in with_faces if all(box_iou(o.bbox, s.bbox) < 0.9 for s in scanned)]
    assert len(added) >= len(with_faces) - len(scanned)
    for person in added:
        # Each one's head lies on a face, and no one else's head on the same face.
        holding = [k for k, face in enumerate(faces) if _on_face(person, face)]
        assert holding, person.bbox
        others = [o for o in with_faces if o is not person and _on_face(o, faces[holding[0]])]
        assert not others, person.bbox
        # The box is the whole person, hidden legs included: taller than the head and shoulders seen.
        seen = person.landmarks2d[person.landmarks2d[:, 2] > 0.5, 1]
        assert person.bbox[3] - person.bbox[1] > 1.5 * (seen.max() - seen.min())
    assert [o.bbox[0] for o in with_faces] == sorted(o.bbox[0] for o in with_faces)


def test_no_faces_change_nothing(photo, people):
    scanned, _ = people
    with PoseDetector(max_people=60) as detector:
        again = detector.detect(photo, faces=np.zeros((0, 5)))
    assert len(again) == len(scanned)
    for a, b in zip(again, scanned):
        np.testing.assert_allclose(a.bbox, b.bbox)
