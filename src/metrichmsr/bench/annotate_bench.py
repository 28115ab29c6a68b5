"""``metrichmsr annotate`` at scale: throughput with 1 and 2 Ray workers, memory per worker, and
the time to resume a finished run of 10,000 images.

    python -m metrichmsr.bench.annotate_bench [--n 200] [--runs 1x1,1x2,2x1] [--resume-rows 10000]

The images are 1024x768 photos of people: a crop of ``assets/sample.jpg`` (a few people) scaled
to the frame's height, at a different place in each frame, so detection and HumanMoE dominate.
Each run (``WORKERSxTHREADS``: Ray workers, torch threads each) annotates the same images into
a fresh folder; images/s counts the work after Ray and the models started (their start-up is
its own column), the speed-up is against the first run. The workers' CPU seconds per image
(all their threads) is what another job on the same cores does not inflate: on idle cores N
one-thread workers reach about N / (CPU s per image) images/s. The resume time is the whole
command (``metrichmsr annotate`` in a new process, imports included) on a finished run whose
manifest holds ``--resume-rows`` rows: it stats every input and reads the manifest, and runs nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLE = Path(__file__).parents[3] / "assets" / "sample.jpg"


def make_images(folder: Path, n: int, size: tuple[int, int] = (1024, 768)) -> None:
    """``n`` frames of ``size`` (W, H), each a different crop of the sample photo on grey."""
    from PIL import Image

    sample = Image.open(SAMPLE).convert("RGB")
    width, height = size
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        x = (i * 97) % (sample.width - 300)
        crop = sample.crop((x, 0, x + 300, sample.height)).resize((round(300 * height / sample.height), height))
        frame = Image.new("RGB", size, (90 + i % 60, 90, 100))
        frame.paste(crop, ((i * 53) % (width - crop.width), 0))
        frame.save(folder / f"frame{i:04d}.jpg", quality=90)


def throughput(images: Path, out: Path, workers: int, threads: int) -> dict:
    """One annotate run over ``images`` into the new folder ``out``."""
    from metrichmsr.annotate import Options, annotate, file_md5, prepare
    from metrichmsr.defaults import HUMANMOE_WEIGHTS

    items = prepare(images, out)
    options = Options(weights=str(HUMANMOE_WEIGHTS), weights_md5=file_md5(HUMANMOE_WEIGHTS), device="cpu")
    summary = annotate(items, out, options, input_spec=images, workers=workers, threads=threads, progress=False)
    return {
        "workers": workers,
        "threads": threads,
        "images": summary.ok + summary.skipped,
        "ok": summary.ok,
        "start_s": summary.load_s,
        "seconds": summary.seconds,
        "rate": summary.rate,
        "peak_rss_mb": max(s["peak_rss_mb"] for s in summary.worker_stats),
        "cpu_per_image": sum(s["cpu_s"] for s in summary.worker_stats) / max(1, summary.ok + summary.skipped),
    }


def resume_time(folder: Path, rows: int) -> float:
    """Seconds ``metrichmsr annotate`` takes on a finished run of ``rows`` images (synthesised:
    tiny files, their result.json and ok rows)."""
    from metrichmsr.annotate import MANIFEST_FILE, RUN_FILE, SCHEMA, Options, file_md5, options_digest
    from metrichmsr.defaults import HUMANMOE_WEIGHTS

    images, out = folder / "images", folder / "out"
    digest = options_digest(Options(weights_md5=file_md5(HUMANMOE_WEIGHTS)))
    lines = []
    for i in range(rows):
        rel = f"d{i // 1000:02d}/img{i:05d}.jpg"
        path = images / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(i.to_bytes(4, "little"))
        (out / rel[:-4]).mkdir(parents=True, exist_ok=True)
        (out / rel[:-4] / "result.json").write_text("{}")
        stat = path.stat()
        row = {"path": rel, "output": rel[:-4], "options": digest, "status": "ok", "attempt": 1}
        lines.append(json.dumps({**row, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}) + "\n")
    (out / MANIFEST_FILE).write_text("".join(lines))
    (out / RUN_FILE).write_text(json.dumps({"schema": SCHEMA}))
    started = time.perf_counter()
    ran = subprocess.run(
        [sys.executable, "-m", "metrichmsr", "annotate", str(images), "-o", str(out), "--workers", "0", "--device", "cpu"],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if ran.returncode != 0 or f"{rows} already done" not in ran.stdout:
        raise RuntimeError(f"the resume did not find the run finished: {ran.stdout}{ran.stderr}")
    return seconds


def table(runs: list[dict]) -> str:
    base = runs[0]["rate"] if runs else float("nan")
    lines = [
        "| workers x threads | images | ok | start-up s | total s | images/s | speed-up | worker CPU s / image "
        "| peak RSS per worker (MiB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        lines.append(
            f"| {r['workers']} x {r['threads']} | {r['images']} | {r['ok']} | {r['start_s']:.1f} | {r['seconds']:.1f} "
            f"| {r['rate']:.3f} | {r['rate'] / base:.2f}x | {r['cpu_per_image']:.2f} | {r['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="images of 1024x768 (default 200)")
    parser.add_argument("--runs", default="1x1,1x2,2x1", help="WORKERSxTHREADS, comma-separated (default 1x1,1x2,2x1)")
    parser.add_argument("--resume-rows", type=int, default=10000, help="manifest rows of the resume measurement")
    args = parser.parse_args(argv)
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="annotate-bench-") as tmp:
        tmp = Path(tmp)
        make_images(tmp / "images", args.n)
        configs = [tuple(int(x) for x in run.split("x")) for run in args.runs.split(",")]
        runs = [throughput(tmp / "images", tmp / f"out{w}x{t}", w, t) for w, t in configs]
        resume_s = resume_time(tmp / "resume", args.resume_rows) if args.resume_rows else float("nan")
    print(table(runs))
    print(f"\nresume of a finished run with {args.resume_rows} manifest rows: {resume_s:.2f} s (the whole command)")
    speedup = runs[-1]["rate"] / runs[0]["rate"] if len(runs) > 1 else 1.0
    first, last = (f"{r['workers']} x {r['threads']}" for r in (runs[0], runs[-1]))
    print(
        f"summary: {args.n} images of 1024x768, {last} {speedup:.2f}x the images/s of {first}; "
        f"resume {resume_s:.2f} s for {args.resume_rows} rows; "
        f"load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, after {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
