"""Where a fixed camera's picture moves: OpenCV's MOG2 background subtractor.

A fixed camera's scene stands still and its people move, so a frame's moving pixels say where
people can be: ``PoseDetector.rescan`` scans only the tiles where something moves, instead of
the whole frame (the tiled scan is what a clip's frames cost most). The model runs on a shrunk
grey copy of each frame (a person's legs stay several pixels wide at 320 px), so it costs a
few milliseconds a frame, and answers at that size: the scan resizes it to its own.
"""

import cv2
import numpy as np

from metrichmsr.perception._tiles import shrunk

#: Longer side (pixels) of the copy the background model runs on.
MOTION_MAX_SIDE = 320
#: Frames the background model remembers (MOG2's ``history``): someone who stops for longer
#: becomes background, but is followed by then.
MOTION_HISTORY = 200


class MovingPixels:
    """A fixed camera's moving pixels, frame by frame.

    Args:
        max_side: the longer side, in pixels, of the copy the model runs on.
        history: frames the background model remembers.
    """

    def __init__(self, max_side: int = MOTION_MAX_SIDE, history: int = MOTION_HISTORY):
        if max_side < 16:
            raise ValueError(f"max_side must be >= 16, got {max_side}")
        self.max_side = int(max_side)
        # Shadows are found (and left out as not moving): a walker's shadow is no new person.
        self._model = cv2.createBackgroundSubtractorMOG2(history=int(history), detectShadows=True)

    def update(self, image: np.ndarray) -> np.ndarray:
        """(h, w) bool over ``image`` ((H, W, 3) uint8 RGB, the clip's next frame), shrunk so
        its longer side is at most ``max_side``: the pixels that moved against the background
        learnt from the frames before; none on the first."""
        small, _ = shrunk(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), self.max_side)
        return self._model.apply(small) == 255  # 127 is a shadow
