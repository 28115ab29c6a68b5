"""Image decoding: every colour mode to (H, W, 3) uint8 RGB, EXIF orientation, and one clear
InputError naming the file for anything that is not a readable image."""

import numpy as np
import pytest
from PIL import Image

from metrichmsr.errors import InputError
from metrichmsr.image_io import MIN_IMAGE_SIDE, image_size, list_images, load_image

ORIENTATION = 0x0112
# Near-lossless JPEG (no chroma subsampling, which smears colours across block edges).
SAVE_OPTIONS = {".jpg": {"quality": 95, "subsampling": 0}, ".webp": {"lossless": True}}


def pattern(height=48, width=64):
    """(H, W, 3) uint8 with large flat blocks (JPEG-safe) that differ in every quadrant."""
    image = np.zeros((height, width, 3), np.uint8)
    image[: height // 2, : width // 2] = (220, 30, 30)
    image[: height // 2, width // 2 :] = (30, 200, 40)
    image[height // 2 :, : width // 2] = (40, 50, 210)
    image[height // 2 :, width // 2 :] = (240, 240, 60)
    return image


@pytest.mark.parametrize("suffix, tol", [(".png", 0), (".jpg", 4), (".bmp", 0), (".webp", 0)])
def test_rgb_loads_as_hw3_uint8(tmp_path, suffix, tol):
    expected = pattern()
    path = tmp_path / f"rgb{suffix}"
    Image.fromarray(expected).save(path, **SAVE_OPTIONS.get(suffix, {}))
    pixels, exif = load_image(path)
    assert pixels.shape == (48, 64, 3) and pixels.dtype == np.uint8
    assert np.abs(pixels.astype(int) - expected.astype(int)).max() <= tol
    assert exif == {}


def test_load_image_accepts_str_path(tmp_path):
    path = tmp_path / "rgb.png"
    Image.fromarray(pattern()).save(path)
    np.testing.assert_array_equal(load_image(str(path))[0], pattern())


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (32, 1))  # 32 x 64 ramp
    path = tmp_path / "gray.png"
    Image.fromarray(gray, mode="L").save(path)
    pixels, _ = load_image(path)
    assert pixels.shape == (32, 64, 3) and pixels.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(pixels[..., channel], gray)


def test_rgba_becomes_rgb_on_white(tmp_path):
    rgba = np.zeros((32, 40, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)  # colour hidden under full transparency
    rgba[:, :20, 3] = 255  # left half opaque
    rgba[:, 20:, 3] = 0  # right half transparent
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    pixels, _ = load_image(path)
    assert pixels.shape == (32, 40, 3)
    assert (pixels[:, :20] == (10, 20, 30)).all()
    assert (pixels[:, 20:] == 255).all()


def test_half_transparent_blends_with_white(tmp_path):
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 3] = 128
    path = tmp_path / "half.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    pixels, _ = load_image(path)
    assert np.abs(pixels.astype(int) - 127).max() <= 1


def test_palette_with_transparency_becomes_white(tmp_path):
    image = Image.new("P", (20, 20), 0)
    image.putpalette([200, 10, 10] + [0, 0, 255] * 255)
    image.paste(1, (10, 0, 20, 20))
    path = tmp_path / "palette.png"
    image.save(path, transparency=1)
    pixels, _ = load_image(path)
    assert (pixels[:, :10] == (200, 10, 10)).all()
    assert (pixels[:, 10:] == 255).all()


def test_16bit_png_is_scaled_to_8bit(tmp_path):
    values = np.zeros((20, 30), np.uint16)
    values[:, :10] = 65535
    values[:, 10:20] = 32768
    values[:, 20:] = 257  # 1/255 of full scale
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")  # really decoded as a 16-bit image
    pixels, _ = load_image(path)
    assert pixels.shape == (20, 30, 3) and pixels.dtype == np.uint8
    assert (pixels[:, :10] == 255).all()
    assert (np.abs(pixels[:, 10:20].astype(int) - 128) <= 1).all()
    assert (pixels[:, 20:] == 1).all()
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 0] == pixels[..., 2]).all()


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_exif_orientation_6_rotates_clockwise(tmp_path, suffix):
    """Orientation 6: the stored image must turn 90 deg clockwise to display upright, so the
    stored top-left block ends up top-right and the shape is transposed."""
    stored = pattern(40, 64)
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    path = tmp_path / f"rotated{suffix}"
    Image.fromarray(stored).save(path, exif=exif, **SAVE_OPTIONS.get(suffix, {}))
    pixels, tags = load_image(path)
    assert pixels.shape == (64, 40, 3)
    expected = np.rot90(stored, k=-1)  # clockwise
    tol = 4 if suffix == ".jpg" else 0
    assert np.abs(pixels.astype(int) - expected.astype(int)).max() <= tol
    # Spelled out on the blocks: stored top-left (red) -> top-right; stored bottom-left (blue) -> top-left.
    assert np.abs(pixels[2, -3].astype(int) - (220, 30, 30)).max() <= tol
    assert np.abs(pixels[2, 2].astype(int) - (40, 50, 210)).max() <= tol
    assert tags.get(ORIENTATION) == 6


def test_exif_orientation_1_keeps_the_image(tmp_path):
    exif = Image.Exif()
    exif[ORIENTATION] = 1
    path = tmp_path / "upright.png"
    Image.fromarray(pattern()).save(path, exif=exif)
    np.testing.assert_array_equal(load_image(path)[0], pattern())


def assert_input_error_names(path, match=None):
    with pytest.raises(InputError, match=match) as raised:
        load_image(path)
    message = str(raised.value)
    assert str(path) in message
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    assert_input_error_names(tmp_path / "nope.jpg", "no such file")


def test_folder_is_not_an_image(tmp_path):
    folder = tmp_path / "photos.jpg"
    folder.mkdir()
    assert_input_error_names(folder, "not a file")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.touch()
    assert_input_error_names(path, "empty")


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("these are not the pixels you are looking for\n" * 20)
    assert_input_error_names(path, "not an image")


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_image(tmp_path, suffix):
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)  # incompressible: many bytes
    full = tmp_path / f"full{suffix}"
    Image.fromarray(noisy).save(full)
    data = full.read_bytes()
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: len(data) // 2])
    assert_input_error_names(path, "truncated|unreadable|not an image")


