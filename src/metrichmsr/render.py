"""Offscreen rendering of metric meshes through a pinhole camera: colour, depth, instance ids
and overlays on the photo.

Conventions (see DESIGN.md): meshes are in the OpenCV camera frame (x right, y down, z
forward), metres; ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in pixels with the pixel-centre
convention (pixel ``(0, 0)`` covers ``[-0.5, 0.5]^2``); image sizes are ``(W, H)``; colours are
sRGB floats in ``[0, 1]``.

pyrender (OpenGL) is imported on first use, so this module's validation helpers and palette
are usable (e.g. by the glTF export) on machines without an EGL driver.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Sequence

import numpy as np
import trimesh
from PIL import Image

from metrichmsr.camera import scale_K

if TYPE_CHECKING:
    import pyrender

Mesh = tuple[np.ndarray, np.ndarray]
"""A triangle mesh: vertices ``(V, 3)`` float metres, faces ``(F, 3)`` int indices."""

# Okabe-Ito colour-blind-safe palette (sRGB, black left out): person i gets PALETTE[i % 7].
PALETTE: tuple[tuple[float, float, float], ...] = (
    (0.902, 0.624, 0.000),  # orange
    (0.337, 0.706, 0.914),  # sky blue
    (0.000, 0.620, 0.451),  # bluish green
    (0.941, 0.894, 0.259),  # yellow
    (0.000, 0.447, 0.698),  # blue
    (0.835, 0.369, 0.000),  # vermillion
    (0.800, 0.475, 0.655),  # reddish purple
)

ZNEAR_M = 0.05
ZFAR_M = 1000.0

# Instance ids travel through an 8-bit RGB segmentation render as id + 1 in (R + 256 G).
_MAX_MESHES = np.iinfo(np.int16).max


# ---------------------------------------------------------------------------------------
# Validation and colour helpers shared with the scene export
# ---------------------------------------------------------------------------------------


def as_intrinsics(K: np.ndarray, image_size: Sequence[int]) -> tuple[np.ndarray, tuple[int, int]]:
    """Check and normalise a camera.

    Args:
        K: ``(3, 3)`` pinhole intrinsics ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in pixels,
            positive focal lengths, no skew.
        image_size: ``(W, H)`` in pixels, positive integers.

    Returns:
        ``K`` as float64 ``(3, 3)`` and ``(W, H)`` as a tuple of ints.

    Raises:
        ValueError: naming ``K`` or ``image_size``.
    """
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)):
        raise ValueError(f"K must be a finite (3, 3) array, got shape {K.shape}")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"K must have positive focal lengths, got fx={K[0, 0]}, fy={K[1, 1]}")
    if K[0, 1] != 0 or K[1, 0] != 0 or not np.array_equal(K[2], [0.0, 0.0, 1.0]):
        raise ValueError(f"K must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], got {K.tolist()}")
    size = tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in size):
        raise ValueError(f"image_size must be (W, H), two positive ints, got {image_size!r}")
    return K, (int(size[0]), int(size[1]))


def as_meshes(meshes: Sequence[Mesh], name: str = "meshes") -> list[Mesh]:
    """Check a list of ``(vertices (V, 3), faces (F, 3))`` meshes.

    Returns:
        The meshes as ``(float32 (V, 3), int64 (F, 3))`` arrays.

    Raises:
        ValueError: naming ``name[i]`` when a mesh has the wrong shape, non-finite vertices,
            non-integer faces or face indices outside ``[0, V)``.
    """
    out = []
    for i, mesh in enumerate(meshes):
        if len(mesh) != 2:
            raise ValueError(f"{name}[{i}] must be a (vertices, faces) pair")
        vertices, faces = np.asarray(mesh[0]), np.asarray(mesh[1])
        if vertices.ndim != 2 or vertices.shape[1] != 3 or not np.all(np.isfinite(vertices)):
            raise ValueError(f"{name}[{i}] vertices must be a finite (V, 3) array, got shape {vertices.shape}")
        if faces.ndim != 2 or faces.shape[1] != 3 or faces.dtype.kind not in "iu":
            raise ValueError(f"{name}[{i}] faces must be an integer (F, 3) array, got {faces.dtype} {faces.shape}")
        if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
            raise ValueError(f"{name}[{i}] faces index outside [0, {len(vertices)})")
        out.append((vertices.astype(np.float32), faces.astype(np.int64)))
    return out


def as_colors(colors: Sequence[Sequence[float]] | None, n: int, name: str = "colors") -> np.ndarray:
    """One sRGB colour per mesh: the given ones, or the fixed :data:`PALETTE` cycled.

    Returns:
        ``(n, 3)`` float64 sRGB in ``[0, 1]``.

    Raises:
        ValueError: naming ``name`` when the count, shape or range is wrong.
    """
    if colors is None:
        return np.array(PALETTE, dtype=np.float64)[np.arange(n) % len(PALETTE)]
    out = np.asarray(colors, dtype=np.float64)
    if out.shape != (n, 3) or not np.all((out >= 0) & (out <= 1)):
        raise ValueError(f"{name} must be {n} sRGB triples in [0, 1], got shape {out.shape}")
    return out


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB -> linear with the gamma-2.2 approximation that pyrender's shader inverts on output."""
    return np.asarray(rgb, dtype=np.float64) ** 2.2


