"""The 3D viewer: ``view.html``, one self-contained page per result folder, and a local server.

The page inlines three.js and the viewer (``viewer.bundle.js``, built from ``viewer/main.js``
at the repository root by ``npm run build``) and the folder's own data: ``result.json`` or
``tracks.json``, with the folder's ``scene.glb`` (base64, as :func:`page_glb` lightens it; a
track's plays its animation). It needs no server and no network: it opens from the file system.
What it shows: the photo as the backdrop of the camera's own view (people line up with it
there), the scene surface and floor, each person (click: id, height, distance, score), the
camera frustum, a metre grid on the floor, orbit/pan/zoom and WASD fly, a two-click ruler in
metres and, for tracks, a timeline that plays the people's animation and draws each track's path.
"""

from __future__ import annotations

import base64
import collections
import functools
import http.server
import json
import re
import struct
from importlib import resources
from pathlib import Path

import numpy as np

from metrichmsr.errors import InputError

VIEW_FILE = "view.html"
_SLOT = re.compile(r"\{\{(title|result|tracks|scene|script)\}\}")


@functools.cache
def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _json_for_script(data: dict | None) -> str:
    # "</" would end the <script> data block early; "<\/" is the same JSON string.
    return "" if data is None else json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def _renumbering(indices) -> dict[int, int]:
    """Old index -> new index for the distinct indices given (None left out), in their order."""
    return {old: new for new, old in enumerate(sorted(set(indices) - {None}))}


_GLB_MAGIC, _JSON_CHUNK, _BIN_CHUNK = b"glTF", 0x4E4F534A, 0x004E4942
_SHORT, _FLOAT = 5122, 5126  # glTF component types
_QUANTIZED = 32767  # glTF normalized SHORT: q / 32767 in [-1, 1]


def _read_glb(glb: bytes) -> tuple[dict, bytes]:
    """A glTF binary's JSON and its binary chunk (b"" when it has none)."""
    if len(glb) < 20 or glb[:4] != _GLB_MAGIC:
        raise ValueError("not a glTF binary")
    json_length, kind = struct.unpack_from("<II", glb, 12)
    if kind != _JSON_CHUNK:
        raise ValueError("a glTF binary's first chunk is its JSON")
    document = json.loads(glb[20 : 20 + json_length])
    rest = 20 + json_length
    if rest + 8 > len(glb):
        return document, b""
    bin_length, kind = struct.unpack_from("<II", glb, rest)
    return document, glb[rest + 8 : rest + 8 + bin_length] if kind == _BIN_CHUNK else b""


def _write_glb(document: dict, blob: bytes) -> bytes:
    """The glTF binary of a JSON document and its binary chunk (chunks padded to 4 bytes)."""
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    blob += b"\0" * (-len(blob) % 4)
    chunks = struct.pack("<II", len(text), _JSON_CHUNK) + text
    if blob:
        chunks += struct.pack("<II", len(blob), _BIN_CHUNK) + blob
    return _GLB_MAGIC + struct.pack("<II", 2, 12 + len(chunks)) + chunks


def _quantize_positions(document: dict, blob: bytes) -> dict[int, bytes]:
    """Store each plain mesh's positions as normalized 16-bit integers (KHR_mesh_quantization),
    its node placing them back (translation: the mesh's centre, scale: half its largest side):
    to 0.03 mm on a person, 0.3 mm on a 20-m scene surface. Skinned meshes, meshes shared by
    nodes and nodes with a transform of their own stay as they are. Returns the new bytes of
    each buffer view rewritten, by index."""
    nodes, accessors, views = document.get("nodes", []), document.get("accessors", []), document.get("bufferViews", [])
    node_count = collections.Counter(node.get("mesh") for node in nodes)
    view_count = collections.Counter(accessor.get("bufferView") for accessor in accessors)
    rewritten: dict[int, bytes] = {}
    for node in nodes:
        if "mesh" not in node or "skin" in node or node_count[node["mesh"]] > 1:
            continue
        if {"matrix", "translation", "rotation", "scale"} & node.keys():
            continue
        primitives = document["meshes"][node["mesh"]]["primitives"]
        if len(primitives) != 1:
            continue
        accessor = accessors[primitives[0]["attributes"]["POSITION"]]
        view_index = accessor.get("bufferView")
        if view_index is None or accessor["componentType"] != _FLOAT or view_count[view_index] > 1:
            continue
        view = views[view_index]
        if view.get("byteStride"):
            continue
        start = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
        positions = np.frombuffer(blob, np.float32, accessor["count"] * 3, start).reshape(-1, 3).astype(np.float64)
        low, high = positions.min(axis=0), positions.max(axis=0)
        centre, half = (low + high) / 2, max(float((high - low).max()) / 2, 1e-6)
        stored = np.zeros((len(positions), 4), np.int16)  # the 4th: padding, as vertex strides are 4-byte multiples
        stored[:, :3] = np.round((positions - centre) / half * _QUANTIZED)
        rewritten[view_index] = stored.tobytes()
        view.update(byteLength=stored.nbytes, byteStride=8)
        accessor.pop("byteOffset", None)
        accessor.update(componentType=_SHORT, normalized=True)
        accessor.update(min=stored[:, :3].min(axis=0).tolist(), max=stored[:, :3].max(axis=0).tolist())
        node.update(translation=centre.tolist(), scale=[half] * 3)
    if rewritten:
        for listed in ("extensionsUsed", "extensionsRequired"):
            document[listed] = sorted({*document.get(listed, []), "KHR_mesh_quantization"})
    return rewritten


