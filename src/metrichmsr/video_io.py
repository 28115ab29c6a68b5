"""Reading user video: a video file (OpenCV) or a folder of frames, with clear errors; and
writing one (:class:`VideoWriter`: H.264 MP4 through imageio-ffmpeg's own ffmpeg).

Like ``image_io``, nothing here imports torch: the command line opens and checks a video
before any model loads. Frames come out as (H, W, 3) uint8 RGB, the same as ``load_image``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from metrichmsr._quiet import native_output_silenced
from metrichmsr.errors import InputError
from metrichmsr.image_io import MIN_IMAGE_SIDE, image_size, list_images, load_image

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")
#: Frame rate assumed for a folder of frames, and for a video file that does not say its own.
DEFAULT_FPS = 25.0
#: A video file that fails to decode this many frames in a row has ended (or is broken beyond use).
MAX_BROKEN_IN_A_ROW = 25


@dataclass
class Frame:
    """One frame of a clip: its index in the clip (0-based, counting every frame, also those
    skipped with ``every``), its time in seconds (``index / fps``) and its (H, W, 3) uint8 RGB pixels."""

    index: int
    time_s: float
    image: np.ndarray


@dataclass
class BrokenFrame:
    """A frame that could not be decoded: its index, time and why (a one-line reason)."""

    index: int
    time_s: float
    reason: str


@dataclass
class VideoInfo:
    """What a check of a clip found, before any frame is recovered.

    ``size`` (W, H) px of its frames; ``fps`` its frame rate (the file's own, else
    :data:`DEFAULT_FPS`); ``frame_count`` the frames it holds (a video file's header may be
    off by a few); ``unreadable`` (file name, reason) of a folder's frames that cannot be used.
    """

    path: Path
    size: tuple[int, int]
    fps: float
    frame_count: int
    is_folder: bool
    frames: list[Path]  # a folder's usable frames in name order; empty for a video file
    unreadable: list[tuple[str, InputError]]


def _capture(path: Path):
    """An opened ``cv2.VideoCapture`` of ``path`` through FFmpeg (never an image-sequence pattern)."""
    import cv2

    with native_output_silenced():  # FFmpeg's and OpenCV's own complaints: the error below says it in one line
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        raise InputError(f"{path}: not a video OpenCV can read")
    return capture


def _rgb(frame_bgr: np.ndarray) -> np.ndarray:
    import cv2

    if frame_bgr.ndim == 2:
        return np.repeat(frame_bgr[..., None], 3, axis=-1)
    return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)


def probe(path: str | Path, fps: float | None = None) -> VideoInfo:
    """Check a video file or a folder of frames and say what it holds; decodes one frame of a
    video, reads only the headers of a folder's frames. Raises ``InputError`` (one line) when
    it is missing, not a video, holds no frame, or its frames are too small.

    ``fps``: the frame rate to use instead of the file's own (or :data:`DEFAULT_FPS`).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        return _probe_folder(path, fps)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise InputError(f"{path}: not a video file ({', '.join(VIDEO_SUFFIXES)}) or a folder of frames")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    import cv2

    capture = _capture(path)
    try:
        with native_output_silenced():
            ok, first = capture.read()
        if not ok or first is None:
            raise InputError(f"{path}: no frame could be decoded (not a video, or a broken one)")
        own_fps = capture.get(cv2.CAP_PROP_FPS)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        capture.release()
    height, width = first.shape[:2]
    if min(width, height) < MIN_IMAGE_SIDE:
        raise InputError(f"{path}: frames too small ({width}x{height}); need at least {MIN_IMAGE_SIDE} px a side")
    rate = fps or (own_fps if math.isfinite(own_fps) and own_fps > 0 else DEFAULT_FPS)
    return VideoInfo(path, (width, height), float(rate), max(count, 1), False, [], [])


def _probe_folder(path: Path, fps: float | None) -> VideoInfo:
    images = list_images(path)
    if not images:
        raise InputError(f"{path}: no image files (.jpg, .png, ...) in this folder")
    sizes, unreadable = {}, []
    for image in images:
        try:
            sizes[image] = image_size(image)
        except InputError as error:
            unreadable.append((image.name, error))
    if not sizes:
        raise InputError(f"{path}: none of its {len(images)} image file(s) can be used ({unreadable[0][1]})")
    size = next(iter(sizes.values()))  # the first readable frame sets the clip's size
    frames = []
    for image, other in sizes.items():
        if other == size:
            frames.append(image)
        else:
            unreadable.append((image.name, InputError(f"{other[0]}x{other[1]}, not the clip's {size[0]}x{size[1]}")))
    return VideoInfo(path, size, float(fps or DEFAULT_FPS), len(images), True, frames, unreadable)


