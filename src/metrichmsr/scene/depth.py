"""Scene depth backends: a metric depth map of the whole image, chosen by ``--depth SPEC``.

=================  ========================================================================
``SPEC``           backend
=================  ========================================================================
``hf:<model>``     a Hugging Face ``transformers`` metric depth model (a hub id such as
                   ``depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf`` or
                   ``apple/DepthPro-hf``, or a local folder saved with ``save_pretrained``),
                   loaded once, from the local cache first, then the network
``file:<path>``    a depth map the user brings: ``.npy`` (metres), 16-bit ``.png``
                   (millimetres, 0 = unknown) or ``.exr`` (metres), resized to the image
``planar``         the offline default, built from the recovered people: the floor they
                   stand on plus a vertical backdrop behind the farthest of them (see
                   :class:`PlanarDepth`); nothing without people
``none``           no scene depth
=================  ========================================================================

Every backend has ``estimate(image (H, W, 3) uint8, K (3, 3), people_joints (N, 23, 3) | None,
floor: FloorPlane | None) -> DepthEstimate | None`` (the people and their floor are what
``planar`` is built from; the others ignore them): ``depth_m`` is camera-frame z (OpenCV
axes) in metres at each pixel centre of the image as given. Specs are checked when parsed (:func:`depth_backend`), so a bad
flag fails before any model loads; models load on first use or on ``load()``.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from metrichmsr.errors import InputError
from metrichmsr.geometry import image_rays_z1
from metrichmsr.scene.floor import FloorPlane, floor_from_people, foot_contacts

SPEC_FORMS = "hf:<model id or folder>, file:<depth.npy|.png|.exr>, planar, none"
FILE_SUFFIXES = (".npy", ".png", ".exr")


@dataclass
class DepthEstimate:
    """A metric depth map of one image.

    Attributes:
        depth_m: (H, W) float32 camera-frame z, metres, at the image's pixel centres; NaN where
            the backend has no depth (confidence 0 there).
        confidence: (H, W) float32 in [0, 1], the backend's own trust in each pixel.
        backend: the spec that produced it (``planar``, ``file:...``, ``hf:...``).
        floor: the floor plane the backend used or found, if any.
        from_people: True when the depth is already built from the recovered people (planar),
            so anchoring it to them again (``scene.refine``) has nothing to correct.
    """

    depth_m: np.ndarray
    confidence: np.ndarray
    backend: str
    floor: FloorPlane | None = None
    from_people: bool = False


class DepthBackend(Protocol):
    """A scene depth source: ``load`` once with the other models, then ``estimate`` per image.

    Before any model loads, ``check_available`` and ``check_size`` (per image) raise
    InputError for what would fail later (a model neither cached nor reachable, a depth file
    of another aspect ratio); backends with nothing to check inherit no-ops, as they do
    ``load``. ``estimate`` reads the (H, W, 3)
    uint8 image and its (3, 3) K; ``people_joints`` ((N, 23, 3) camera frame, metres) and the
    ``floor`` they stand on are what the planar layout is built from (other backends ignore
    them). It returns None where the backend has no depth to give.
    """

    spec: str

    def check_available(self) -> None:
        """InputError when what the backend needs cannot be had; nothing by default."""

    def check_size(self, size: tuple[int, int]) -> None:
        """InputError when the backend cannot serve an image of ``size`` (W, H); nothing by default."""

    def load(self) -> None:
        """Load what the backend needs (a network) before the first image; nothing by default."""

    def estimate(
        self, image: np.ndarray, K: np.ndarray, people_joints: np.ndarray | None = None, floor: FloorPlane | None = None
    ) -> DepthEstimate | None: ...


def depth_backend(spec: str, device: str = "cpu") -> DepthBackend:
    """Parse a ``--depth`` spec (see the module docstring) into a backend.

    ``device`` (``cpu``, ``cuda``, ``auto``) is where a ``hf:`` model runs. Raises InputError, on one
    line listing the valid forms, for a spec that is malformed, names a missing or unsupported
    file, or needs ``transformers`` where it is not installed.
    """
    kind, _, arg = spec.partition(":")
    if spec == "none":
        return NoDepth()
    if spec == "planar":
        return PlanarDepth()
    if kind == "file" and arg:
        return FileDepth(Path(arg))
    if kind == "hf" and arg:
        return HFDepth(arg, device)
    raise InputError(f"--depth: unknown spec {spec!r}; expected one of: {SPEC_FORMS}")


def _check_image(image: np.ndarray, K: np.ndarray) -> tuple[int, int]:
    """Validate the image and K; returns the image size (W, H)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be an (H, W, 3) uint8 array, got {image.dtype} {image.shape}")
    if np.shape(K) != (3, 3):
        raise ValueError(f"K must be (3, 3), got shape {np.shape(K)}")
    return image.shape[1], image.shape[0]


