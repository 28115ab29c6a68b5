"""The one metric 3D overlay (the paper's fourth idea): people, camera and scene exported as one
glTF binary (``.glb``) that opens in Blender and three.js, the people drawn back over the
photo, and the scene depth as a colour-mapped picture (:func:`write_overlay` writes them all).

Inputs are in the OpenCV camera frame (x right, y down, z forward), metres. glTF is y-up with
cameras looking down -z, so every vertex is turned 180 degrees about x on the way out:
``(x, y, z) -> (x, -y, -z)``. A proper rotation, so triangle winding (outward normals) is kept.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
import trimesh
from PIL import Image

from metrichmsr._outputs import write_atomic
from metrichmsr.geometry import rays_z1
from metrichmsr.render import Mesh, as_colors, as_intrinsics, as_meshes, srgb_to_linear
from metrichmsr.scene.floor import FloorPlane

# (x, y, z) OpenCV camera frame -> (x, -y, -z) glTF.
OPENCV_TO_GLTF = np.array([1.0, -1.0, -1.0])
_RESERVED_NAMES = ("camera", "image_plane", "scene", "floor")
_FLOOR_SRGBA = (0.55, 0.6, 0.65, 0.35)
_MAX_TEXTURE_SIDE = 1024
_FRUSTUM_SRGB = (0.2, 0.2, 0.2)


def _image_corners(K: np.ndarray, image_size: tuple[int, int], depth_m: float) -> np.ndarray:
    """``(4, 3)`` OpenCV-frame points at depth ``depth_m`` seen through the image's outer
    corners (pixel edges, so the frustum covers whole pixels): top-left, top-right,
    bottom-right, bottom-left."""
    W, H = image_size
    u = np.array([-0.5, W - 0.5, W - 0.5, -0.5])
    v = np.array([-0.5, -0.5, H - 0.5, H - 0.5])
    x = (u - K[0, 2]) / K[0, 0] * depth_m
    y = (v - K[1, 2]) / K[1, 1] * depth_m
    return np.stack([x, y, np.full(4, depth_m)], axis=1)


def camera_frustum_mesh(K: np.ndarray, image_size: tuple[int, int], depth_m: float = 0.5) -> trimesh.Trimesh:
    """A wireframe pyramid from the camera centre to the image corners at ``depth_m``.

    Each of the 8 edges (4 rays, 4 sides of the far rectangle) is a thin 6-sided tube of radius
    ``depth_m / 200``, so the frustum shows in viewers that draw only triangles.

    Args:
        K: ``(3, 3)`` OpenCV pixel-centre intrinsics, pixels.
        image_size: ``(W, H)`` pixels.
        depth_m: distance of the far rectangle along the optical axis, metres.

    Returns:
        The frustum in the OpenCV camera frame, metres.
    """
    K, image_size = as_intrinsics(K, image_size)
    if not np.isfinite(depth_m) or depth_m <= 0:
        raise ValueError(f"depth_m must be a positive number of metres, got {depth_m}")
    corners = _image_corners(K, image_size, depth_m)
    edges = [(np.zeros(3), c) for c in corners] + [(corners[i], corners[(i + 1) % 4]) for i in range(4)]
    tubes = [trimesh.creation.cylinder(radius=depth_m / 200.0, sections=6, segment=np.stack(edge)) for edge in edges]
    return trimesh.util.concatenate(tubes)


def pbr_fields(srgb: Sequence[float], alpha: float = 1.0, roughness: float = 0.7) -> dict:
    """A non-metallic glTF PBR material's fields, named as glTF (and trimesh's ``PBRMaterial``)
    name them: opaque, or blended and seen from both sides with ``alpha`` < 1. ``srgb`` in
    [0, 1]; glTF colour factors are linear, hence the gamma."""
    fields = {"baseColorFactor": [*srgb_to_linear(srgb), alpha], "metallicFactor": 0.0, "roughnessFactor": roughness}
    return {**fields, "alphaMode": "BLEND", "doubleSided": True} if alpha < 1 else {**fields, "alphaMode": "OPAQUE"}


def _visual(fields: dict) -> trimesh.visual.TextureVisuals:
    """A trimesh visual of one material (:func:`pbr_fields`)."""
    return trimesh.visual.TextureVisuals(material=trimesh.visual.material.PBRMaterial(**fields))


def frustum_prop(K: np.ndarray, image_size: tuple[int, int], depth_m: float = 0.5) -> tuple[trimesh.Trimesh, dict]:
    """The camera frustum as scene.glb holds it (``"camera"``): :func:`camera_frustum_mesh` in
    the glTF frame, and its material's fields (:func:`pbr_fields`)."""
    frustum = camera_frustum_mesh(K, image_size, depth_m)
    frustum.vertices = _to_gltf(frustum.vertices)
    return frustum, pbr_fields(_FRUSTUM_SRGB)


