"""Reading clips: a video file through OpenCV and a folder of frames, every N-th frame, frames
that cannot be read reported at their place and the clip going on."""

import numpy as np
import pytest
from PIL import Image

from metrichmsr.errors import InputError
from metrichmsr.video_io import DEFAULT_FPS, BrokenFrame, Frame, probe, read_frames


def write_video(path, n: int, size=(64, 48), fps: float = 12.0):
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(n):
        frame = np.full((size[1], size[0], 3), 0, np.uint8)
        frame[:, :, 2] = 20 * i  # red grows frame by frame (BGR)
        writer.write(frame)
    writer.release()
    return path


def test_a_video_file(tmp_path):
    info = probe(write_video(tmp_path / "clip.avi", 7))
    assert (info.size, info.fps, info.frame_count, info.is_folder) == ((64, 48), 12.0, 7, False)
    frames = list(read_frames(info))
    assert [f.index for f in frames] == list(range(7)) and all(isinstance(f, Frame) for f in frames)
    assert frames[3].time_s == pytest.approx(3 / 12.0)
    assert frames[3].image.shape == (48, 64, 3) and frames[3].image.dtype == np.uint8
    assert abs(int(frames[3].image[..., 0].mean()) - 60) <= 3  # RGB, not BGR
    assert [f.index for f in read_frames(info, every=3)] == [0, 3, 6]
    assert probe(tmp_path / "clip.avi", fps=30.0).fps == 30.0


def test_a_folder_with_a_broken_frame(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(5):
        Image.new("RGB", (40, 30), (10 * i, 0, 0)).save(folder / f"f{i:02d}.png")
    data = (folder / "f02.png").read_bytes()
    (folder / "f02.png").write_bytes(data[: len(data) // 2])  # cut: the header still reads
    Image.new("RGB", (50, 30)).save(folder / "f03.png")  # another size
    (folder / "notes.txt").write_text("not a frame")
    info = probe(folder)
    assert info.is_folder and info.size == (40, 30) and info.fps == DEFAULT_FPS
    frames = list(read_frames(info))
    assert [(type(f).__name__, f.index) for f in frames] == [
        ("Frame", 0),
        ("Frame", 1),
        ("BrokenFrame", 2),
        ("BrokenFrame", 3),
        ("Frame", 4),
    ]
    assert "f03.png" in str(info.unreadable) and isinstance(frames[2], BrokenFrame) and frames[2].reason
    assert [f.index for f in read_frames(info, every=2)] == [0, 2, 4]


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: p / "none.mp4", "no such file"),
        (lambda p: (p / "a.mp4").write_text("text") and p / "a.mp4", "not a video"),
        (lambda p: (p / "a.gif").write_bytes(b"GIF89a") and p / "a.gif", "not a video file"),
        (lambda p: (p / "e.mp4").touch() or p / "e.mp4", "empty"),
        (lambda p: (p / "d").mkdir() or p / "d", "no image files"),
    ],
    ids=["missing", "text as .mp4", "other suffix", "empty file", "empty folder"],
)
def test_what_is_not_a_clip_is_one_line(tmp_path, make, words):
    with pytest.raises(InputError, match=words):
        probe(make(tmp_path))
