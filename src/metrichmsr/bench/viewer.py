"""The viewer page in a real browser: how big it is, how fast it opens, and its pictures.

``python -m metrichmsr.bench.viewer OUT [OUT ...] [--screenshots DIR]`` opens each result
folder's ``view.html`` from the file system in headless Chromium (Debian's ``chromium``, driven by
``playwright``; ``make setup`` installs both) and prints a table: page size, people, the time
from navigation to the first frame drawn (median of 3 loads), console errors. Targets (issue
24): at most 15 MB, under 2 s. With ``--screenshots`` it saves the camera's view and an
orbit view of the first folder (the README's pictures). ``open_page`` is what the browser
test drives too.
"""

from __future__ import annotations

import argparse
import base64
import io
import shutil
import statistics
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from metrichmsr.viewer import VIEW_FILE

MAX_PAGE_MB = 15.0
MAX_FIRST_FRAME_S = 2.0
LOADS = 3
# No GPU here: WebGL runs on SwiftShader, which Chromium enables only when asked. --no-sandbox:
# Chromium's sandbox cannot start as root in a container.
CHROMIUM_ARGS = ("--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader")


def browser_missing() -> str | None:
    """Why the browser cannot run here (None when it can)."""
    if shutil.which("chromium") is None:
        return "no chromium on PATH (make setup installs Debian's chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "no playwright (pip install -e '.[test]')"
    return None


@contextmanager
def open_page(path: Path, width: int = 1280, height: int = 720) -> Iterator[tuple[object, list[str]]]:
    """A headless Chromium page showing ``path`` (a view.html) once the viewer is ready.

    Yields ``(page, problems)``: the playwright page and the console errors and page errors
    seen so far (the list keeps filling while the page is open). The viewer's state is
    ``window.metrichmsrViewer`` (see viewer/main.js).
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
            problems: list[str] = []
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(Path(path).resolve().as_uri())
            page.wait_for_function("window.metrichmsrViewer !== undefined", timeout=60_000)
            yield page, problems
        finally:
            browser.close()


def canvas_image(page) -> np.ndarray:
    """The viewer's last drawn frame, ``(H, W, 3)`` uint8, without the page's panels."""
    page.evaluate("window.metrichmsrViewer.rendered()")
    data_url = page.evaluate("document.querySelector('#view canvas').toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))


def _first_frame_s(path: Path) -> tuple[float, int, list[str]]:
    times, problems, people = [], [], 0
    for _ in range(LOADS):
        with open_page(path) as (page, seen):
            state = page.evaluate(
                "(({ready, firstFrameMs, peopleCount}) => ({ready, firstFrameMs, peopleCount}))(window.metrichmsrViewer)"
            )
            if not state["ready"]:
                seen.append(page.evaluate("window.metrichmsrViewer.error"))
            times.append(state["firstFrameMs"] / 1000 if state["ready"] else float("nan"))
            people = state.get("peopleCount") or 0
            problems = list(seen)
    return statistics.median(times), people, problems


def save_screenshots(path: Path, out_dir: Path) -> list[Path]:
    """``viewer_camera.jpg`` (the camera's view, the photo behind) and ``viewer_orbit.jpg``
    (orbited a little to the side and above) of one view.html, into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "viewer_camera.jpg", out_dir / "viewer_orbit.jpg"]
    with open_page(path) as (page, _):
        page.evaluate("window.metrichmsrViewer.rendered()")
        page.screenshot(path=str(written[0]), quality=85)
        # Dragging left and down turns the view to the right and lifts it above the floor.
        page.mouse.move(640, 360)
        page.mouse.down()
        page.mouse.move(560, 420, steps=8)
        page.mouse.up()
        page.evaluate("window.metrichmsrViewer.rendered()")
        page.screenshot(path=str(written[1]), quality=85)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metrichmsr.bench.viewer", description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", type=Path, nargs="+", help="recover/track output folders holding view.html")
    parser.add_argument("--screenshots", type=Path, metavar="DIR", help="save the first folder's viewer pictures here")
    args = parser.parse_args(argv)
    missing = browser_missing()
    if missing:
        parser.error(missing)
    pages = [folder / VIEW_FILE for folder in args.folders]
    for page in pages:
        if not page.is_file():
            parser.error(f"{page}: no such file (recover and track write it)")
    print(f"| page | MB | people | first frame (s, median of {LOADS}) | console errors |")
    print("| --- | --- | --- | --- | --- |")
    met = True
    for page in pages:
        size_mb = page.stat().st_size / 1e6
        first_s, people, problems = _first_frame_s(page)
        met &= size_mb <= MAX_PAGE_MB and first_s < MAX_FIRST_FRAME_S and not problems
        print(f"| {page} | {size_mb:.1f} | {people} | {first_s:.2f} | {len(problems)} |")
        for problem in problems:
            print(f"  console: {problem}")
    if args.screenshots:
        for written in save_screenshots(pages[0], args.screenshots):
            print(f"wrote {written}")
    targets = f"<= {MAX_PAGE_MB:g} MB, first frame < {MAX_FIRST_FRAME_S:g} s, no console errors"
    print(f"viewer: targets ({targets}) {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
