"""Reading user images: decode, EXIF orientation, colour normalisation, clear errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from metrichmsr.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
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


def load_image(path: str | Path) -> tuple[np.ndarray, dict[int, object]]:
    """Decode an image file.

    Returns the (H, W, 3) uint8 RGB pixels after EXIF orientation, and the EXIF tags (base
    IFD merged with the Exif IFD, tag id -> value; empty when there are none). Raises
    ``InputError`` with a one-line reason for anything that is not a readable image.
    """
    path = Path(path)
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
            with Image.open(path) as image:
                image.load()
                exif = image.getexif()
                tags: dict[int, object] = dict(exif)
                tags.update(exif.get_ifd(0x8769))
                image = ImageOps.exif_transpose(image)
                pixels = _to_rgb8(image)
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image file Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{path}: image too large (over {MAX_IMAGE_PIXELS // 1_000_000} Mpx)") from None
    except (OSError, SyntaxError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"{path}: unreadable or truncated image ({reason})") from None
    height, width = pixels.shape[:2]
    if min(height, width) < MIN_IMAGE_SIDE:
        raise InputError(f"{path}: image too small ({width}x{height}); need at least {MIN_IMAGE_SIDE} px a side")
    return pixels, tags


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder`` (by suffix), sorted by name."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
