"""Reading user images: decode, EXIF orientation, colour normalisation, clear errors."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from metrichmsr.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
ORIENTATION_TAG = 0x0112
MIN_IMAGE_SIDE = 16
# Pillow refuses images above ~179 Mpx as decompression bombs; a 12000x9000 photo is 108 Mpx.
MAX_IMAGE_PIXELS = 400_000_000


def _to_rgb8(image: Image.Image) -> np.ndarray:
    """Any Pillow mode -> (H, W, 3) uint8 RGB. 16-bit and float images are rescaled to 8 bits."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        data = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or data.max() > 255 else 255.0
        if image.mode == "I" and data.max() > 65535:
            top = float(data.max())
        gray = np.clip(data / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent pixels become white rather than whatever colour the encoder left there.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Check that ``path`` is a non-empty file, then turn Pillow's errors inside the block into
    one-line InputErrors."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image file Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{path}: image too large (over {MAX_IMAGE_PIXELS // 1_000_000} Mpx)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"{path}: unreadable or truncated image ({reason})") from None


def _check_size(path: Path, width: int, height: int) -> None:
    if min(height, width) < MIN_IMAGE_SIDE:
        raise InputError(f"{path}: image too small ({width}x{height}); need at least {MIN_IMAGE_SIDE} px a side")


def load_image(path: str | Path) -> tuple[np.ndarray, dict[int, object]]:
    """Decode an image file (the first frame of an animation).

    Returns the (H, W, 3) uint8 RGB pixels after EXIF orientation, and the EXIF tags (base
    IFD merged with the Exif IFD, tag id -> value; empty when there are none). Raises
    ``InputError`` with a one-line reason for anything that is not a readable image.
    """
    path = Path(path)
    with _reading(path), Image.open(path) as image:
        image.load()
        exif = image.getexif()
        tags: dict[int, object] = dict(exif)
        tags.update(exif.get_ifd(0x8769))
        image = ImageOps.exif_transpose(image)
        pixels = _to_rgb8(image)
    height, width = pixels.shape[:2]
    _check_size(path, width, height)
    return pixels, tags


def image_size(path: str | Path) -> tuple[int, int]:
    """(W, H) of an image file as :func:`load_image` would decode it (after EXIF orientation),
    read from its header only: fast, but a file cut short after its header passes. Raises
    ``InputError`` as :func:`load_image` does for anything else."""
    path = Path(path)
    with _reading(path), Image.open(path) as image:
        width, height = image.size
        if image.getexif().get(ORIENTATION_TAG) in (5, 6, 7, 8):  # turned a quarter
            width, height = height, width
    _check_size(path, width, height)
    return width, height


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder`` (by suffix), sorted by name."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
