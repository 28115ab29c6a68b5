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
from importlib import resources
from pathlib import Path

import numpy as np
import pygltflib

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


_QUANTIZED = 32767  # glTF normalized SHORT: q / 32767 in [-1, 1]


def _quantize_positions(gltf: pygltflib.GLTF2, blob: bytes) -> dict[int, bytes]:
    """Store each plain mesh's positions as normalized 16-bit integers (KHR_mesh_quantization),
    its node placing them back (translation: the mesh's centre, scale: half its largest side):
    to 0.03 mm on a person, 0.3 mm on a 20-m scene surface. Skinned meshes, meshes shared by
    nodes and nodes with a transform of their own stay as they are. Returns the new bytes of
    each buffer view rewritten, by index."""
    node_count = collections.Counter(node.mesh for node in gltf.nodes)
    view_count = collections.Counter(accessor.bufferView for accessor in gltf.accessors)
    rewritten: dict[int, bytes] = {}
    for node in gltf.nodes:
        if node.mesh is None or node.skin is not None or node_count[node.mesh] > 1:
            continue
        if node.matrix or node.translation or node.rotation or node.scale:
            continue
        primitives = gltf.meshes[node.mesh].primitives
        if len(primitives) != 1 or primitives[0].targets:
            continue
        accessor = gltf.accessors[primitives[0].attributes.POSITION]
        view = gltf.bufferViews[accessor.bufferView]
        if accessor.componentType != pygltflib.FLOAT or view_count[accessor.bufferView] > 1 or view.byteStride:
            continue
        start = (view.byteOffset or 0) + (accessor.byteOffset or 0)
        positions = np.frombuffer(blob, np.float32, accessor.count * 3, start).reshape(-1, 3).astype(np.float64)
        low, high = positions.min(axis=0), positions.max(axis=0)
        centre, half = (low + high) / 2, max(float((high - low).max()) / 2, 1e-6)
        stored = np.zeros((len(positions), 4), np.int16)  # the 4th: padding, as vertex strides are 4-byte multiples
        stored[:, :3] = np.round((positions - centre) / half * _QUANTIZED)
        rewritten[accessor.bufferView] = stored.tobytes()
        view.byteLength, view.byteStride, accessor.byteOffset = stored.nbytes, 8, None
        accessor.componentType, accessor.normalized = pygltflib.SHORT, True
        accessor.min, accessor.max = stored[:, :3].min(axis=0).tolist(), stored[:, :3].max(axis=0).tolist()
        node.translation, node.scale = centre.tolist(), [half] * 3
    if rewritten:
        for listed in ("extensionsUsed", "extensionsRequired"):
            setattr(gltf, listed, sorted({*(getattr(gltf, listed) or []), "KHR_mesh_quantization"}))
    return rewritten


def page_glb(glb: bytes) -> bytes:
    """The copy of a ``scene.glb`` that the page inlines: the same scene in about half the bytes.

    The page holds it as base64, and a person is 24 bytes a vertex (positions and normals;
    triangles are shared). The copy drops the normals, which three.js computes in a few
    milliseconds, and stores plain meshes' positions in 16 bits (:func:`_quantize_positions`):
    8 bytes a vertex. Everything else (nodes, names, skins, animations, the photo) is kept.
    """
    gltf = pygltflib.GLTF2.load_from_bytes(glb)
    blob = gltf.binary_blob()
    for mesh in gltf.meshes:
        for primitive in mesh.primitives:
            primitive.attributes.NORMAL = None
            for target in primitive.targets or []:
                target.pop("NORMAL", None)
    rewritten = _quantize_positions(gltf, blob)

    # Accessors still referenced, in their order; then the buffer views they and images use.
    def primitive_accessors(primitive: pygltflib.Primitive) -> list[int | None]:
        found = [*vars(primitive.attributes).values(), primitive.indices]
        return found + [a for target in primitive.targets or [] for a in target.values()]

    referenced = {a for mesh in gltf.meshes for p in mesh.primitives for a in primitive_accessors(p)}
    referenced |= {skin.inverseBindMatrices for skin in gltf.skins}
    referenced |= {a for anim in gltf.animations for s in anim.samplers for a in (s.input, s.output)}
    accessors = _renumbering(referenced)
    gltf.accessors = [gltf.accessors[old] for old in accessors]
    sparse = [a.sparse for a in gltf.accessors if a.sparse]
    views = _renumbering(
        [a.bufferView for a in gltf.accessors]
        + [v for s in sparse for v in (s.indices.bufferView, s.values.bufferView)]
        + [image.bufferView for image in gltf.images]
    )
    data = bytearray()
    for old in views:
        view = gltf.bufferViews[old]
        data.extend(b"\0" * (-len(data) % 4))  # glTF: accessors' data 4-byte aligned
        start = view.byteOffset or 0
        data.extend(rewritten.get(old, blob[start : start + view.byteLength]))
        view.byteOffset = len(data) - view.byteLength
    gltf.bufferViews = [gltf.bufferViews[old] for old in views]

    for accessor in gltf.accessors:
        accessor.bufferView = views.get(accessor.bufferView)
    for s in sparse:
        s.indices.bufferView, s.values.bufferView = views[s.indices.bufferView], views[s.values.bufferView]
    for image in gltf.images:
        image.bufferView = views.get(image.bufferView)
    for mesh in gltf.meshes:
        for primitive in mesh.primitives:
            for name, accessor in vars(primitive.attributes).items():
                setattr(primitive.attributes, name, accessors.get(accessor))
            primitive.indices = accessors.get(primitive.indices)
            primitive.targets = [{k: accessors[a] for k, a in target.items()} for target in primitive.targets or []]
    for skin in gltf.skins:
        skin.inverseBindMatrices = accessors.get(skin.inverseBindMatrices)
    for anim in gltf.animations:
        for sampler in anim.samplers:
            sampler.input, sampler.output = accessors[sampler.input], accessors[sampler.output]
    gltf.buffers[0].byteLength = len(data)
    gltf.set_binary_blob(bytes(data))
    return b"".join(gltf.save_to_bytes())


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