def edge_confidence(depth_m: np.ndarray, jump: float = 0.1) -> np.ndarray:
    """(H, W) float32 confidence: 1 on smooth surfaces, falling to 0 at depth discontinuities.

    Estimators blur depth edges into "flying pixels", so a pixel whose largest relative depth
    difference to its 4 neighbours reaches ``jump`` (10%) gets 0, linearly in between; NaN
    depth gets 0.
    """
    depth = np.asarray(depth_m, dtype=np.float32)
    padded = np.pad(depth, 1, mode="edge")
    neighbours = np.stack((padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]))
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.fmax.reduce(np.abs(neighbours - depth), axis=0) / depth  # NaN neighbours ignored
    return np.nan_to_num(np.clip(1.0 - relative / jump, 0.0, 1.0), nan=0.0).astype(np.float32)


def resize_depth(depth_m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a (h, w) depth map to ``size`` (W, H) with nearest-neighbour sampling.

    Nearest, not bilinear: interpolating across a depth edge invents surfaces that are not
    there. NaN stays NaN.
    """
    import cv2

    if depth_m.shape == (size[1], size[0]):
        return depth_m.astype(np.float32)
    return cv2.resize(depth_m.astype(np.float32), size, interpolation=cv2.INTER_NEAREST)


# ---------------------------------------------------------------------------------------
# none
# ---------------------------------------------------------------------------------------


class NoDepth(DepthBackend):
    """``--depth none``: no scene depth."""

    spec = "none"

    def estimate(
        self, image: np.ndarray, K: np.ndarray, people_joints: np.ndarray | None = None, floor: FloorPlane | None = None
    ) -> None:
        return None


# ---------------------------------------------------------------------------------------
# planar
# ---------------------------------------------------------------------------------------


class PlanarDepth(DepthBackend):
    """``--depth planar``: a floor and a backdrop, metric because the people are.

    Layout (a room seen from inside, with only its floor and far wall):

    - floor: the ``floor`` given (the pipeline fits it from the people's feet and up
      directions), else :func:`floor_from_people` of their joints; a floor pixel's depth is
      where its ray meets the plane;
    - backdrop: a vertical plane facing the camera (its normal the camera's forward axis made
      horizontal, ``FloorPlane.forward``) where the image's vertical lines stand on the floor
      (``floor.wall_distance_m``, from ``scene.horizon``) when that is behind the people,
      else ``backdrop_margin_m`` behind the farthest person, but never nearer than the
      floor's own lines are seen (``floor.floor_seen_m``); it takes every pixel whose ray
      meets it before the floor, which includes everything above the horizon.

    Confidence: on the floor ``0.3 + 0.6 exp(-(d / 3 m)^2)`` with ``d`` the distance along the
    floor to the nearest person's feet (a floor is rarely flat and level far from where it was
    measured); on the backdrop 0.1 (its distance is a guess).

    Returns None without people or when no floor can be found from them. People themselves are
    not in the map (they are meshes): the pixels they cover get the floor or backdrop behind.
    """

    spec = "planar"

    def __init__(self, backdrop_margin_m: float = 2.0):
        self.backdrop_margin_m = backdrop_margin_m

    def estimate(
        self, image: np.ndarray, K: np.ndarray, people_joints: np.ndarray | None = None, floor: FloorPlane | None = None
    ) -> DepthEstimate | None:
        size = _check_image(image, K)
        if people_joints is None or len(people_joints) == 0:
            return None
        floor = floor_from_people(people_joints) if floor is None else floor
        if floor is None:
            return None
        joints = np.asarray(people_joints, dtype=np.float64)
        farthest_m = float(np.nanmax(joints @ floor.forward))
        wall_m = floor.wall_distance_m
        backdrop_m = wall_m if wall_m is not None and wall_m > farthest_m else farthest_m + self.backdrop_margin_m
        # Where the floor's own lines are seen, no wall stands nearer (held-out renders: the
        # whole planar map 11.5% -> 9.5% median AbsRel, BENCHMARKS).
        backdrop_m = max(backdrop_m, floor.floor_seen_m or 0.0)
        depth_m, on_floor = planar_layout_depth(floor, backdrop_m, K, size)
        confidence = np.where(on_floor, _floor_confidence(floor, K, size, depth_m, foot_contacts(joints, floor.up)), 0.1)
        return DepthEstimate(depth_m, confidence.astype(np.float32), self.spec, floor, from_people=True)


def planar_layout_depth(
    floor: FloorPlane, backdrop_m: float, K: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Depth of a floor closed by a vertical backdrop (see :class:`PlanarDepth`).

    Args:
        floor: the floor plane.
        backdrop_m: horizontal distance from the camera to the backdrop, metres.
        K: (3, 3) intrinsics; size: (W, H) pixels.

    Returns:
        ``depth_m`` (H, W) float32 metres, finite (rays that meet neither plane, looking up and
        back, get the largest depth in the map), and ``on_floor`` (H, W) bool.
    """
    rays = image_rays_z1(K, size)
    floor_m = floor.depth_map(K, size).astype(np.float64)
    toward_backdrop = rays @ floor.forward
    with np.errstate(divide="ignore"):
        backdrop_depth_m = np.where(toward_backdrop > 1e-9, backdrop_m / toward_backdrop, np.inf)
    on_floor = floor_m < backdrop_depth_m
    depth = np.minimum(floor_m, backdrop_depth_m)
    finite = np.isfinite(depth)
    depth[~finite] = depth[finite].max() if finite.any() else backdrop_m
    return depth.astype(np.float32), on_floor


