"""The `metrichmsr` command as a user runs it (a subprocess): bad input fails fast with one
line on stderr and touches nothing; a blank image or a folder with bad files still gives
result folders by the output contract; results are replaced only with --overwrite and only
when the folder holds nothing else; foreign folders are never touched."""

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

EXIT_INPUT_ERROR = 2
EXIT_SOME_FAILED = 3
SCHEMA = "metrichmsr.result/1"


def run_cli(*args, timeout=180, env=None):
    env = {**{k: v for k, v in os.environ.items() if k != "METRICHMSR_DEBUG"}, **(env or {})}
    env["PYOPENGL_PLATFORM"] = "egl"
    command = [sys.executable, "-m", "metrichmsr", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def snapshot(root: Path) -> dict:
    """Every path under ``root`` -> (bytes, mtime_ns) for files, None for folders."""
    return {p.relative_to(root): (p.read_bytes(), p.stat().st_mtime_ns) if p.is_file() else None for p in sorted(root.rglob("*"))}


def leftovers(folder: Path) -> list[str]:
    """Staging or swapped-out folders a run must never leave behind."""
    return [p.name for p in folder.rglob("*") if p.name.endswith(".partial") or ".old-" in p.name]


def blank_png(path: Path, size=(64, 48)) -> Path:
    Image.new("RGB", size, (128, 128, 128)).save(path)
    return path


# --- bad input -----------------------------------------------------------------------------


@pytest.fixture
def workspace(tmp_path):
    """Inputs next to each other in one folder; ``out`` does not exist yet."""
    w = SimpleNamespace(root=tmp_path)
    w.good = blank_png(tmp_path / "good.png")
    w.missing = tmp_path / "missing.jpg"
    w.zero = tmp_path / "zero.jpg"
    w.zero.touch()
    w.text = tmp_path / "notes.jpg"
    w.text.write_text("not an image\n")
    w.truncated = tmp_path / "cut.jpg"
    noisy = Image.effect_noise((96, 96), 64).convert("RGB")
    noisy.save(tmp_path / "full.jpg", quality=95)
    data = (tmp_path / "full.jpg").read_bytes()
    w.truncated.write_bytes(data[: len(data) // 2])
    w.tiny = tmp_path / "tiny.png"
    Image.new("RGB", (8, 8)).save(w.tiny)
    w.bad_json = tmp_path / "bad.json"
    w.bad_json.write_text("[[1, 2, 3, 4],")
    w.bad_box = tmp_path / "inverted.json"
    w.bad_box.write_text("[[5, 5, 1, 1]]")
    w.point_pairs = tmp_path / "pairs.json"
    w.point_pairs.write_text("[[10, 10], [40, 40]]")
    w.folder_boxes = tmp_path / "by_name.json"
    w.folder_boxes.write_text('{"good.png": [[1, 1, 20, 20]]}')
    w.a_file = tmp_path / "existing_file"
    w.a_file.write_text("keep me")
    w.far_box = tmp_path / "far_box.json"
    w.far_box.write_text("[[100, 10, 120, 40]]")  # right of the 64 px wide image
    w.depth = {}
    for name, array in {
        "3d": np.ones((48, 64, 3)),
        "wide": np.ones((10, 40)),
        "nan": np.full((48, 64), np.nan),
        "negative": np.full((48, 64), -2.0),
        "text": np.full((48, 64), "a"),
    }.items():
        w.depth[name] = tmp_path / f"depth_{name}.npy"
        np.save(w.depth[name], array)
    w.photos = tmp_path / "photos"
    w.photos.mkdir()
    blank_png(w.photos / "a.png")
    w.unknown_name_boxes = tmp_path / "unknown_names.json"
    w.unknown_name_boxes.write_text('{"a.png": [], "b.png": [[1, 1, 20, 20]]}')
    w.broken_photos = tmp_path / "broken_photos"
    w.broken_photos.mkdir()
    (w.broken_photos / "zero.jpg").touch()
    (w.broken_photos / "text.png").write_text("not an image")
    w.two_sizes = tmp_path / "two_sizes"
    w.two_sizes.mkdir()
    blank_png(w.two_sizes / "a.png")
    Image.new("RGB", (80, 48)).save(w.two_sizes / "b.png")
    w.out = tmp_path / "out"
    return w


BAD_INPUT = {
    "missing input": lambda w: ["recover", w.missing, "-o", w.out],
    "zero-byte file": lambda w: ["recover", w.zero, "-o", w.out],
    "text file named .jpg": lambda w: ["recover", w.text, "-o", w.out],
    "truncated jpeg": lambda w: ["recover", w.truncated, "-o", w.out],
    "tiny image": lambda w: ["recover", w.tiny, "-o", w.out],
    "fov 0": lambda w: ["recover", w.good, "-o", w.out, "--fov", "0"],
    "fov 200": lambda w: ["recover", w.good, "-o", w.out, "--fov", "200"],
    "fov abc": lambda w: ["recover", w.good, "-o", w.out, "--fov", "abc"],
    "fov nan": lambda w: ["recover", w.good, "-o", w.out, "--fov", "nan"],
    "focal -3": lambda w: ["recover", w.good, "-o", w.out, "--focal", "-3"],
    "intrinsics 3 numbers": lambda w: ["recover", w.good, "-o", w.out, "--intrinsics", "1,2,3"],
    "intrinsics zero focal": lambda w: ["recover", w.good, "-o", w.out, "--intrinsics", "0,500,32,24"],
    "focal and fov": lambda w: ["recover", w.good, "-o", w.out, "--focal", "500", "--fov", "60"],
    "device tpu": lambda w: ["recover", w.good, "-o", w.out, "--device", "tpu"],
    "min-score 1.5": lambda w: ["recover", w.good, "-o", w.out, "--min-score", "1.5"],
    "min-person-px 0": lambda w: ["recover", w.good, "-o", w.out, "--min-person-px", "0"],
    "max-people 0": lambda w: ["recover", w.good, "-o", w.out, "--max-people", "0"],
    "max-people 2.5": lambda w: ["recover", w.good, "-o", w.out, "--max-people", "2.5"],
    "camera-height 0": lambda w: ["recover", w.good, "-o", w.out, "--camera-height", "0"],
    "camera-height nan": lambda w: ["recover", w.good, "-o", w.out, "--camera-height", "nan"],
    "camera-height 1000 m": lambda w: ["recover", w.good, "-o", w.out, "--camera-height", "1000"],
    "boxes outside the image": lambda w: ["recover", w.good, "-o", w.out, "--boxes", w.far_box],
    "boxes naming no file of the folder": lambda w: ["recover", w.photos, "-o", w.out, "--boxes", w.unknown_name_boxes],
    "folder of only bad files": lambda w: ["recover", w.broken_photos, "-o", w.out],
    "--same-camera over two image sizes": lambda w: ["recover", w.two_sizes, "-o", w.out, "--same-camera"],
    "-o under a file": lambda w: ["recover", w.good, "-o", w.a_file / "out"],
    "-o cannot be made": lambda w: ["recover", w.good, "-o", "/proc/metrichmsr-out"],
    "-o holds the input": lambda w: ["recover", w.photos / "a.png", "-o", w.root],
    "-o inside the input folder": lambda w: ["recover", w.photos, "-o", w.photos / "results"],
    "--depth file 3-D": lambda w: ["recover", w.good, "-o", w.out, "--depth", f"file:{w.depth['3d']}"],
    "--depth file of another aspect": lambda w: ["recover", w.good, "-o", w.out, "--depth", f"file:{w.depth['wide']}"],
    "--depth file all NaN": lambda w: ["recover", w.good, "-o", w.out, "--depth", f"file:{w.depth['nan']}"],
    "--depth file negative": lambda w: ["recover", w.good, "-o", w.out, "--depth", f"file:{w.depth['negative']}"],
    "--depth file of text": lambda w: ["recover", w.good, "-o", w.out, "--depth", f"file:{w.depth['text']}"],
    "--depth file for a folder of another aspect": lambda w: [
        "recover",
        w.photos,
        "-o",
        w.out,
        "--depth",
        f"file:{w.depth['wide']}",
    ],
    "boxes missing file": lambda w: ["recover", w.good, "-o", w.out, "--boxes", w.root / "nope.json"],
    "boxes bad json": lambda w: ["recover", w.good, "-o", w.out, "--boxes", w.bad_json],
    "boxes inverted": lambda w: ["recover", w.good, "-o", w.out, "--boxes", w.bad_box],
    "boxes point pairs": lambda w: ["recover", w.good, "-o", w.out, "--boxes", w.point_pairs],
    "boxes by name for one image": lambda w: ["recover", w.good, "-o", w.out, "--boxes", w.folder_boxes],
    "missing -o": lambda w: ["recover", w.good],
    "-o is a file": lambda w: ["recover", w.good, "-o", w.a_file],
    "-o is the input's folder": lambda w: ["recover", w.good, "-o", w.root],
    "unknown flag": lambda w: ["recover", w.good, "-o", w.out, "--bogus"],
    "no command": lambda w: [],
    "--weights missing file": lambda w: ["recover", w.good, "-o", w.out, "--weights", w.root / "nope.pt"],
    "--weights not a network": lambda w: ["recover", w.good, "-o", w.out, "--weights", w.bad_json],
    "--depth bogus": lambda w: ["recover", w.good, "-o", w.out, "--depth", "bogus"],
    "--depth missing file": lambda w: ["recover", w.good, "-o", w.out, "--depth", f"file:{w.root / 'nope.npy'}"],
    "--depth unsupported file": lambda w: ["recover", w.good, "-o", w.out, "--depth", f"file:{w.bad_json}"],
    "synth --n 0": lambda w: ["synth", "--n", "0", "-o", w.out],
    "synth --n text": lambda w: ["synth", "--n", "many", "-o", w.out],
    "synth --seed -1": lambda w: ["synth", "--n", "2", "--seed", "-1", "-o", w.out],
    "synth across the held-out split": lambda w: ["synth", "--n", "5", "--seed", "999998", "-o", w.out],
    "synth --long-side 10": lambda w: ["synth", "--n", "1", "--long-side", "10", "-o", w.out],
    "synth -o is a file": lambda w: ["synth", "--n", "1", "-o", w.a_file],
    "synth -o a foreign folder": lambda w: ["synth", "--n", "1", "-o", w.root],
    "train -o a foreign folder": lambda w: ["train", "--steps", "1", "-o", w.root],
    "bench missing folder": lambda w: ["bench", w.root / "nope", "-o", w.out],
    "bench not a synth folder": lambda w: ["bench", w.root, "-o", w.out],
    "bench unknown method": lambda w: ["bench", w.root, "-o", w.out, "--methods", "full,oracle"],
    "--format fbx": lambda w: ["recover", w.good, "-o", w.out, "--format", "fbx"],
    "--population teens": lambda w: ["recover", w.good, "-o", w.out, "--population", "teens"],
    "--format with an empty name": lambda w: ["recover", w.good, "-o", w.out, "--format", "glb,"],
}


@pytest.mark.parametrize("case", BAD_INPUT, ids=list(BAD_INPUT))
def test_bad_input_fails_with_one_line_and_touches_nothing(workspace, case):
    before = snapshot(workspace.root)
    done = run_cli(*BAD_INPUT[case](workspace), timeout=60)
    assert done.returncode == EXIT_INPUT_ERROR, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("metrichmsr: error: "), lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert not workspace.out.exists()
    # Inputs byte-identical with the same mtime, and nothing new (no output, no staging).
    assert snapshot(workspace.root) == before


def test_bad_input_message_names_the_file(workspace):
    for path in (workspace.zero, workspace.truncated, workspace.missing):
        done = run_cli("recover", path, "-o", workspace.out, timeout=60)
        assert path.name in done.stderr, done.stderr


def test_foreign_output_folder_is_refused_untouched(tmp_path):
    image = blank_png(tmp_path / "blank.png")
    out = tmp_path / "documents"
    (out / "nested").mkdir(parents=True)
    (out / "thesis.txt").write_text("three years of work")
    (out / "nested" / "data.csv").write_text("1,2,3\n")
    before = snapshot(tmp_path)
    for overwrite in ([], ["--overwrite"]):
        done = run_cli("recover", image, "-o", out, *overwrite, timeout=60)
        assert done.returncode == EXIT_INPUT_ERROR
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("metrichmsr: error: ") and "documents" in lines[0]
        assert snapshot(tmp_path) == before


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["plain", "--overwrite"])
def test_a_result_json_among_the_users_files_does_not_make_the_folder_ours(tmp_path, overwrite):
    """The two ways main at 6abb589 deleted files: the user's files beside a result.json, and
    the input photo inside the output folder."""
    image = blank_png(tmp_path / "photo.png")
    out = tmp_path / "o"
    (out / "sub").mkdir(parents=True)
    (out / "result.json").write_text(json.dumps({"schema": SCHEMA, "people": []}))
    (out / "thesis.txt").write_text("thesis")
    (out / "in").mkdir()
    inside = blank_png(out / "in" / "photo.png")
    before = snapshot(tmp_path)
    for source in (image, inside):
        done = run_cli("recover", source, "-o", out, *overwrite, timeout=60)
        assert done.returncode == EXIT_INPUT_ERROR, done.stderr
        assert done.stderr.count("\n") == 1 and "metrichmsr: error: -o " in done.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "env, words",
    [({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE"), ({"HF_ENDPOINT": "http://127.0.0.1:9"}, "cannot be reached")],
    ids=["offline", "hub unreachable"],
)
def test_hf_depth_neither_cached_nor_reachable_is_one_line(workspace, env, words):
    before = snapshot(workspace.root)
    done = run_cli(
        "recover",
        workspace.good,
        "-o",
        workspace.out,
        "--depth",
        "hf:nobody/no-such-depth-model",
        timeout=60,
        env={"HF_HOME": str(workspace.root / "hf_cache"), **env},
    )
    assert done.returncode == EXIT_INPUT_ERROR, done.stderr
    assert len(done.stderr.splitlines()) == 1 and words in done.stderr, done.stderr
    assert snapshot(workspace.root) == before


EARLY = [
    "intrinsics 3 numbers",
    "camera-height 1000 m",
    "boxes outside the image",
    "boxes naming no file of the folder",
    "folder of only bad files",
    "--same-camera over two image sizes",
    "-o under a file",
    "--depth file 3-D",
    "--depth file of another aspect",
    "--depth file all NaN",
    "--depth file for a folder of another aspect",
    "--format fbx",
]


@pytest.mark.parametrize("case", EARLY)
def test_bad_input_fails_before_torch_is_imported(workspace, case):
    """Refused before anything heavy loads (on 6abb589 --intrinsics took 3 s to refuse, a bad
    depth file 8 s, after detection): torch is not even imported."""
    argv = [str(arg) for arg in BAD_INPUT[case](workspace)]
    code = f"import sys; from metrichmsr.cli import main; rc = main({argv!r}); print(rc, 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == [str(EXIT_INPUT_ERROR), "False"], done.stdout + done.stderr


def test_version_and_help_say_exit_codes_and_files():
    from metrichmsr import __version__

    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"metrichmsr {__version__}"
    text = run_cli("recover", "--help").stdout
    for words in (
        "exit status",
        f"{EXIT_INPUT_ERROR}  bad input",
        f"{EXIT_SOME_FAILED}  a folder run",
        "result.json",
        "scene.glb",
        "overlay.png",
        "depth.npy",
        "people_rigged.glb",
        "person_<id>.bvh",
        "--format",
        "--overwrite",
        "--dry-run",
    ):
        assert words in text, words


def test_dry_run_lists_the_outputs_and_writes_nothing(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.jpg", "a.PNG", "b.png"):
        blank_png(photos / name)
    (photos / "empty.jpg").touch()
    before = snapshot(tmp_path)
    done = run_cli("recover", photos, "-o", tmp_path / "out", "--dry-run", timeout=60)
    assert done.returncode == EXIT_SOME_FAILED, done.stderr
    out = tmp_path / "out"
    assert f"a.jpg -> {out / 'a.jpg'}" in done.stdout and f"a.PNG -> {out / 'a.PNG'}" in done.stdout
    assert f"b.png -> {out / 'b'}" in done.stdout
    assert "skipped empty.jpg" in done.stderr
    assert snapshot(tmp_path) == before


# --- runs that load the models (one subprocess each, shared by the tests below) -------------


def test_synth_then_bench(tmp_path):
    """A tiny held-out set, then two methods on it: a report folder; the set is left as it was."""
    synth_dir, report_dir = tmp_path / "set", tmp_path / "report"
    done = run_cli("synth", "--n", "2", "--seed", "1000000", "--long-side", "320", "-o", synth_dir)
    assert done.returncode == 0, done.stderr
    assert "held-out" in done.stdout
    assert sorted(p.name for p in synth_dir.iterdir()) == [
        ".metrichmsr-output.json",
        "01000000.npz",
        "01000000.png",
        "01000001.npz",
        "01000001.png",
        "synth.json",
    ]
    before = snapshot(synth_dir)
    done = run_cli("bench", synth_dir, "-o", report_dir, "--methods", "full,box-only", timeout=300)
    assert done.returncode == 0, done.stderr
    assert "summary: median rel. root-depth error: full" in done.stdout
    assert sorted(p.name for p in report_dir.iterdir()) == [
        ".metrichmsr-output.json",
        "depth_error_vs_distance.png",
        "depth_error_vs_fov.png",
        "depth_error_vs_off_axis.png",
        "results.csv",
        "table.md",
    ]
    table = (report_dir / "table.md").read_text()
    assert "| full | all |" in table and "| box-only | all |" in table and "fixed-fov" not in table
    from metrichmsr.models.humanmoe import HUMANMOE_WEIGHTS

    shipped_md5 = hashlib.md5(HUMANMOE_WEIGHTS.read_bytes()).hexdigest()[:8]
    assert f"HumanMoE humanmoe.pt (md5 {shipped_md5})" in table.splitlines()[0]
    # Another network: a missing file is one line, and the report folder stays as it was.
    report_before = snapshot(report_dir)
    done = run_cli("bench", synth_dir, "-o", report_dir, "--weights", tmp_path / "missing.pt", "--overwrite")
    assert done.returncode != 0 and done.stderr.strip().count("\n") == 0 and "missing.pt: no such file" in done.stderr
    assert snapshot(report_dir) == report_before
    done = run_cli("bench", synth_dir, "-o", report_dir)  # an earlier report stays without --overwrite
    assert done.returncode == EXIT_INPUT_ERROR and "--overwrite" in done.stderr
    assert snapshot(report_dir) == report_before
    # The scenes' true camera heights given to the floor step: the report says so.
    done = run_cli("bench", synth_dir, "-o", tmp_path / "known", "--methods", "full", "--camera-height-known", timeout=300)
    assert done.returncode == 0, done.stderr
    assert ", camera height known (" in (tmp_path / "known" / "table.md").read_text().splitlines()[0]
    assert snapshot(synth_dir) == before
    assert not leftovers(tmp_path)


def read_result(folder: Path) -> dict:
    return json.loads((folder / "result.json").read_text())


def assert_blank_result(result: dict, image: Path, size=(64, 48)):
    assert result["schema"] == SCHEMA
    assert result["image"]["width"] == size[0] and result["image"]["height"] == size[1]
    assert Path(result["image"]["path"]).name == image.name
    assert result["people"] == []


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """A folder with two blank images whose stems collide, one more, an empty file, a JPEG cut
    short after its header and a text file."""
    root = tmp_path_factory.mktemp("folder_run")
    photos = root / "photos"
    photos.mkdir()
    good = [blank_png(photos / name) for name in ("empty_room.png", "empty_room.jpg", "hall.png")]
    bad = photos / "broken.jpg"
    bad.touch()
    noisy = Image.effect_noise((96, 96), 64).convert("RGB")
    noisy.save(root / "full.jpg", quality=95)
    data = (root / "full.jpg").read_bytes()
    cut = photos / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    (photos / "readme.txt").write_text("not an image, not even tried")
    before = snapshot(photos)
    done = run_cli("recover", photos, "-o", root / "out")
    return SimpleNamespace(root=root, photos=photos, good=good, bad=bad, cut=cut, before=before, done=done, out=root / "out")


def test_folder_with_bad_files_exits_3(folder_run):
    assert folder_run.done.returncode == EXIT_SOME_FAILED, folder_run.done.stderr
    assert "Traceback" not in folder_run.done.stderr + folder_run.done.stdout
    assert "done: 3/5 image(s)" in folder_run.done.stdout


def test_folder_images_get_their_results_and_colliding_stems_keep_apart(folder_run):
    assert sorted(p.name for p in folder_run.out.iterdir()) == ["empty_room.jpg", "empty_room.png", "hall"]
    for image, folder in zip(folder_run.good, ("empty_room.png", "empty_room.jpg", "hall")):
        result = read_result(folder_run.out / folder)
        assert_blank_result(result, image)
        assert result["camera"]["source"] == "default"
        assert result["camera"]["fx"] == pytest.approx(32.0 / math.tan(math.radians(30.0)), abs=1e-3)
        assert (result["camera"]["cx"], result["camera"]["cy"]) == (31.5, 23.5)
        assert (folder_run.out / folder / "overlay.png").is_file() and (folder_run.out / folder / "scene.glb").is_file()


def test_folder_bad_images_are_reported_once_each(folder_run):
    for bad in (folder_run.bad, folder_run.cut):
        mentions = [line for line in folder_run.done.stderr.splitlines() if bad.name in line]
        assert len(mentions) == 1, folder_run.done.stderr
        assert mentions[0].startswith("metrichmsr: skipped ")
    assert "readme" not in folder_run.done.stdout + folder_run.done.stderr


def test_folder_inputs_untouched_and_no_leftovers(folder_run):
    assert snapshot(folder_run.photos) == folder_run.before
    assert leftovers(folder_run.root) == []


@pytest.fixture(scope="module")
def single_runs(tmp_path_factory):
    """A blank image run into the same folder four times: first with the default camera; again
    without --overwrite; with --overwrite and --focal; then, after the user put a file of their
    own in the folder, with --overwrite once more."""
    root = tmp_path_factory.mktemp("single_run")
    image = blank_png(root / "blank.png")
    out = root / "result"
    before = snapshot(root)
    runs = SimpleNamespace(root=root, image=image, out=out, before=before)
    runs.first = run_cli("recover", image, "-o", out)
    runs.first_files = {p.name: p.read_bytes() for p in out.iterdir()} if out.is_dir() else {}
    runs.first_snapshot = snapshot(root)
    runs.again = run_cli("recover", image, "-o", out)
    runs.again_snapshot = snapshot(root)
    runs.overwrite = run_cli("recover", image, "-o", out, "--focal", "100", "--overwrite", "--population", "adults")
    runs.overwrite_files = sorted(p.name for p in out.iterdir())
    (out / "notes.txt").write_text("mine")
    runs.stray_snapshot = snapshot(root)
    runs.stray = run_cli("recover", image, "-o", out, "--overwrite")
    return runs


def test_blank_image_succeeds_with_nobody(single_runs):
    done = single_runs.first
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "nobody" in done.stdout.lower()
    assert set(single_runs.first_files) == {"result.json", "scene.glb", "overlay.png", "view.html", ".metrichmsr-output.json"}
    result = json.loads(single_runs.first_files["result.json"])
    assert_blank_result(result, single_runs.image)
    assert result["camera"]["source"] == "default" and result["population"] == "auto"
    assert single_runs.first_files["scene.glb"][:4] == b"glTF"
    assert single_runs.first_files["overlay.png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(single_runs.first_files[".metrichmsr-output.json"])["files"] == [
        "overlay.png",
        "result.json",
        "scene.glb",
        "view.html",
    ]


def test_rerun_without_overwrite_is_refused_untouched(single_runs):
    done = single_runs.again
    assert done.returncode == EXIT_INPUT_ERROR and "--overwrite" in done.stderr and done.stderr.count("\n") == 1
    assert single_runs.again_snapshot == single_runs.first_snapshot


def test_overwrite_replaces_our_own_result_folder(single_runs):
    done = single_runs.overwrite
    assert done.returncode == 0, done.stderr
    assert single_runs.overwrite_files == [".metrichmsr-output.json", "overlay.png", "result.json", "scene.glb", "view.html"]
    assert single_runs.stray.returncode == EXIT_INPUT_ERROR, single_runs.stray.stderr
    assert snapshot(single_runs.root) == single_runs.stray_snapshot  # the user's notes.txt made it theirs
    result = read_result(single_runs.out)
    assert_blank_result(result, single_runs.image)
    assert result["camera"]["source"] == "user"
    assert result["camera"]["fx"] == result["camera"]["fy"] == 100.0
    assert result["population"] == "adults"


def test_single_runs_leave_input_and_no_leftovers(single_runs):
    assert snapshot(single_runs.root)[Path("blank.png")] == single_runs.before[Path("blank.png")]
    assert sorted(p.name for p in single_runs.root.iterdir()) == ["blank.png", "result"]
    assert leftovers(single_runs.root) == []


def test_recover_format_bvh_writes_one_bvh_per_person(tmp_path):
    """``--format bvh``: a BVH file per person of result.json, and no people_rigged.glb."""
    photo = np.asarray(Image.open(Path(__file__).resolve().parents[1] / "assets" / "sample.jpg").convert("RGB"))
    Image.fromarray(np.ascontiguousarray(photo[:, :256])).save(tmp_path / "two.png")
    done = run_cli("recover", tmp_path / "two.png", "-o", tmp_path / "out", "--fov", "60", "--depth", "none", "--format", "bvh")
    assert done.returncode == 0, done.stderr
    people = read_result(tmp_path / "out")["people"]
    assert people
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert files == {"result.json", "scene.glb", "overlay.png", "view.html", ".metrichmsr-output.json"} | {
        f"person_{p['id']}.bvh" for p in people
    }
    assert (tmp_path / "out" / "person_0.bvh").read_text().startswith("HIERARCHY\nROOT root\n")
