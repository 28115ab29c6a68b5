"""Faces, for the people a crowd shows only from the chest up.

In a group photo the back rows are faces and shoulders between other people's heads.
BlazePose's person detector keys on the face too, but on a scan tile holding a dozen faces it
returns a few people and misses the rest (the sample photo: 23 of about 40). BlazeFace's
full-range model (``modules/face_detection`` inside the mediapipe wheel, nothing downloaded)
finds nearly every face of such a photo in a few milliseconds a tile; ``PoseDetector.detect``
then looks for a person at each face no pose holds.

The detector sees a 192 x 192 view and finds faces down to about 8% of it, so
:class:`FaceDetector` runs on the whole image and on overlapping square tiles
(``_tiles.scan_tiles``) whose smallest side lets a ``min_face_px`` face fill that share.
"""

import mediapipe as mp
import numpy as np

from metrichmsr._quiet import native_output_silenced
from metrichmsr.errors import InputError
from metrichmsr.perception._tiles import box_iou, crop_square, scan_tiles, shrunk

#: Smallest face, pixels tall, looked for: BlazePose reads a person's landmarks from a crop
#: three faces wide, which below this is a blur.
MIN_FACE_PX = 16.0
_TILE_SIZE = 192  # pixels: BlazeFace full-range's input side
_MIN_FILL = 0.08  # smallest face height / tile side BlazeFace finds reliably
_DUPLICATE_IOU = 0.3  # two faces overlapping more are one (overlapping tiles see faces twice)


class FaceDetector:
    """Faces in RGB images of any size, with BlazeFace's full-range model from the mediapipe wheel.

    Args:
        min_face_px: smallest face height to look for, in pixels of the detection image (the
            input shrunk so its longer side is at most ``detect_max_side``).
        detect_max_side: longer side, in pixels, of the image the tiles are cut from.
        min_score: BlazeFace's detection threshold, in (0, 1).
    """

    def __init__(self, min_face_px: float = MIN_FACE_PX, detect_max_side: int = 1920, min_score: float = 0.5):
        if not min_face_px > 0:
            raise InputError(f"min_face_px must be > 0, got {min_face_px}")
        if detect_max_side < _TILE_SIZE:
            raise InputError(f"detect_max_side must be >= {_TILE_SIZE}, got {detect_max_side}")
        if not 0.0 < min_score < 1.0:
            raise InputError(f"min_score must be in (0, 1), got {min_score}")
        self.min_face_px = float(min_face_px)
        self.detect_max_side = int(detect_max_side)
        with native_output_silenced():
            self._graph = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_score)

    def detect(self, image: np.ndarray) -> np.ndarray:
        """(F, 5) float64 faces ``[x0, y0, x1, y1, score]`` in pixels (pixel-centre convention)
        of an (H, W, 3) uint8 RGB image, at least ``min_face_px`` tall in the detection image,
        most confident first, each face once."""
        if self._graph is None:
            raise RuntimeError("FaceDetector.detect called after close()")
        image, scale = shrunk(image, self.detect_max_side)
        found = []
        for tile in scan_tiles(image.shape[1], image.shape[0], self.min_face_px / _MIN_FILL, _TILE_SIZE):
            result = self._graph.process(crop_square(image, tile))
            for detection in result.detections or []:
                box = detection.location_data.relative_bounding_box
                edges = np.array([box.xmin, box.ymin, box.xmin + box.width, box.ymin + box.height]) * tile.side
                edges = (edges + np.tile([tile.x0, tile.y0], 2)) / scale - 0.5
                if edges[3] - edges[1] >= self.min_face_px / scale:
                    found.append([*edges, detection.score[0]])
        found.sort(key=lambda face: -face[4])
        faces: list[list[float]] = []
        for face in found:
            if all(box_iou(np.array(face[:4]), np.array(kept[:4])) < _DUPLICATE_IOU for kept in faces):
                faces.append(face)
        return np.array(faces, dtype=np.float64).reshape(-1, 5)

    def close(self) -> None:
        """Releases the BlazeFace graph; safe to call twice."""
        if self._graph is not None:
            self._graph.close()
            self._graph = None

    def __enter__(self) -> "FaceDetector":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