def _scaled_camera(K: np.ndarray, image_size: tuple[int, int], max_side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The camera of the image resized so that its longer side is at most ``max_side``."""
    W, H = image_size
    if max(W, H) <= max_side:
        return K, image_size
    scale = max_side / max(W, H)
    size = (max(1, round(W * scale)), max(1, round(H * scale)))
    return scale_K(K, size[0] / W, size[1] / H), size


def _import_pyrender():
    # PyOpenGL chooses its platform at first import: headless EGL unless the user chose.
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    import pyrender

    return pyrender


# ---------------------------------------------------------------------------------------
# Renderer
# ---------------------------------------------------------------------------------------


_OFFSCREEN: "pyrender.OffscreenRenderer | None" = None


def _offscreen(width: int, height: int) -> "pyrender.OffscreenRenderer":
    """The process's one pyrender ``OffscreenRenderer``, resized to ``(width, height)``.

    Deleting an EGL renderer can tear down the EGL display under every other renderer of the
    process (seen with Mesa: later ``eglMakeCurrent`` calls fail), so all ``Renderer`` objects
    share one that lives until the process exits.
    """
    global _OFFSCREEN
    if _OFFSCREEN is None:
        _OFFSCREEN = _import_pyrender().OffscreenRenderer(width, height)
    _OFFSCREEN.viewport_width, _OFFSCREEN.viewport_height = width, height
    return _OFFSCREEN


class Renderer:
    """Renders through the process's one pyrender ``OffscreenRenderer`` (created lazily,
    resized per call, never deleted: see ``_offscreen``).

    Images whose longer side exceeds ``max_side`` pixels are rendered at a reduced size
    ``(W', H') = (round(W s), round(H s))``, ``s = max_side / max(W, H)``, with the intrinsics
    scaled to match (``f' = f W'/W``, ``c' = (c + 0.5) W'/W - 0.5``, likewise for y); the
    outputs then have that reduced size. Geometry units (depth in metres) are unaffected.
    """

    def __init__(self, max_side: int = 2048):
        if max_side < 1:
            raise ValueError(f"max_side must be a positive int, got {max_side}")
        self.max_side = int(max_side)
        self._size = (1, 1)

    def render(
        self,
        K: np.ndarray,
        image_size: tuple[int, int],
        meshes: Sequence[Mesh],
        colors: Sequence[tuple[float, float, float]] | None = None,
        vertex_colors: Sequence[np.ndarray] | None = None,
        background: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Render meshes seen by the camera ``K`` of an image of size ``(W, H)``.

        Args:
            K: ``(3, 3)`` OpenCV pixel-centre intrinsics, pixels.
            image_size: ``(W, H)`` of the image ``K`` belongs to.
            meshes: ``(vertices (V, 3) metres in the OpenCV camera frame, faces (F, 3) int)``.
            colors: one sRGB colour in ``[0, 1]`` per mesh; default :data:`PALETTE`.
            vertex_colors: one ``(V, 3)`` sRGB array per mesh (floats in ``[0, 1]`` or uint8);
                replaces ``colors``.
            background: sRGB in ``[0, 1]``.

        Returns:
            ``color`` ``(H, W, 3)`` uint8 sRGB, lit, anti-aliased; ``depth_m`` ``(H, W)``
            float32 camera-frame z in metres, 0 where empty; ``ids`` ``(H, W)`` int16, the
            index of the mesh seen at each pixel, -1 for background. Depth and ids are sampled
            at pixel centres (no anti-aliasing), so ``ids >= 0`` exactly where ``depth_m > 0``.
            ``(W, H)`` is the reduced size when ``max(W, H) > max_side`` (see the class
            docstring).
        """
        pyrender = _import_pyrender()
        background = np.asarray(background, dtype=np.float64)
        if background.shape != (3,) or not np.all((background >= 0) & (background <= 1)):
            raise ValueError(f"background must be an sRGB triple in [0, 1], got {background}")
        scene, nodes = self._scene(K, image_size, meshes, colors, vertex_colors)
        scene.bg_color = [*background, 0.0]
        rgba, _ = self._draw(scene)

        # Segmentation pass: each node drawn unlit in a flat colour that encodes its id + 1.
        # Depth comes from this pass too: it rasterises at pixel centres, whereas the
        # multisampled colour pass resolves depth from one sample 3/8 px off the centre.
        seg_colors = {node: [(i + 1) % 256, (i + 1) // 256, 0] for i, node in enumerate(nodes)}
        seg, depth = self._draw(scene, pyrender.RenderFlags.SEG, seg_colors)
        ids = seg[..., 0].astype(np.int32) + 256 * seg[..., 1].astype(np.int32) - 1
        return rgba[..., :3].copy(), depth, ids.astype(np.int16)

    def overlay(
        self,
        image: np.ndarray,
        K: np.ndarray,
        meshes: Sequence[Mesh],
        colors: Sequence[tuple[float, float, float]] | None = None,
        alpha: float = 0.75,
    ) -> np.ndarray:
        """Draw lit meshes over a photo, one distinct colour per mesh.

        Args:
            image: ``(H, W, 3)`` uint8 RGB photo; ``K`` belongs to it.
            K: ``(3, 3)`` OpenCV pixel-centre intrinsics, pixels.
            meshes: as in :meth:`render`.
            colors: one sRGB colour per mesh; default :data:`PALETTE`.
            alpha: opacity of the meshes in ``[0, 1]``.

        Returns:
            ``(H, W, 3)`` uint8: ``(1 - alpha c) image + alpha c mesh``, ``c`` the anti-aliased
            mesh coverage, so pixels without a mesh are unchanged. Images larger than
            ``max_side`` are resized (area average) to the reduced size and the overlay is
            returned at that size (see the class docstring).
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be an (H, W, 3) uint8 RGB array, got {image.dtype} {image.shape}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        size = (image.shape[1], image.shape[0])
        scene, _ = self._scene(K, size, meshes, colors, None)
        scene.bg_color = [0.0, 0.0, 0.0, 0.0]
        rgba, _ = self._draw(scene)
        if rgba.shape[:2] != image.shape[:2]:
            image = np.asarray(Image.fromarray(image).resize((rgba.shape[1], rgba.shape[0]), Image.Resampling.BOX))
        # Multisampling against a transparent black background leaves edge pixels with a
        # fractional alpha and colour premultiplied by it: blend as premultiplied alpha.
        coverage = rgba[..., 3:].astype(np.float32) / 255.0
        out = image * (1.0 - alpha * coverage) + alpha * rgba[..., :3].astype(np.float32)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)

    def close(self) -> None:
        """Nothing to free: the OpenGL context is shared by the process (see ``_offscreen``)."""

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -----------------------------------------------------------------------------------

    def _scene(
        self,
        K: np.ndarray,
        image_size: tuple[int, int],
        meshes: Sequence[Mesh],
        colors: Sequence[tuple[float, float, float]] | None,
        vertex_colors: Sequence[np.ndarray] | None,
    ) -> tuple[pyrender.Scene, list[pyrender.Node]]:
        """Build the lit scene and size the viewport; returns the scene and one node per mesh."""
        pyrender = _import_pyrender()
        K, image_size = as_intrinsics(K, image_size)
        meshes = as_meshes(meshes)
        if len(meshes) > _MAX_MESHES:
            raise ValueError(f"meshes: at most {_MAX_MESHES} meshes, got {len(meshes)}")
        base_colors = srgb_to_linear(as_colors(colors, len(meshes)))
        if vertex_colors is not None and len(vertex_colors) != len(meshes):
            raise ValueError(f"vertex_colors must have one array per mesh ({len(meshes)}), got {len(vertex_colors)}")

        K, (width, height) = _scaled_camera(K, image_size, self.max_side)
        self._size = (width, height)

        scene = pyrender.Scene(ambient_light=[0.35, 0.35, 0.35])
        # World = OpenCV camera frame. pyrender's camera looks down its -z with +y up, so its
        # pose is a 180 degree turn about x; the +0.5 moves OpenCV's pixel-centre principal
        # point to pyrender's pixel-edge one.
        camera_pose = np.diag([1.0, -1.0, -1.0, 1.0])
        camera = pyrender.IntrinsicsCamera(fx=K[0, 0], fy=K[1, 1], cx=K[0, 2] + 0.5, cy=K[1, 2] + 0.5, znear=ZNEAR_M, zfar=ZFAR_M)
        scene.add(camera, pose=camera_pose)
        # A headlight (directional lights shine down their node's -z, here the camera's
        # forward) plus a key light from the upper left that keeps limbs in front of the torso
        # readable.
        scene.add(pyrender.DirectionalLight(intensity=2.5), pose=camera_pose)
        key_pose = trimesh.geometry.align_vectors([0.0, 0.0, -1.0], [0.5, 0.5, 1.0])
        scene.add(pyrender.DirectionalLight(intensity=1.5), pose=key_pose)

        nodes = []
        for i, (vertices, faces) in enumerate(meshes):
            color_0 = None
            base = [*base_colors[i], 1.0]
            if vertex_colors is not None:
                color_0 = self._linear_vertex_colors(vertex_colors[i], len(vertices), i)
                base = [1.0, 1.0, 1.0, 1.0]
            material = pyrender.MetallicRoughnessMaterial(baseColorFactor=base, metallicFactor=0.0, roughnessFactor=0.7)
            normals = trimesh.Trimesh(vertices, faces, process=False).vertex_normals
            normals = normals.astype(np.float32)
            primitive = pyrender.Primitive(
                positions=vertices,
                normals=normals,
                indices=faces,
                color_0=color_0,
                material=material,
            )
            nodes.append(scene.add(pyrender.Mesh([primitive])))
        return scene, nodes

    @staticmethod
    def _linear_vertex_colors(colors: np.ndarray, n_vertices: int, i: int) -> np.ndarray:
        """``(V, 3)`` sRGB (uint8 or floats in [0, 1]) -> ``(V, 3)`` linear float32."""
        colors = np.asarray(colors)
        uint8_or_float = colors.dtype == np.uint8 or colors.dtype.kind == "f"
        if colors.shape != (n_vertices, 3) or not uint8_or_float:
            raise ValueError(
                f"vertex_colors[{i}] must be ({n_vertices}, 3) uint8 or floats in [0, 1], got {colors.dtype} {colors.shape}"
            )
        if colors.dtype == np.uint8:
            colors = colors / 255.0
        if not np.all((colors >= 0) & (colors <= 1)):
            raise ValueError(f"vertex_colors[{i}] floats must lie in [0, 1]")
        return srgb_to_linear(colors).astype(np.float32)

    def _draw(self, scene, flags: int = 0, seg_node_map=None) -> tuple[np.ndarray, np.ndarray]:
        """Render ``scene``: ``(H, W, 4)`` uint8 RGBA (RGB under ``SEG``) and ``(H, W)`` depth."""
        pyrender = _import_pyrender()
        # Faces are drawn from both sides so that a mesh with inward winding still shows its
        # nearest surface (back-face culling would show the far side instead).
        flags |= pyrender.RenderFlags.SKIP_CULL_FACES
        if not flags & pyrender.RenderFlags.SEG:
            flags |= pyrender.RenderFlags.RGBA
        return _offscreen(*self._size).render(scene, flags=flags, seg_node_map=seg_node_map)
