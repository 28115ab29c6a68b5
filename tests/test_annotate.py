"""`metrichmsr annotate` as a user runs it (a subprocess), on a folder tree of 20 small images:
2 Ray workers write exactly the single-process results; a run killed halfway and resumed ends
complete with one row per image; a bad file is a skipped row with its reason, tried once more
on the next run and then left; bad input fails fast and touches nothing."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from metrichmsr.annotate import MANIFEST_FILE, Item, Manifest, list_inputs, output_names, plan, read_intrinsics_file
from test_cli import EXIT_INPUT_ERROR, EXIT_SOME_FAILED, run_cli, snapshot

SAMPLE = Path(__file__).parents[1] / "assets" / "sample.jpg"
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """20 images in a tree: 2 small crops of the sample photo (people), 17 plain images, 1 bad file."""
    root = tmp_path_factory.mktemp("annotate") / "photos"
    (root / "street").mkdir(parents=True)
    (root / "plain" / "deeper").mkdir(parents=True)
    sample = Image.open(SAMPLE)
    for i, x in enumerate((0, 640)):
        sample.crop((x, 0, x + 200, 332)).save(root / "street" / f"crop{i}.jpg", quality=90)
    for i in range(17):
        folder = root / "plain" / ("deeper" if i % 2 else "")
        Image.new("RGB", (48 + 4 * i, 40), (10 * i, 120, 200 - 10 * i)).save(folder / f"plain{i:02d}.png")
    (root / "plain" / "broken.jpg").write_text("not an image")
    return root


def rows_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / MANIFEST_FILE).read_text().splitlines()]


def results(out: Path) -> dict:
    return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("result.json"))}


def same_results(a: dict, b: dict, tolerance: float = 1e-4) -> bool:
    """Whether two ``results`` hold the same files and the same JSON in each, numbers within
    ``tolerance``: a Ray worker runs torch on one thread and one process on two, which sums in
    another order, so the last digit written can differ."""

    def close(x, y) -> bool:
        if isinstance(x, dict):
            return isinstance(y, dict) and x.keys() == y.keys() and all(close(x[k], y[k]) for k in x)
        if isinstance(x, list):
            return isinstance(y, list) and len(x) == len(y) and all(close(u, v) for u, v in zip(x, y))
        if isinstance(x, float) or isinstance(y, float):
            return isinstance(x, (int, float)) and isinstance(y, (int, float)) and abs(x - y) <= tolerance
        return x == y

    return a.keys() == b.keys() and all(close(json.loads(a[k]), json.loads(b[k])) for k in a)


def annotate_cmd(dataset: Path, out: Path, *flags) -> list[str]:
    return [sys.executable, "-m", "metrichmsr", "annotate", str(dataset), "-o", str(out), *map(str, flags)]


@pytest.fixture(scope="module")
def resumed(dataset, tmp_path_factory):
    """A single-process run killed (SIGKILL) once a few rows are written, then run again twice."""
    out = tmp_path_factory.mktemp("resumed") / "out"
    process = subprocess.Popen(
        annotate_cmd(dataset, out, "--workers", 0, "--batch", 1),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYOPENGL_PLATFORM": "egl"},
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        manifest = out / MANIFEST_FILE
        if manifest.is_file() and manifest.read_text().count("\n") >= 5:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    process.wait(timeout=30)
    killed_rows = rows_of(out)
    second = run_cli("annotate", dataset, "-o", out, "--workers", 0, timeout=300)
    after_second = rows_of(out)
    third = run_cli("annotate", dataset, "-o", out, "--workers", 0, timeout=300)
    return out, process.returncode, killed_rows, second, after_second, third


def test_killed_run_resumes_complete_without_duplicates(resumed):
    out, killed_rc, killed_rows, second, after_second, third = resumed
    assert killed_rc == -signal.SIGKILL and 5 <= len(killed_rows) < 20, "the first run was killed halfway"
    assert second.returncode == EXIT_SOME_FAILED, second.stderr  # the broken file
    paths = [row["path"] for row in after_second]
    assert len(paths) == len(set(paths)) == 20
    assert {r["path"] for r in after_second if r["status"] == "ok"} == {r["path"] for r in after_second} - {"plain/broken.jpg"}
    assert len(results(out)) == 19
    done_before = {r["path"] for r in killed_rows if r["status"] == "ok"}
    assert f"{len(done_before)} already done" in second.stdout
    kept = {r["path"]: r for r in after_second}
    assert all(kept[r["path"]] == r for r in killed_rows if r["status"] == "ok")  # not redone


def test_bad_file_is_skipped_with_its_reason_and_retried_once(resumed):
    out, _, killed_rows, second, after_second, third = resumed
    broken = [r for r in rows_of(out) if r["path"] == "plain/broken.jpg"]
    assert len(broken) == 1 and broken[0]["status"] == "skipped"
    assert "not an image file" in broken[0]["reason"]
    tries = [r["attempt"] for r in killed_rows + after_second if r["path"] == "plain/broken.jpg"]
    assert broken[0]["attempt"] == 2 or tries == [1]  # killed before or after its first try
    assert "skipped plain/broken.jpg" in second.stderr or "skipped plain/broken.jpg" in third.stderr
    # The third run finds everything done or given up on: nothing runs, nothing changes.
    assert "0 image(s) annotated" in third.stdout and "skipped for good" in third.stdout
    assert rows_of(out) == after_second or broken[0]["attempt"] == 2
    assert third.returncode == EXIT_SOME_FAILED


def test_manifest_rows_say_what_was_done(resumed):
    rows = {r["path"]: r for r in rows_of(resumed[0])}
    crop = rows["street/crop0.jpg"]
    assert crop["people"] >= 1 and crop["camera_source"] in ("default", "estimated")
    assert len(crop["sha256"]) == 64 and len(crop["weights_md5"]) == 32 and crop["version"]
    assert set(crop["timings"]) == {"read_s", "infer_s", "write_s", "total_s"}
    assert rows["plain/plain00.png"]["people"] == 0 and rows["plain/plain00.png"]["output"] == "plain/plain00"
    result = json.loads((resumed[0] / "street" / "crop0" / "result.json").read_text())
    assert result["schema"] == "metrichmsr.result/1" and result["image"]["path"] == "street/crop0.jpg"
    assert not list(resumed[0].rglob("scene.glb")) and not list(resumed[0].rglob("overlay.png"))


@needs_ray
def test_two_ray_workers_equal_one_process(dataset, resumed, tmp_path):
    out = tmp_path / "ray"
    ran = run_cli("annotate", dataset, "-o", out, "--workers", 2, "--batch", 2, timeout=400)
    assert ran.returncode == EXIT_SOME_FAILED, ran.stderr
    assert "2 worker(s)" in ran.stdout
    assert same_results(results(out), results(resumed[0]))
    workers = {r["worker"] for r in rows_of(out)}
    assert len(workers) == 2


def test_side_file_intrinsics_and_extra_files(dataset, tmp_path):
    images = tmp_path / "one"
    images.mkdir()
    (images / "crop.jpg").write_bytes((dataset / "street" / "crop0.jpg").read_bytes())
    side = tmp_path / "k.csv"
    side.write_text("path,fx,fy,cx,cy\ncrop.jpg,400,400,99.5,165.5\n")
    out = tmp_path / "out"
    ran = run_cli("annotate", images, "-o", out, "--workers", 0, "--intrinsics-file", side, "--with-glb", "--with-overlay")
    assert ran.returncode == 0, ran.stderr
    assert sorted(p.name for p in (out / "crop").iterdir()) == ["overlay.png", "result.json", "scene.glb"]
    camera = json.loads((out / "crop" / "result.json").read_text())["camera"]
    assert camera["source"] == "user" and camera["fx"] == 400
    assert rows_of(out)[0]["camera_source"] == "user"


# --- bad input: one line, exit 2, nothing touched --------------------------------------------


@pytest.mark.parametrize(
    "case",
    ["empty folder", "missing", "binary list file", "foreign output", "output inside input", "batch 0", "unknown image"],
)
def test_bad_input_fails_fast(case, dataset, tmp_path):
    (tmp_path / "empty").mkdir()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    (tmp_path / "list.txt").write_bytes(b"\xff\xfe\x00bad")
    (tmp_path / "side.csv").write_text("path,fx,fy,cx,cy\nnowhere.jpg,500,500,10,10\n")
    args = {
        "empty folder": [tmp_path / "empty", "-o", tmp_path / "out"],
        "missing": [tmp_path / "nothing", "-o", tmp_path / "out"],
        "binary list file": [tmp_path / "list.txt", "-o", tmp_path / "out"],
        "foreign output": [dataset, "-o", foreign],
        "output inside input": [dataset, "-o", dataset / "out"],
        "batch 0": [dataset, "-o", tmp_path / "out", "--batch", "0"],
        "unknown image": [dataset, "-o", tmp_path / "out", "--intrinsics-file", tmp_path / "side.csv"],
    }[case]
    before, inputs = snapshot(tmp_path), snapshot(dataset)
    started = time.monotonic()
    ran = run_cli("annotate", *args, "--workers", 0)
    assert ran.returncode == EXIT_INPUT_ERROR, ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1 and ran.stderr.startswith("metrichmsr: error:")
    assert snapshot(tmp_path) == before and snapshot(dataset) == inputs
    assert time.monotonic() - started < 20


# --- the pieces ---------------------------------------------------------------------------------


def test_inputs_from_a_list_file_and_a_glob(dataset, tmp_path):
    listing = tmp_path / "list.txt"
    relative = os.path.relpath(dataset / "street" / "crop0.jpg", tmp_path)  # from the list file's folder
    listing.write_text(f"# two images\n{relative}\n\n{dataset / 'plain' / 'plain00.png'}\n")
    root, paths = list_inputs(listing)
    assert root == dataset.resolve() and [p.name for p in paths] == ["plain00.png", "crop0.jpg"]
    root, paths = list_inputs(f"{dataset}/**/*.png")
    assert len(paths) == 17 and all(p.suffix == ".png" for p in paths)


def test_output_names_keep_colliding_suffixes():
    assert output_names(["a/b.jpg", "a/B.png", "c.jpg"]) == {"a/b.jpg": "a/b.jpg", "a/B.png": "a/B.png", "c.jpg": "c"}


def test_intrinsics_side_file(tmp_path):
    side = tmp_path / "k.json"
    side.write_text(json.dumps({"a/x.jpg": [500, 500, 32, 24], "y.jpg": [600, 600, 32, 24]}))
    assert read_intrinsics_file(side, ["a/x.jpg", "b/y.jpg"]) == {
        "a/x.jpg": (500.0, 500.0, 32.0, 24.0),
        "b/y.jpg": (600.0,) * 2 + (32.0, 24.0),
    }


def test_plan_retries_a_skipped_image_once(tmp_path):
    image = tmp_path / "a.png"
    Image.new("RGB", (32, 32)).save(image)
    stat = image.stat()
    item = Item(image, "a.png", "a")
    manifest = Manifest(tmp_path)
    row = {"path": "a.png", "output": "a", "options": "o", "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    manifest.append({**row, "status": "skipped", "attempt": 1})
    assert plan([item], manifest, "o", tmp_path).todo == [(item, 2)]
    assert plan([item], manifest, "other options", tmp_path).todo == [(item, 1)]
    manifest.append({**row, "status": "skipped", "attempt": 2})
    assert plan([item], manifest, "o", tmp_path).given_up == 1
    manifest.append({**row, "status": "ok", "attempt": 2})
    assert plan([item], manifest, "o", tmp_path).todo == [(item, 2)]  # result.json is missing: again
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "result.json").write_text("{}")
    assert plan([item], manifest, "o", tmp_path).done == 1
    manifest.close()
    assert Manifest(tmp_path).compact() == 1


def test_the_options_digest_of_population_all_is_as_before_the_flag():
    """A run started before --population existed resumes with "all", what it did then: that
    leaves the digest as it was; "adults" and "auto" (the default since) change it, so such a
    run's images are done again with them."""
    import hashlib
    from dataclasses import asdict, replace

    from metrichmsr.annotate import Options, options_digest

    options = Options(camera={"fov_deg": 60.0}, weights_md5="abc", population="all")
    before = {k: v for k, v in asdict(options).items() if k not in ("weights", "device", "population")}
    assert options_digest(options) == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    assert options_digest(replace(options, population="adults")) != options_digest(options)
    assert options_digest(replace(options, population="auto")) != options_digest(options)
    assert Options(camera={"fov_deg": 60.0}).population == "auto"
