"""The checks the command line and ``Recoverer.infer`` share: one InputError for each bad value,
the good ones passed through as arrays."""

import numpy as np
import pytest

from metrichmsr.errors import InputError
from metrichmsr.inputs import MAX_CAMERA_HEIGHT_M, check_boxes, check_camera_height, check_image, check_K, parse_intrinsics


@pytest.mark.parametrize(
    "text, expected",
    [("500,510,320,240", (500.0, 510.0, 320.0, 240.0)), (" 1e3, 9.5e2 ,-3, 0 ", (1000.0, 950.0, -3.0, 0.0))],
)
def test_parse_intrinsics_good(text, expected):
    assert parse_intrinsics(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1,2,3",
        "1,2,3,4,5",
        "a,b,c,d",
        "500,500,nan,240",
        "500,inf,320,240",
        "0,500,320,240",
        "500,-1,320,240",
        "500;500;320;240",
    ],
)
def test_parse_intrinsics_bad(text):
    with pytest.raises(InputError, match="--intrinsics"):
        parse_intrinsics(text)


@pytest.mark.parametrize("value", [1.6, 3, np.float32(2.5), MAX_CAMERA_HEIGHT_M])
def test_camera_height_good(value):
    assert check_camera_height(value) == pytest.approx(float(value))


@pytest.mark.parametrize("value", ["1.6", None, True, 0, -1.0, float("nan"), float("inf"), MAX_CAMERA_HEIGHT_M * 1.01, [1.6]])
def test_camera_height_bad(value):
    with pytest.raises(InputError, match="camera height"):
        check_camera_height(value)


def test_image_good_and_pillow():
    from PIL import Image

    assert check_image(np.zeros((16, 20, 3), np.uint8)).shape == (16, 20, 3)
    assert check_image(Image.new("RGB", (20, 16))).shape == (16, 20, 3)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((15, 40, 3), np.uint8),
        np.zeros((40, 40), np.uint8),
        np.zeros((40, 40, 4), np.uint8),
        np.zeros((40, 40, 3)),
        "x",
        None,
    ],
    ids=["15 px", "gray", "rgba", "float", "string", "none"],
)
def test_image_bad(image):
    with pytest.raises(InputError, match="image"):
        check_image(image)


def test_K_good():
    K = [[500, 0, 320], [0, 510, 240], [0, 0, 1]]
    np.testing.assert_array_equal(check_K(K), np.asarray(K, dtype=np.float64))


@pytest.mark.parametrize(
    "K",
    [
        "500,500,320,240",
        None,
        np.eye(4),
        [[0, 0, 1], [0, 1, 1], [0, 0, 1]],
        [[np.nan, 0, 1], [0, 1, 1], [0, 0, 1]],
        [[1, 0], [0, 1]],
    ],
    ids=["string", "none", "4x4", "zero focal", "nan", "2x2"],
)
def test_K_bad(K):
    with pytest.raises(InputError, match="K must"):
        check_K(K)


@pytest.mark.parametrize(
    "boxes, n",
    [([], 0), ([1, 2, 30, 40], 1), ([[1, 2, 30, 40], [5, 5, 9, 9]], 2), (np.zeros((0, 4)), 0), ([[-50, -50, 1, 1]], 1)],
)
def test_boxes_good(boxes, n):
    assert check_boxes(boxes, size=(64, 48)).shape == (n, 4)


@pytest.mark.parametrize(
    "boxes, match",
    [
        ("[[1, 2, 3, 4]]", "expected a list"),
        ([[10, 10], [40, 40]], "expected a list"),
        ([[1, 2, 3]], "expected a list"),
        ([[1, 2, 3, "x"]], "expected a list"),
        ([[5, 5, 1, 1]], "x0 < x1"),
        ([[0, 0, np.inf, 4]], "x0 < x1"),
        ([[64, 0, 80, 10]], "box 0 .* outside the 64x48 image"),
        ([[1, 1, 5, 5], [-9, -9, -1, 20]], "box 1 .* outside"),
        ([[0, 48, 10, 60]], "outside"),
    ],
)
def test_boxes_bad(boxes, match):
    with pytest.raises(InputError, match=match):
        check_boxes(boxes, size=(64, 48))