def _floor_confidence(
    floor: FloorPlane, K: np.ndarray, size: tuple[int, int], depth_m: np.ndarray, contacts_m: np.ndarray
) -> np.ndarray:
    """(H, W) confidence of floor pixels: high near the people's feet, 0.3 far from them."""
    import cv2

    # Smooth in the image: computed every 4th pixel and interpolated (a crowd would otherwise
    # cost an (H, W, N, 3) array).
    step = 4
    points = image_rays_z1(K, size)[::step, ::step] * depth_m[::step, ::step, None]
    distance = np.min(np.linalg.norm(points[..., None, :] - contacts_m, axis=-1), axis=-1)
    coarse = (0.3 + 0.6 * np.exp(-((distance / 3.0) ** 2))).astype(np.float32)
    return cv2.resize(coarse, size, interpolation=cv2.INTER_LINEAR)


# ---------------------------------------------------------------------------------------
# file:
# ---------------------------------------------------------------------------------------


class FileDepth(DepthBackend):
    """``--depth file:PATH``: a depth map from any estimator.

    ``.npy``: (h, w) or (h, w, 1) floats, metres. ``.png``: 16-bit single channel,
    millimetres. ``.exr``: metres, channel ``Z`` (else ``depth``, ``Y``, ``R``, or the only
    one), read with the ``OpenEXR`` package (extra ``metrichmsr[exr]``). Non-positive and
    non-finite values (0 in a PNG) mean unknown. The map is resized to the image (nearest
    neighbour); its aspect ratio must match the image's within 2%. Confidence is
    :func:`edge_confidence`. The file is read and checked when the backend is made, so a bad
    file fails before any model loads.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.spec = f"file:{self.path}"
        if self.path.suffix.lower() not in FILE_SUFFIXES:
            raise InputError(f"--depth {self.spec}: unsupported file type; expected one of {', '.join(FILE_SUFFIXES)}")
        if not self.path.is_file():
            raise InputError(f"--depth {self.spec}: no such file")
        self.depth_m = self.read()

    def check_size(self, size: tuple[int, int]) -> None:
        """InputError unless the map's aspect ratio matches an image of ``size`` (W, H) within 2%."""
        height, width = self.depth_m.shape
        if abs(np.log((width / height) / (size[0] / size[1]))) > 0.02:
            raise InputError(
                f"--depth {self.spec}: the depth map is {width}x{height}, the image {size[0]}x{size[1]}: "
                "their aspect ratios differ"
            )

    def estimate(
        self, image: np.ndarray, K: np.ndarray, people_joints: np.ndarray | None = None, floor: FloorPlane | None = None
    ) -> DepthEstimate:
        size = _check_image(image, K)
        self.check_size(size)
        depth = resize_depth(self.depth_m, size)
        return DepthEstimate(depth, edge_confidence(depth), self.spec)

    def read(self) -> np.ndarray:
        """The file's (h, w) float32 depth in metres, NaN where unknown; InputError when unreadable."""
        suffix = self.path.suffix.lower()
        try:
            depth = {".npy": _read_npy, ".png": _read_png_mm, ".exr": _read_exr}[suffix](self.path)
        except InputError as error:
            raise InputError(f"--depth {self.spec}: {error}") from None
        except (OSError, ValueError, RuntimeError) as error:
            raise InputError(f"--depth {self.spec}: unreadable {suffix} file ({_one_line(error)})") from None
        if depth.ndim == 3 and depth.shape[2] == 1:
            depth = depth[..., 0]
        if depth.ndim != 2 or min(depth.shape) < 2:
            raise InputError(f"--depth {self.spec}: expected a 2-D depth map, got shape {depth.shape}")
        depth = depth.astype(np.float32)
        depth[~(np.isfinite(depth) & (depth > 0))] = np.nan
        if np.isnan(depth).all():
            raise InputError(f"--depth {self.spec}: no positive finite depth in the file")
        return depth