def read_frames(info: VideoInfo, every: int = 1) -> Iterator[Frame | BrokenFrame]:
    """Every ``every``-th frame of the clip ``info`` describes (:func:`probe`), in order.

    A frame that cannot be decoded comes as a :class:`BrokenFrame` and the clip goes on; a
    folder's frames that :func:`probe` found unusable come so too, at their place. In a video
    file, frames that fail with none decoding after them are its end, not broken frames, and
    :data:`MAX_BROKEN_IN_A_ROW` failures in a row end it.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if info.is_folder:
        yield from _read_folder(info, every)
    else:
        yield from _read_video(info, every)


def _read_folder(info: VideoInfo, every: int) -> Iterator[Frame | BrokenFrame]:
    usable = set(info.frames)
    why = dict(info.unreadable)
    for index, path in enumerate(list_images(info.path)):
        if index % every:
            continue
        time_s = index / info.fps
        if path not in usable:
            yield BrokenFrame(index, time_s, str(why.get(path.name, "not readable")))
            continue
        try:
            pixels, _ = load_image(path)
        except InputError as error:
            yield BrokenFrame(index, time_s, str(error))
            continue
        if pixels.shape[1::-1] != info.size:
            yield BrokenFrame(index, time_s, f"{path}: decoded as {pixels.shape[1]}x{pixels.shape[0]}, not the clip's size")
            continue
        yield Frame(index, time_s, pixels)


def _read_video(info: VideoInfo, every: int) -> Iterator[Frame | BrokenFrame]:
    capture = _capture(info.path)
    # Frames that fail are reported only once a later one decodes: failures with nothing after
    # them are the end of the file (a header's frame count is often a little off).
    pending: list[BrokenFrame] = []
    try:
        index = -1
        while len(pending) < MAX_BROKEN_IN_A_ROW:
            index += 1
            wanted = index % every == 0
            # grab() reads a frame without converting it; retrieve() only for the wanted ones.
            with native_output_silenced():  # a broken frame is reported as a BrokenFrame instead
                ok = capture.grab()
                frame = capture.retrieve()[1] if ok and wanted else None
            if not ok or (wanted and frame is None):
                pending.append(BrokenFrame(index, index / info.fps, f"frame {index}: could not be decoded"))
                continue
            yield from (broken for broken in pending if broken.index % every == 0)
            pending = []
            if not wanted:
                continue
            if frame.shape[1::-1] != info.size:
                size = f"{frame.shape[1]}x{frame.shape[0]}"
                yield BrokenFrame(index, index / info.fps, f"frame {index}: {size}, not the clip's size")
                continue
            yield Frame(index, index / info.fps, _rgb(frame))
    finally:
        capture.release()


class VideoWriter:
    """An H.264 MP4 file (yuv420p, what every player and browser plays) written frame by frame
    with the ffmpeg that the ``imageio-ffmpeg`` wheel ships.

    Frames: (H, W, 3) uint8 RGB, all of the first one's size; an odd width or height gets one
    black column or row (H.264 in yuv420p needs even sides). Use as a context manager, or
    call :meth:`close`.
    """

    def __init__(self, path: str | Path, fps: float, crf: int = 20):
        self.path, self.fps, self.crf = Path(path), float(fps), crf
        self._writer = None
        self._size: tuple[int, int] | None = None

    def write(self, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        height, width = frame.shape[:2]
        if self._writer is None:
            import imageio_ffmpeg

            self._size = (width, height)
            self._writer = imageio_ffmpeg.write_frames(
                str(self.path),
                (width + width % 2, height + height % 2),
                fps=self.fps,
                codec="libx264",
                pix_fmt_out="yuv420p",
                macro_block_size=1,  # padded here: ffmpeg would resample the frame to fit instead
                quality=None,
                output_params=["-crf", str(self.crf)],
                ffmpeg_log_level="error",
            )
            self._writer.send(None)  # starts ffmpeg
        elif (width, height) != self._size:
            raise ValueError(f"frames must all be {self._size[0]}x{self._size[1]}, got {width}x{height}")
        self._writer.send(np.ascontiguousarray(np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)))))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
