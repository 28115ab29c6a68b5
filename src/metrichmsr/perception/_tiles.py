"""Square crops, the multi-scale tile layout and person-box geometry for the BlazePose scan.

Conventions: boxes are ``[x0, y0, x1, y1]`` float64 and boxes and points are in the OpenCV
pixel-centre convention, except for :class:`Crop`, which works in pixel *edges* (its window
covers ``[x0, x0 + side)``) so that every crop and resize is a pure scale and shift; callers
convert with ``centre = edge - 0.5``.
"""

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class Crop:
    """A square window ``[x0, x0 + side) x [y0, y0 + side)`` of a source image, in source pixel
    edges, resampled to ``size`` x ``size`` pixels. The window may reach outside the image;
    that part reads as black."""

    x0: int
    y0: int
    side: int
    size: int

    @classmethod
    def around_box(cls, box: np.ndarray, pad: float, min_size: int, max_size: int) -> "Crop":
        """The square centred on ``box`` (pixel-centre ``[x0, y0, x1, y1]``) whose side is the
        box's longer side plus ``pad`` of it on each side, resampled to that side clipped to
        ``[min_size, max_size]`` pixels."""
        centre = (box[:2] + box[2:]) / 2.0 + 0.5  # pixel centres -> edges
        side = max(1, int(round(float(np.max(box[2:] - box[:2])) * (1.0 + 2.0 * pad))))
        x0, y0 = np.round(centre - side / 2.0).astype(int)
        return cls(int(x0), int(y0), side, int(np.clip(side, min_size, max_size)))

    def to_source(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) coordinates normalised to the crop (0 and 1 are its edges, as mediapipe gives
        landmarks) -> (N, 2) source pixel edges."""
        return np.array([self.x0, self.y0], dtype=np.float64) + xy * self.side

    def visible_window(self, width: int, height: int) -> np.ndarray:
        """(4,) ``[x0, y0, x1, y1]`` in source pixel edges: the part of the window inside an
        image of ``width`` x ``height`` pixels."""
        return np.array(
            [
                max(self.x0, 0),
                max(self.y0, 0),
                min(self.x0 + self.side, width),
                min(self.y0 + self.side, height),
            ],
            dtype=np.float64,
        )


def shrunk(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``image`` (H, W, C) resized (area averaging) so its longer side is at most ``max_side``
    pixels, and the scale applied (1.0: the image itself, not copied)."""
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(width, height))
    if scale == 1.0:
        return image, scale
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def crop_square(image: np.ndarray, crop: Crop) -> np.ndarray:
    """Resamples ``crop`` of ``image`` (H, W, C) uint8 into a (size, size, C) uint8 array.

    Only the in-image part of the window is read, so a crop of a 12000 x 9000 photo never
    allocates the full padded window. Shrinking uses area averaging (bilinear sampling alone
    would alias fine texture that BlazePose relies on); the remaining sub-pixel scale and shift
    is one bilinear affine warp, so ``Crop.to_source`` stays exact.
    """
    height, width = image.shape[:2]
    wx0, wy0, wx1, wy1 = crop.visible_window(width, height).astype(int)
    out_shape = (crop.size, crop.size) + image.shape[2:]
    if wx1 <= wx0 or wy1 <= wy0:
        return np.zeros(out_shape, dtype=np.uint8)
    part = image[wy0:wy1, wx0:wx1]
    scale = crop.size / crop.side  # output pixels per source pixel
    if scale < 1.0:
        shrunk_w = max(1, int(round(part.shape[1] * scale)))
        shrunk_h = max(1, int(round(part.shape[0] * scale)))
        src_per_part = np.array([part.shape[1] / shrunk_w, part.shape[0] / shrunk_h])
        part = cv2.resize(part, (shrunk_w, shrunk_h), interpolation=cv2.INTER_AREA)
    else:
        src_per_part = np.ones(2)
    # Edge coordinates: source = window_origin + part_edge * src_per_part and
    # source = crop_origin + out_edge / scale, hence part_edge = a * out_edge + b; warpAffine
    # works on pixel centres (edge - 0.5).
    a = 1.0 / (scale * src_per_part)
    b = np.array([crop.x0 - wx0, crop.y0 - wy0]) / src_per_part
    shift = b + 0.5 * a - 0.5
    matrix = np.array([[a[0], 0.0, shift[0]], [0.0, a[1], shift[1]]])
    warped = cv2.warpAffine(
        np.ascontiguousarray(part),
        matrix,
        (crop.size, crop.size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return warped.reshape(out_shape)


def scan_tiles(
    width: int,
    height: int,
    min_side: float,
    size: int,
    max_ratio: float = 2.0,
    overlap: float = 1.0 / 3.0,
) -> list[Crop]:
    """The crops the multi-person scan runs BlazePose on, for a ``width`` x ``height`` image.

    BlazePose's detector sees a 224 x 224 letterboxed view and keys on the face, so it only
    finds people filling roughly a third or more of its view. The scan therefore runs on the
    whole image, letterboxed, for people that fill it, and on square tiles whose sides grow
    geometrically, by at most ``max_ratio``, from ``min_side`` to the image's shorter side
    (a wide panorama's people are short next to its width). Each level's tiles overlap by
    ``overlap`` of their side, so a person up to ``overlap`` of a tile tall lies whole inside
    some tile and a taller one still has its head in one. Every crop is resampled to ``size``
    pixels. Returns crops in source pixels, whole image first.
    """
    long_side, short_side = max(width, height), min(width, height)
    tiles = [Crop((width - long_side) // 2, (height - long_side) // 2, long_side, size)]
    if short_side < min_side:
        return tiles
    steps = int(np.ceil(np.log(short_side / min_side) / np.log(max_ratio)))
    for side in np.geomspace(min_side, short_side, steps + 1):
        tile = int(round(side))
        stride = tile * (1.0 - overlap)
        # Evenly spread starts that cover [0, extent) with at least the requested overlap.
        counts = [int(np.ceil((extent - tile) / stride)) + 1 for extent in (width, height)]
        xs = np.linspace(0, width - tile, counts[0]).round().astype(int)
        ys = np.linspace(0, height - tile, counts[1]).round().astype(int)
        tiles.extend(Crop(int(x), int(y), tile, size) for y in ys for x in xs)
    return tiles


def landmarks_box(xy: np.ndarray, weight: np.ndarray | None = None, pad: float = 0.1) -> np.ndarray | None:
    """(4,) box around the (N, 2) pixel-centre points ``xy`` whose ``weight`` > 0.5 (all points
    when ``weight`` is None), grown by ``pad`` of its width and height on each side (landmarks
    stop at the eyes, wrists and heels, the body does not). None when fewer than 3 points
    qualify."""
    if weight is not None:
        xy = xy[weight > 0.5]
    if len(xy) < 3:
        return None
    low, high = xy.min(axis=0), xy.max(axis=0)
    margin = pad * (high - low)
    return np.concatenate([low - margin, high + margin])


def clip_box(box: np.ndarray, width: int, height: int) -> np.ndarray:
    """(4,) box clipped to the pixel-centre extent ``[0, width - 1] x [0, height - 1]``."""
    limit = np.array([width - 1, height - 1, width - 1, height - 1], dtype=np.float64)
    return np.clip(box, 0.0, limit)


def box_area(box: np.ndarray) -> float:
    """Area of a (4,) box; 0 for an empty one."""
    return float(max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0))


def _intersection(a: np.ndarray, b: np.ndarray) -> float:
    return box_area(np.concatenate([np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])]))


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (4,) boxes."""
    inter = _intersection(a, b)
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def match_boxes(pred_boxes: np.ndarray, true_boxes: np.ndarray, min_iou: float) -> dict[int, int]:
    """One-to-one matches {true index: predicted index} maximising total IoU, each >= min_iou.

    pred_boxes (P, 4), true_boxes (T, 4), [x0, y0, x1, y1] px.
    """
    if len(pred_boxes) == 0 or len(true_boxes) == 0:
        return {}
    iou = np.array([[box_iou(p, t) for p in pred_boxes] for t in true_boxes])
    rows, cols = linear_sum_assignment(-iou)
    return {int(t): int(p) for t, p in zip(rows, cols) if iou[t, p] >= min_iou}


def box_containment(inner: np.ndarray, outer: np.ndarray) -> float:
    """Fraction of the (4,) box ``inner``'s area inside the (4,) box ``outer``."""
    area = box_area(inner)
    return _intersection(inner, outer) / area if area > 0 else 0.0


#: Refined poses whose boxes overlap by more than this (IoU) are one person whatever their
#: landmarks say: the second skeleton is BlazePose's misreading of that person on another
#: crop, which HumanMoE reads at another depth. On the held-out renders no such pair (13)
#: was two true people; of the 486 pairs of true people there, 2 overlap that much. Before
#: refinement both are kept: each crop may refine to the better reading (merging there too
#: worsened the held-out median depth error 4.9 -> 5.2%).
REFINED_BOXES_DECIDE_IOU = 0.6


def same_person(
    box_a: np.ndarray,
    landmarks_a: np.ndarray,
    box_b: np.ndarray,
    landmarks_b: np.ndarray,
    iou: float = 0.5,
    containment: float = 0.7,
    landmark_tolerance: float = 0.15,
    boxes_decide_iou: float = 1.0,
) -> bool:
    """Whether two detections, (4,) boxes and (33, 3) ``[x, y, visibility]`` landmarks in one
    image's pixels, are the same person.

    Overlap alone is not enough: a child in front of an adult sits inside the adult's box, and
    two people hugging overlap by more than half. So the boxes must overlap (IoU above ``iou``,
    or the smaller one ``containment`` inside the bigger one, as when a tile saw only part of
    a person) *and* the landmarks both see must agree, median distance under
    ``landmark_tolerance`` of the smaller box's height. With fewer than 3 landmarks seen by
    both, nothing tells them apart and overlap decides; and so it does above
    ``boxes_decide_iou`` (default: never), for :data:`REFINED_BOXES_DECIDE_IOU`.
    """
    inter = _intersection(box_a, box_b)
    smaller = min(box_area(box_a), box_area(box_b))
    union = box_area(box_a) + box_area(box_b) - inter
    if smaller <= 0 or (inter / union <= iou and inter / smaller <= containment):
        return False
    both = (landmarks_a[:, 2] > 0.5) & (landmarks_b[:, 2] > 0.5)
    if both.sum() < 3 or inter / union > boxes_decide_iou:
        return True
    distance = np.median(np.linalg.norm(landmarks_a[both, :2] - landmarks_b[both, :2], axis=1))
    height = min(box_a[3] - box_a[1], box_b[3] - box_b[1])
    return bool(distance < landmark_tolerance * height)


def nested_in_bigger(
    boxes: list[np.ndarray],
    scores: list[float],
    inside: float = 0.8,
    height_ratio: float = 0.5,
) -> np.ndarray:
    """(N,) bool: which of the (4,) ``boxes`` lie at least ``inside`` (area fraction) within
    another box over ``1 / height_ratio`` times taller whose score is higher.

    BlazePose run on a crop that shows only part of a person sometimes reads a second, small
    "person" out of a limb or a face; those poses sit inside the real one's box. A child in
    front of an adult is nested too, but seen better than the adult or at least half as tall.
    """
    heights = [box[3] - box[1] for box in boxes]
    return np.array(
        [
            any(
                j != i
                and scores[j] > scores[i]
                and heights[i] < height_ratio * heights[j]
                and box_containment(boxes[i], boxes[j]) >= inside
                for j in range(len(boxes))
            )
            for i in range(len(boxes))
        ],
        dtype=bool,
    )


def suppress_duplicates(
    boxes: list[np.ndarray], landmarks: list[np.ndarray], scores: list[float], boxes_decide_iou: float = 1.0
) -> list[int]:
    """Greedy non-maximum suppression with :func:`same_person` as the overlap test.

    boxes: (4,) each; landmarks: (33, 3) each; scores: higher wins; ``boxes_decide_iou``: as
    in :func:`same_person`. Returns the indices kept, best score first.
    """
    kept: list[int] = []
    for i in np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable"):
        if not any(same_person(boxes[i], landmarks[i], boxes[k], landmarks[k], boxes_decide_iou=boxes_decide_iou) for k in kept):
            kept.append(int(i))
    return kept