def floor_prop(floor: FloorPlane, centres_m: np.ndarray) -> tuple[trimesh.Trimesh, dict]:
    """The floor as scene.glb holds it (``"floor"``): a translucent square of ``floor`` around
    the points ``centres_m`` (N, 3) (OpenCV camera frame, metres; N = 0: 5 m ahead), 3 m beyond
    their spread, in the glTF frame, and its material's fields (:func:`pbr_fields`)."""
    centres = np.asarray(centres_m, dtype=np.float64).reshape(-1, 3)
    centres = centres if len(centres) else np.array([[0.0, 0.0, 5.0]])
    spread = np.ptp(centres, axis=0).max() if len(centres) > 1 else 0.0
    square = floor_mesh(floor, centres.mean(axis=0), half_size_m=spread / 2 + 3.0)
    square.vertices = _to_gltf(square.vertices)
    return square, pbr_fields(_FLOOR_SRGBA[:3], alpha=_FLOOR_SRGBA[3], roughness=1.0)


def _to_gltf(vertices: np.ndarray) -> np.ndarray:
    return np.asarray(vertices, dtype=np.float64) * OPENCV_TO_GLTF


def _photo_texture(image: np.ndarray) -> Image.Image:
    """The photo downscaled to at most _MAX_TEXTURE_SIDE px a side, as a JPEG-backed PIL image."""
    texture = Image.fromarray(image)
    texture.thumbnail((_MAX_TEXTURE_SIDE, _MAX_TEXTURE_SIDE), Image.Resampling.LANCZOS)
    # trimesh embeds a PIL image as JPEG only when the image says it was decoded from one
    # (PNG otherwise, ~10x larger for photos), so round-trip it through JPEG once.
    buffer = io.BytesIO()
    texture.save(buffer, format="JPEG", quality=90)
    return Image.open(io.BytesIO(buffer.getvalue()))


def _textured(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray, texture: Image.Image) -> trimesh.Trimesh:
    """A glTF-frame mesh showing ``texture`` (uv origin at the image's bottom-left, trimesh's convention)."""
    material = trimesh.visual.material.PBRMaterial(
        baseColorTexture=texture, metallicFactor=0.0, roughnessFactor=1.0, doubleSided=True
    )
    return trimesh.Trimesh(
        _to_gltf(vertices), faces, visual=trimesh.visual.TextureVisuals(uv=uv, material=material), process=False
    )


def depth_mesh(
    depth_m: np.ndarray, K: np.ndarray, image: np.ndarray, max_side: int = 320, max_jump: float = 0.1
) -> trimesh.Trimesh | None:
    """The scene as a photo-textured surface (glTF frame) from a depth map, None if it has no surface.

    Pixels are sampled on a grid of at most ``max_side`` per side and lifted to 3D; neighbouring
    samples are joined into triangles unless a depth is unknown (NaN) or the depths of a
    triangle differ by more than ``max_jump`` of the nearest (a depth discontinuity: the
    surface is cut there rather than stretched across it).

    depth_m (H, W) metres camera-frame z; K (3, 3); image (H, W, 3) uint8.
    """
    height, width = depth_m.shape
    stride = max(1, int(np.ceil(max(width, height) / max_side)))
    v, u = np.mgrid[0:height:stride, 0:width:stride]
    z = depth_m[v, u].astype(np.float64)
    points = (rays_z1(K, u, v) * z[..., None]).reshape(-1, 3)
    rows, cols = u.shape
    index = np.arange(rows * cols).reshape(rows, cols)
    a, b, c, d = index[:-1, :-1], index[:-1, 1:], index[1:, 1:], index[1:, :-1]  # TL, TR, BR, BL
    # Wound like the image plane (TL, BR, TR) so the front faces look back at the camera.
    faces = np.concatenate((np.stack((a, c, b), -1).reshape(-1, 3), np.stack((a, d, c), -1).reshape(-1, 3)))
    corner_z = points[faces, 2]
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(corner_z).all(1) & (corner_z.min(1) > 0)
        keep &= corner_z.max(1) <= (1 + max_jump) * corner_z.min(1)
    if not keep.any():
        return None
    faces = faces[keep]
    used = np.unique(faces)
    remap = np.full(len(points), -1)
    remap[used] = np.arange(len(used))
    uv = np.stack(((u + 0.5) / width, 1 - (v + 0.5) / height), axis=-1).reshape(-1, 2)
    return _textured(points[used], remap[faces], uv[used], _photo_texture(image))