def page_glb(glb: bytes) -> bytes:
    """The copy of a ``scene.glb`` that the page inlines: the same scene in about half the bytes.

    The page holds it as base64, and a person is 24 bytes a vertex (positions and normals;
    triangles are shared). The copy drops the normals, which three.js computes in a few
    milliseconds, and stores plain meshes' positions in 16 bits (:func:`_quantize_positions`):
    8 bytes a vertex. Everything else (nodes, names, skins, animations, the photo) is kept.
    It works on the JSON as it is: a track's scene.glb holds thousands of accessors. What
    ``scene.export`` and ``scene.rig_export`` write has no morph targets or sparse
    accessors, and a glb with them is refused.
    """
    document, blob = _read_glb(glb)
    primitives = [p for mesh in document.get("meshes", []) for p in mesh["primitives"]]
    if any("targets" in p for p in primitives) or any("sparse" in a for a in document.get("accessors", [])):
        raise ValueError("a glb with morph targets or sparse accessors: not one scene.glb is written as")
    for primitive in primitives:
        primitive["attributes"].pop("NORMAL", None)
    rewritten = _quantize_positions(document, blob)

    # Accessors still referenced, in their order; then the buffer views they and images use.
    referenced = [a for p in primitives for a in (*p["attributes"].values(), p.get("indices"))]
    referenced += [skin.get("inverseBindMatrices") for skin in document.get("skins", [])]
    samplers = [s for animation in document.get("animations", []) for s in animation["samplers"]]
    referenced += [a for s in samplers for a in (s["input"], s["output"])]
    accessor_index = _renumbering(referenced)
    accessors = [document["accessors"][old] for old in accessor_index]
    images = document.get("images", [])
    view_index = _renumbering([owner.get("bufferView") for owner in [*accessors, *images]])
    data = bytearray()
    for old in view_index:
        view = document["bufferViews"][old]
        data.extend(b"\0" * (-len(data) % 4))  # glTF: accessors' data 4-byte aligned
        start = view.get("byteOffset", 0)
        data.extend(rewritten.get(old, blob[start : start + view["byteLength"]]))
        view["byteOffset"] = len(data) - view["byteLength"]
    document["bufferViews"] = [document["bufferViews"][old] for old in view_index]
    for owner in [*accessors, *images]:
        if "bufferView" in owner:
            owner["bufferView"] = view_index[owner["bufferView"]]
    document["accessors"] = accessors
    for primitive in primitives:
        primitive["attributes"] = {name: accessor_index[a] for name, a in primitive["attributes"].items()}
        if "indices" in primitive:
            primitive["indices"] = accessor_index[primitive["indices"]]
    for skin in document.get("skins", []):
        if "inverseBindMatrices" in skin:
            skin["inverseBindMatrices"] = accessor_index[skin["inverseBindMatrices"]]
    for sampler in samplers:
        sampler["input"], sampler["output"] = accessor_index[sampler["input"]], accessor_index[sampler["output"]]
    if document.get("buffers"):
        document["buffers"][0]["byteLength"] = len(data)
    return _write_glb(document, bytes(data))


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
        "scene": base64.b64encode(page_glb(scene_glb)).decode("ascii") if scene_glb else "",
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
