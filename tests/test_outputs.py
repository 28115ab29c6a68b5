"""Output folders: a folder is replaced only when metrichmsr wrote everything in it (its
manifest says so), only when asked to, and never one that holds or lies inside the input."""

import json
from pathlib import Path

import pytest

from metrichmsr._outputs import MANIFEST, check_apart, check_output, folder_output_names, is_ours, staged_output
from metrichmsr.errors import InputError


def write(folder: Path, overwrite: bool = False, files=("result.json", "sub/scene.glb")) -> Path:
    with staged_output(folder, overwrite) as staging:
        for name in files:
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_text(name)
    return folder


def test_a_written_folder_is_ours_and_lists_its_files(tmp_path):
    out = write(tmp_path / "out")
    assert is_ours(out)
    assert json.loads((out / MANIFEST).read_text())["files"] == ["result.json", "sub/scene.glb"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging left behind


@pytest.mark.parametrize(
    "change",
    [
        lambda out: (out / "thesis.txt").write_text("mine"),
        lambda out: (out / "sub" / "notes.txt").write_text("mine"),
        lambda out: (out / "mine").mkdir(),
        lambda out: (out / "link").symlink_to(out / "result.json"),
        lambda out: (out / MANIFEST).write_text("{not json"),
        lambda out: (out / MANIFEST).write_text(json.dumps({"schema": "other/1", "files": ["result.json", "sub/scene.glb"]})),
        lambda out: (out / MANIFEST).unlink(),
    ],
    ids=["a file", "a file in a sub-folder", "a folder", "a link", "a broken manifest", "another schema", "no manifest"],
)
def test_anything_else_in_it_makes_it_the_users(tmp_path, change):
    out = write(tmp_path / "out")
    change(out)
    assert not is_ours(out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(InputError, match="did not write"):
        write(out, overwrite=True)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_our_folder_is_replaced_only_with_overwrite(tmp_path):
    out = write(tmp_path / "out")
    with pytest.raises(InputError, match="--overwrite"):
        write(out, files=("other.json",))
    write(out, overwrite=True, files=("other.json",))
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "other.json"]


def test_a_failed_block_leaves_the_old_folder_and_no_staging(tmp_path):
    out = write(tmp_path / "out")
    with pytest.raises(RuntimeError):
        with staged_output(out, overwrite=True) as staging:
            (staging / "result.json").write_text("half")
            raise RuntimeError("interrupted")
    assert (out / "result.json").read_text() == "result.json"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_new_empty_and_impossible_targets(tmp_path):
    check_output(tmp_path / "new" / "deeper")
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        check_output(tmp_path / "file")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output(tmp_path / "file" / "out")
    (tmp_path / "alias").symlink_to(tmp_path / "empty")
    with pytest.raises(InputError, match="is a link"):
        check_output(tmp_path / "alias")


def test_output_apart_from_the_input(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"x")
    check_apart(tmp_path / "out", [photos])
    check_apart(photos / "out", [photos / "a.jpg"])  # beside a single photo is fine
    for output, source, words in (
        (photos, photos / "a.jpg", "holds the input"),
        (tmp_path, photos / "a.jpg", "holds the input"),
        (photos, photos, "holds the input"),
        (photos / "results", photos, "inside the input folder"),
    ):
        with pytest.raises(InputError, match=words):
            check_apart(output, [source])


def test_folder_output_names_keep_colliding_stems_apart():
    names = folder_output_names([Path("a.jpg"), Path("a.png"), Path("A.tif"), Path("b.png"), Path("c.d.png")])
    assert names == {
        Path("a.jpg"): "a.jpg",
        Path("a.png"): "a.png",
        Path("A.tif"): "A.tif",
        Path("b.png"): "b",
        Path("c.d.png"): "c.d",
    }
    with pytest.raises(InputError, match="both write"):  # a.png.jpg's stem is the name a.png falls back to
        folder_output_names([Path("a.png"), Path("a.jpg"), Path("a.png.jpg")])