def floor_mesh(floor: FloorPlane, centre_m: np.ndarray, half_size_m: float) -> trimesh.Trimesh:
    """A square of the floor plane (OpenCV camera frame) around the floor point below ``centre_m`` (3,)."""
    up = np.asarray(floor.up, dtype=np.float64)
    centre = np.asarray(centre_m, dtype=np.float64)
    centre = centre - floor.height_above(centre) * up  # dropped onto the plane
    forward = np.array([0.0, 0.0, 1.0]) - up[2] * up
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    corners = centre + half_size_m * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) @ np.stack((right, forward))
    return trimesh.Trimesh(corners, np.array([[0, 1, 2], [0, 2, 3]]), process=False)


def write_depth_png(path: str | Path, depth_m: np.ndarray, max_side_px: int = 1024) -> None:
    """Save a depth map (H, W) metres as a colour-mapped PNG with a metre scale bar (unknown: black)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height, width = depth_m.shape
    finite = depth_m[np.isfinite(depth_m)]
    low, high = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    scale = min(1.0, max_side_px / max(width, height)) / 100  # inches at 100 dpi
    figure, axis = plt.subplots(figsize=(width * scale + 1.2, height * scale), dpi=100)
    cmap = matplotlib.colormaps["turbo"].with_extremes(bad="black")
    shown = axis.imshow(np.ma.masked_invalid(depth_m), cmap=cmap, vmin=low, vmax=max(high, low + 1e-3))
    axis.set_axis_off()
    figure.colorbar(shown, ax=axis, fraction=0.05, pad=0.02).set_label("depth (m)")
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)


def _image_plane(image: np.ndarray, K: np.ndarray, image_size: tuple[int, int], depth_m: float) -> trimesh.Trimesh:
    """The photo as a textured quad on the frustum's far plane, facing the camera (glTF frame)."""
    W, H = image_size
    if image.shape != (H, W, 3) or image.dtype != np.uint8:
        raise ValueError(f"image must be a ({H}, {W}, 3) uint8 RGB array matching image_size, got {image.dtype} {image.shape}")
    texture = _photo_texture(image)
    corners = _image_corners(K, image_size, depth_m)  # TL, TR, BR, BL
    # Wound TL, BR, TR so the front face (counter-clockwise) looks back at the camera.
    faces = np.array([[0, 2, 1], [0, 3, 2]])
    # trimesh's uv origin is the bottom-left of the image (it flips v for glTF on export).
    uv = np.array([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    return _textured(corners, faces, uv, texture)


def write_scene_glb(
    path: str | Path,
    people: Sequence[Mesh],
    K: np.ndarray,
    image_size: tuple[int, int],
    image: np.ndarray | None = None,
    colors: Sequence[tuple[float, float, float]] | None = None,
    names: Sequence[str] | None = None,
    frustum_depth_m: float = 0.5,
    scene_depth_m: np.ndarray | None = None,
    floor: FloorPlane | None = None,
) -> None:
    """Write people, camera, and optionally the photo, the scene surface and the floor as one glTF binary.

    The file holds one named mesh node per person (``names``, default ``"person_0"``, ...) with
    an opaque PBR material in a distinct colour (default :data:`metrichmsr.render.PALETTE`,
    the overlay's colours), the camera frustum (``"camera"``) and, when ``image`` is given,
    the photo as a textured quad on the frustum's far plane (``"image_plane"``, downscaled to
    at most 1024 px a side, JPEG inside the glb).

    Coordinates: the OpenCV camera frame in metres turned 180 degrees about x into glTF's
    y-up, -z-forward convention, i.e. a point ``(x, y, z)`` is written as ``(x, -y, -z)``.
    The scene then opens upright in Blender and three.js with the camera at the origin looking
    down -z (Blender's importer further maps glTF y-up to its z-up).

    The file is written to a temporary file in the same folder and moved into place, so
    ``path`` is either the complete new file or untouched.

    Args:
        path: output ``.glb`` file.
        people: ``(vertices (V, 3) metres OpenCV camera frame, faces (F, 3) int)`` per person.
        K: ``(3, 3)`` OpenCV pixel-centre intrinsics of the image, pixels.
        image_size: ``(W, H)`` pixels.
        image: optional ``(H, W, 3)`` uint8 RGB photo.
        colors: one sRGB colour in ``[0, 1]`` per person.
        names: one unique node name per person, not ``"camera"`` or ``"image_plane"``.
        frustum_depth_m: depth of the frustum's far plane (and the photo), metres.
        scene_depth_m: optional ``(H, W)`` scene depth, metres (NaN unknown): written as the
            photo-textured surface ``"scene"`` (see :func:`depth_mesh`; needs ``image``).
        floor: optional floor plane, written as a translucent square ``"floor"`` around the
            people (or 5 m ahead without people).

    Raises:
        ValueError: naming the argument with the wrong shape or value.
    """
    K, image_size = as_intrinsics(K, image_size)
    people = as_meshes(people, name="people")
    colors = as_colors(colors, len(people))
    names = [f"person_{i}" for i in range(len(people))] if names is None else list(names)
    if (
        len(names) != len(people)
        or len(set(names)) != len(names)
        or not all(isinstance(n, str) and n and n not in _RESERVED_NAMES for n in names)
    ):
        raise ValueError(f"names must be {len(people)} unique non-empty strings other than {_RESERVED_NAMES}, got {names!r}")

    scene = trimesh.Scene()
    for (vertices, faces), color, name in zip(people, colors, names):
        mesh = trimesh.Trimesh(
            _to_gltf(vertices),
            faces,
            visual=_visual(pbr_fields(color)),
            process=False,
        )
        scene.add_geometry(mesh, node_name=name, geom_name=name)
    frustum, material = frustum_prop(K, image_size, frustum_depth_m)
    frustum.visual = _visual(material)
    scene.add_geometry(frustum, node_name="camera", geom_name="camera")
    if image is not None:
        plane = _image_plane(np.asarray(image), K, image_size, frustum_depth_m)
        scene.add_geometry(plane, node_name="image_plane", geom_name="image_plane")
        surface = None if scene_depth_m is None else depth_mesh(np.asarray(scene_depth_m), K, np.asarray(image))
        if surface is not None:
            scene.add_geometry(surface, node_name="scene", geom_name="scene")
    if floor is not None:
        square, material = floor_prop(floor, [v.mean(axis=0) for v, _ in people])
        square.visual = _visual(material)
        scene.add_geometry(square, node_name="floor", geom_name="floor")

    # Normals give viewers smooth shading (without them three.js shades flat).
    write_atomic(path, scene.export(file_type="glb", include_normals=True))


def write_overlay(
    out_dir: str | Path,
    image: np.ndarray,
    K: np.ndarray,
    people: Sequence[Mesh],
    depth_m: np.ndarray | None = None,
    floor: FloorPlane | None = None,
    renderer=None,
) -> None:
    """Write the one metric 3D overlay of an image into the folder ``out_dir``.

    ``scene.glb`` (:func:`write_scene_glb`: the people, the camera, the photo, and the scene
    surface and floor when given), ``overlay.png`` (the people drawn over the photo) and, with
    ``depth_m``, ``depth.npy`` (float32 metres) and ``depth.png`` (:func:`write_depth_png`).

    Args:
        out_dir: an existing folder.
        image: (H, W, 3) uint8 RGB photo.
        K: (3, 3) OpenCV pixel-centre intrinsics, pixels.
        people: ``(vertices (V, 3) metres camera frame, faces (F, 3))`` per person.
        depth_m: (H, W) scene depth (camera-frame z, metres, NaN where unknown), or None.
        floor: the floor the people stand on, or None.
        renderer: a ``render.Renderer`` to draw the overlay with (default: a new one).
    """
    from metrichmsr.render import Renderer

    out_dir = Path(out_dir)
    height, width = image.shape[:2]
    write_scene_glb(out_dir / "scene.glb", people, K, (width, height), image=image, scene_depth_m=depth_m, floor=floor)
    renderer = renderer or Renderer()
    overlay = renderer.overlay(image, K, people) if people else image
    Image.fromarray(overlay).save(out_dir / "overlay.png", optimize=False)
    if depth_m is not None:
        np.save(out_dir / "depth.npy", depth_m)
        write_depth_png(out_dir / "depth.png", depth_m)
