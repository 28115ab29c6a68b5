"""The 3D viewer: ``view.html``, one self-contained page per result folder, and a local server.

The page inlines three.js and the viewer (``viewer.bundle.js``, built from ``viewer/main.js``
at the repository root by ``npm run build``) and the folder's own data: ``result.json`` or
``tracks.json``, with the folder's ``scene.glb`` (base64; a track's plays its animation). It needs no server and
no network: it opens from the file system. What it shows: the photo as the backdrop of the
camera's own view (people line up with it there), the scene surface and floor, each person
(click: id, height, distance, score), the camera frustum, a metre grid on the floor,
orbit/pan/zoom and WASD fly, a two-click ruler in metres and, for tracks, a timeline that
plays the people's animation and draws each track's path.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import re
from importlib import resources
from pathlib import Path

from metrichmsr.errors import InputError

VIEW_FILE = "view.html"
_SLOT = re.compile(r"\{\{(title|result|tracks|scene|script)\}\}")


@functools.cache
def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _json_for_script(data: dict | None) -> str:
    # "</" would end the <script> data block early; "<\/" is the same JSON string.
    return "" if data is None else json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def view_html(result: dict | None = None, scene_glb: bytes | None = None, tracks: dict | None = None) -> str:
    """The viewer page for one ``result.json`` or one ``tracks.json``, with its ``scene.glb``.

    Args:
        result: result.json's content (schema ``metrichmsr.result/1``).
        scene_glb: scene.glb's bytes, or None: for a result, people as nodes ``person_<i>`` in
            result.json's order; for tracks, nodes ``track_<id>`` and the animation ``clip``.
        tracks: tracks.json's content (schema ``metrichmsr.tracks/1``), instead of ``result``.

    Returns:
        The whole HTML page: it loads nothing from anywhere.
    """
    if (result is None) == (tracks is None):
        raise ValueError("give one of result or tracks")
    record = result if result is not None else tracks
    title = Path(str((record.get("image") or record.get("input") or {}).get("path", "result"))).name
    slots = {
        "title": title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
        "result": _json_for_script(result),
        "tracks": _json_for_script(tracks),
        "scene": base64.b64encode(scene_glb).decode("ascii") if scene_glb else "",
        "script": _asset("viewer.bundle.js"),
    }
    # One pass, so nothing inserted is read as a slot itself.
    return _SLOT.sub(lambda match: slots[match.group(1)], _asset("template.html"))


def folder_view_html(folder: Path) -> str:
    """:func:`view_html` of a result folder's own files (``result.json`` or ``tracks.json``, and
    ``scene.glb`` when there is one); InputError when it holds neither JSON file."""
    result_path, tracks_path, scene_path = folder / "result.json", folder / "tracks.json", folder / "scene.glb"
    try:
        scene = scene_path.read_bytes() if scene_path.is_file() else None
        if result_path.is_file():
            return view_html(result=json.loads(result_path.read_text()), scene_glb=scene)
        if tracks_path.is_file():
            return view_html(tracks=json.loads(tracks_path.read_text()), scene_glb=scene)
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"{folder}: cannot read its results ({error})") from None
    raise InputError(f"{folder}: no result.json or tracks.json here: not a metrichmsr output folder")


def write_view_html(folder: Path) -> Path:
    """Write ``view.html`` into a result folder being written (from its own files); its path."""
    path = folder / VIEW_FILE
    path.write_text(folder_view_html(folder), encoding="utf-8")
    return path


def pages(folder: Path) -> list[str]:
    """The viewer pages a folder offers, relative to it: its own ``view.html`` (one made in
    memory for a result folder written before pages were), else its subfolders' (``recover``
    on a folder of images writes one result folder per image)."""
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    if (folder / VIEW_FILE).is_file() or (folder / "result.json").is_file() or (folder / "tracks.json").is_file():
        return [VIEW_FILE]
    found = sorted(p.relative_to(folder).as_posix() for p in folder.glob(f"*/{VIEW_FILE}"))
    if not found:
        raise InputError(f"{folder}: no view.html, result.json or tracks.json here or one folder down")
    return found


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder as it is, and a page made in memory where a result folder has none."""

    def do_GET(self) -> None:
        folder = Path(self.directory)
        if self.path.split("?")[0] == f"/{VIEW_FILE}" and not (folder / VIEW_FILE).is_file():
            body = folder_view_html(folder).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args) -> None:  # the terminal shows the URL, not every request
        pass


def make_server(folder: Path, port: int, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """A server of ``folder`` on ``host:port`` (0: any free port); InputError when the port is taken."""
    handler = functools.partial(_Handler, directory=str(folder))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as error:
        raise InputError(f"cannot listen on {host}:{port} ({error.strerror}): pass another --port") from None