def _read_npy(path: Path) -> np.ndarray:
    depth = np.load(path, allow_pickle=False)
    if depth.dtype.kind not in "fiu":
        raise InputError(f"expected a numeric array, got dtype {depth.dtype}")
    return depth


def _read_png_mm(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as png:
        png.load()
        # Pillow opens 16-bit grayscale PNGs as mode "I;16" (or "I" for some encoders).
        if png.mode not in ("I;16", "I;16B", "I"):
            raise InputError(f"expected a 16-bit single-channel PNG in millimetres, got mode {png.mode}")
        depth_mm = np.asarray(png, dtype=np.float32)
    return depth_mm / 1000.0


def _read_exr(path: Path) -> np.ndarray:
    try:
        import OpenEXR
    except ImportError:
        raise InputError("reading .exr needs the OpenEXR package (pip install 'metrichmsr[exr]')") from None
    with OpenEXR.File(str(path)) as exr:
        channels = {name: channel.pixels for name, channel in exr.channels().items()}
    for name in ("Z", "depth", "Y", "R"):
        if name in channels:
            return channels[name]
    if len(channels) == 1 or "RGB" in channels or "RGBA" in channels:
        pixels = channels.get("RGB", channels.get("RGBA", next(iter(channels.values()))))
        return pixels[..., 0] if pixels.ndim == 3 else pixels
    raise InputError(f"no depth channel (Z, depth, Y or R) among {sorted(channels)}")


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:200]


# ---------------------------------------------------------------------------------------
# hf:
# ---------------------------------------------------------------------------------------


