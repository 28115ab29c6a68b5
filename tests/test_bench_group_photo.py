"""bench.group_photo: people matched to the sample's hand-labelled faces, and its table."""

import json

import numpy as np
import pytest

from metrichmsr.bench import group_photo
from metrichmsr.bench.group_photo import FACES, match_faces, row_table

pytestmark = pytest.mark.filterwarnings("ignore:SymbolDatabase.GetPrototype:UserWarning")


def test_each_face_takes_the_nearest_nose_once():
    faces = [(100, 50, 20), (130, 50, 20)]
    # Persons 0 and 1 are both near the first face, 1 nearer; 2 is far off; 3 on the second face.
    noses = np.array([[106.0, 50.0], [101.0, 51.0], [400.0, 50.0], [128.0, 50.0]])
    assert match_faces(noses, faces) == {0: 1, 1: 3}
    assert match_faces(noses[:3], faces) == {0: 1}
    assert match_faces(noses[2:3], faces) == {}
    assert match_faces(np.zeros((0, 2)), faces) == {}


def _person(nose, height_m, depth_m):
    return {"keypoints2d": {"nose": [*nose, 1.0]}, "height_m": height_m, "translation": [0.0, 0.0, depth_m]}


def test_rows_count_heights_and_depths():
    front = FACES["front (kneeling, sitting)"]
    standing = FACES["standing"]
    people = [_person(front[0][:2], 1.20, 6.0), _person(front[1][:2], 1.70, 6.2)]
    people += [_person(face[:2], 1.75, 7.0 + 0.1 * (k % 2)) for k, face in enumerate(standing[:10])]
    people += [_person(standing[10][:2], 1.75, 9.0), _person((5.0, 5.0), 1.7, 3.0)]  # one far, one on no face
    rows, unlabelled = row_table(people)
    assert unlabelled == 1
    first, second = rows
    assert (first["faces"], first["found"]) == (len(front), 2) and first["heights_in_range"] == pytest.approx(0.5)
    assert second["found"] == 11 and second["depths_within"] == pytest.approx(10 / 11)
    assert second["depth_range_m"] == pytest.approx([7.0, 9.0])


def test_the_sample_photo_against_its_labels(tmp_path, capsys):
    out = tmp_path / "bench"
    assert group_photo.main(["-o", str(out)]) == 0
    rows = json.loads((out / "people.json").read_text())["rows"]
    assert [r["faces"] for r in rows] == [len(f) for f in FACES.values()]
    # Most labelled faces are someone found (the scan alone finds about 23 of 38).
    assert sum(r["found"] for r in rows) >= 30
    assert "summary:" in capsys.readouterr().out
    assert group_photo.main(["-o", str(out)]) == 2  # never over an earlier output unless told
    # Told that everyone is an adult, the people read short (the kneeling front row) are read taller.
    assert group_photo.main(["-o", str(out), "--adults", "--overwrite"]) == 0
    adults = json.loads((out / "people.json").read_text())
    assert {p["population_scale"] for p in adults["people"]} != {1.0}
    front, front_adults = rows[0], adults["rows"][0]
    assert front_adults["median_height_m"] > front["median_height_m"] + 0.03