@pytest.mark.parametrize("size", [(8, 8), (MIN_IMAGE_SIDE - 1, 200), (200, MIN_IMAGE_SIDE - 1)])
def test_tiny_image(tmp_path, size):
    path = tmp_path / "tiny.png"
    Image.new("RGB", size, (1, 2, 3)).save(path)
    assert_input_error_names(path, "too small")


def test_smallest_allowed_image(tmp_path):
    path = tmp_path / "small.png"
    Image.new("RGB", (MIN_IMAGE_SIDE, MIN_IMAGE_SIDE)).save(path)
    assert load_image(path)[0].shape == (MIN_IMAGE_SIDE, MIN_IMAGE_SIDE, 3)


def test_list_images_filters_by_suffix_and_sorts(tmp_path):
    for name in ["b.png", "a.JPG", "c.jpeg", "d.txt", "e.json", "f.webp", "g.TIFF", "noext", "h.bmp", "i.gif"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.jpg").mkdir()  # a folder with an image suffix is not an image
    (tmp_path / "sub.jpg" / "inner.png").write_bytes(b"x")
    names = [p.name for p in list_images(tmp_path)]
    assert names == ["a.JPG", "b.png", "c.jpeg", "f.webp", "g.TIFF", "h.bmp", "i.gif"]
    assert all(p.parent == tmp_path for p in list_images(tmp_path))


def test_list_images_of_empty_folder(tmp_path):
    assert list_images(tmp_path) == []


def test_gif_is_read_as_its_first_frame(tmp_path):
    """A GIF given alone is read, so a folder run reads it too (it is listed)."""
    frames = [Image.new("RGB", (40, 30), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "clip.gif", save_all=True, append_images=frames[1:])
    pixels, _ = load_image(tmp_path / "clip.gif")
    assert pixels.shape == (30, 40, 3) and pixels.dtype == np.uint8
    assert pixels[..., 0].mean() > 200 and pixels[..., 2].mean() < 50


@pytest.mark.parametrize("orientation, size", [(1, (40, 30)), (6, (30, 40)), (8, (30, 40))])
def test_image_size_reads_the_header_as_load_image_decodes(tmp_path, orientation, size):
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new("RGB", (40, 30)).save(path, exif=exif)
    assert image_size(path) == size == load_image(path)[0].shape[1::-1]


def test_image_size_refuses_what_load_image_refuses(tmp_path):
    (tmp_path / "empty.jpg").touch()
    (tmp_path / "text.png").write_text("no")
    Image.new("RGB", (8, 40)).save(tmp_path / "thin.png")
    for name, words in (
        ("empty.jpg", "empty file"),
        ("text.png", "not an image"),
        ("thin.png", "too small"),
        ("nope.png", "no such"),
    ):
        with pytest.raises(InputError, match=words):
            image_size(tmp_path / name)