class HFDepth(DepthBackend):
    """``--depth hf:MODEL``: a ``transformers`` depth-estimation model.

    Expects a metric model (Depth Anything V2 Metric, Depth Pro (whose processor needs
    ``torchvision``), ZoeDepth); a relative-depth
    model (disparity up to scale and shift) is refused when it says so in its config. The
    output is the processor's ``post_process_depth_estimation`` at the image's size. Depth
    Pro's depth scales with the focal length it assumes: it is rescaled to ``K``'s fx, so the
    scene and the people share one camera. Confidence is :func:`edge_confidence`.

    Loading tries the local Hugging Face cache first and the network only when that fails and
    ``HF_HUB_OFFLINE`` is not set; failures become one-line InputErrors.
    """

    def __init__(self, model: str, device: str = "cpu"):
        """``device``: ``cpu``, ``cuda`` or ``auto`` (CUDA when available, decided when loading)."""
        self.model_id = model
        self.device = device
        self.spec = f"hf:{model}"
        if importlib.util.find_spec("transformers") is None:
            raise InputError(f"--depth {self.spec} needs the transformers package (pip install 'metrichmsr[hf]')")
        self.folder = Path(model).expanduser()
        # A hub id is "name" or "owner/name"; anything else path-like must be an existing folder.
        looks_like_path = model.startswith((".", "/", "~")) or model.count("/") > 1
        if looks_like_path and not self.folder.is_dir():
            raise InputError(f"--depth {self.spec}: no such model folder")
        self._model = None
        self._processor = None

    def check_available(self, timeout_s: float = 5.0) -> None:
        """InputError, within about ``timeout_s``, unless the model is a local folder, in the
        local Hugging Face cache, or on a hub that answers. Checked before any model loads, so
        an offline machine gets one line instead of minutes of download retries."""
        if self.folder.is_dir():
            return
        from huggingface_hub import HfApi, try_to_load_from_cache
        from huggingface_hub.errors import HFValidationError, RepositoryNotFoundError

        try:
            if isinstance(try_to_load_from_cache(self.model_id, "config.json"), str):
                return
        except HFValidationError as error:
            raise InputError(f"--depth {self.spec}: not a model folder or a hub model id ({_one_line(error)})") from None
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            raise InputError(f"--depth {self.spec}: not in the local Hugging Face cache, and HF_HUB_OFFLINE is set")
        try:
            HfApi().model_info(self.model_id, timeout=timeout_s)
        except RepositoryNotFoundError:
            raise InputError(f"--depth {self.spec}: no such model on the Hugging Face hub (or it needs a login)") from None
        except Exception as error:  # the HTTP client's many network errors: all mean "cannot reach it"
            raise InputError(
                f"--depth {self.spec}: not in the local Hugging Face cache, and the hub cannot be reached "
                f"({_one_line(error)}); download it once where there is network, or use file:DEPTH"
            ) from None

    def load(self) -> None:
        """Load model and processor (once); InputError when they cannot be had."""
        if self._model is not None:
            return
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        source = str(self.folder) if self.folder.is_dir() else self.model_id
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        error: Exception | None = None
        for local_only in (True, False) if not offline else (True,):
            try:
                processor = AutoImageProcessor.from_pretrained(source, local_files_only=local_only)
                model = AutoModelForDepthEstimation.from_pretrained(source, local_files_only=local_only)
                break
            except ImportError as caught:  # e.g. Depth Pro's processor needs torchvision
                raise InputError(f"--depth {self.spec}: a package the model needs is missing ({_one_line(caught)})") from None
            except (OSError, ValueError, KeyError) as caught:
                error = caught
        else:
            where = "not in the local Hugging Face cache" + ("" if offline else " and not downloadable")
            raise InputError(f"--depth {self.spec}: cannot load the model ({where}: {_one_line(error)})")
        if getattr(model.config, "depth_estimation_type", "metric") == "relative":
            raise InputError(f"--depth {self.spec}: a relative-depth model; use a metric one (e.g. a *-Metric-* model)")
        from metrichmsr.devices import resolve_device

        self.device = str(resolve_device(self.device))
        self._processor, self._model = processor, model.to(self.device).eval()

    def estimate(
        self, image: np.ndarray, K: np.ndarray, people_joints: np.ndarray | None = None, floor: FloorPlane | None = None
    ) -> DepthEstimate:
        import torch

        width, height = _check_image(image, K)
        self.load()
        inputs = self._processor(images=np.asarray(image), return_tensors="pt").to(self.device)
        with torch.inference_mode():
            outputs = self._model(**inputs)
        result = self._processor.post_process_depth_estimation(outputs, target_sizes=[(height, width)])[0]
        depth = result["predicted_depth"].float().cpu().numpy()
        if "field_of_view" in result:
            # Depth Pro: metric depth = f_px / (W * canonical inverse depth). With its own
            # field-of-view head the processor used its estimated focal; else it used none.
            assumed_focal = result.get("focal_length")
            depth = depth * float(K[0, 0]) / (float(assumed_focal) if assumed_focal is not None else width)
        depth = depth.astype(np.float32)
        depth[~(np.isfinite(depth) & (depth > 0))] = np.nan
        return DepthEstimate(depth, edge_confidence(depth), self.spec)
