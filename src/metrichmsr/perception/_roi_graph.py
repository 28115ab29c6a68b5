"""BlazePose's landmark network on a region of interest, without its detector.

BlazePose's own video mode finds a person once and then runs only its landmark network, on the
region its previous landmarks say the person now fills (mediapipe's ``PoseLandmarkByRoiCpu``
subgraph, inside the legacy ``pose_landmark_cpu`` graph the wheel ships). The Tasks API's
``PoseLandmarker`` gives no way to hand it a region for several people, so a clip's people are
followed with that subgraph directly, one region at a time: no detector to miss a small person
a frame after it found them, and about a third of its cost. The network is the wheel's
``pose_landmark_full.tflite``, the same one :class:`~metrichmsr.perception.blazepose.PoseDetector`
runs; nothing is downloaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import mediapipe as mp
import numpy as np
from mediapipe.framework.formats import rect_pb2
from mediapipe.python._framework_bindings import resource_util

from metrichmsr._quiet import native_output_silenced

_GRAPH = """
input_stream: "image"
input_stream: "roi"
input_side_packet: "model_complexity"
input_side_packet: "enable_segmentation"
output_stream: "landmarks"
output_stream: "world_landmarks"
output_stream: "segmentation"
node {
  calculator: "PoseLandmarkByRoiCpu"
  input_side_packet: "MODEL_COMPLEXITY:model_complexity"
  input_side_packet: "ENABLE_SEGMENTATION:enable_segmentation"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  output_stream: "LANDMARKS:landmarks"
  output_stream: "WORLD_LANDMARKS:world_landmarks"
  output_stream: "SEGMENTATION_MASK:segmentation"
}
"""
#: ``pose_landmark_full.tflite`` (0: lite, 2: heavy; the wheel ships only the full one).
_FULL_MODEL = 1


@dataclass
class RoiPose:
    """What the landmark network saw in one region, image pixels.

    landmarks: (33, 4) x, y (pixel-centre coordinates, as OpenCV's), visibility, presence.
    world_landmarks: (33, 3) metres, as :class:`~metrichmsr.perception.blazepose.PersonObservation`'s.
    segmentation: (h, w) float32 person probability over the region's bounding box inside the
        image (zero outside the region), or None.
    segmentation_box: (4,) float64 that box's outer edges ``[x0, y0, x1, y1]`` in pixel-centre
        coordinates (-0.5 is the image's left edge), or None with it.
    """

    landmarks: np.ndarray
    world_landmarks: np.ndarray
    segmentation: np.ndarray | None
    segmentation_box: np.ndarray | None


class RoiLandmarker:
    """One ``PoseLandmarkByRoiCpu`` graph: a region in, a pose or nothing out. Not thread-safe:
    one call at a time per instance.

    Args:
        segmentation: also give the person's segmentation mask.
    """

    def __init__(self, segmentation: bool = True):
        # The subgraph loads its network by its path inside the installed wheel.
        resource_util.set_resource_dir(os.path.dirname(os.path.dirname(mp.__file__)))
        self._outputs: dict[str, mp.Packet] = {}
        with native_output_silenced():
            self._graph = mp.CalculatorGraph(graph_config=_GRAPH)
            for stream in ("landmarks", "world_landmarks", "segmentation"):
                self._graph.observe_output_stream(stream, lambda name, packet: self._outputs.__setitem__(name, packet))
            self._graph.start_run(
                {
                    "model_complexity": mp.packet_creator.create_int(_FULL_MODEL),
                    "enable_segmentation": mp.packet_creator.create_bool(bool(segmentation)),
                }
            )
        self._timestamp = 0

    def run(self, image: np.ndarray, centre: np.ndarray, side: float, rotation: float) -> RoiPose | None:
        """The pose in the square region of ``side`` pixels centred on ``centre`` (2,) (pixel-centre
        coordinates), turned by ``rotation`` radians clockwise (BlazePose's upright view of the
        person); None where the network says nobody is there (its pose presence under 0.5).
        ``image``: (H, W, 3) uint8 RGB, C-contiguous.

        This graph's normalised coordinates times the image's size are pixel-centre coordinates:
        read as pixel edges (as the Tasks API's are), the landmarks of people in rendered clips
        sat half a pixel up and left of the Tasks API's on the same people, and of their true joints."""
        height, width = image.shape[:2]
        roi = rect_pb2.NormalizedRect(
            x_center=float(centre[0]) / width,
            y_center=float(centre[1]) / height,
            width=float(side) / width,
            height=float(side) / height,
            rotation=float(rotation),
        )
        self._outputs.clear()
        self._timestamp += 1
        frame = mp.packet_creator.create_image_frame(image_format=mp.ImageFormat.SRGB, data=image)
        self._graph.add_packet_to_input_stream("image", frame.at(self._timestamp))
        self._graph.add_packet_to_input_stream("roi", mp.packet_creator.create_proto(roi).at(self._timestamp))
        self._graph.wait_until_idle()
        if "landmarks" not in self._outputs:
            return None
        landmarks = mp.packet_getter.get_proto(self._outputs["landmarks"]).landmark
        world = mp.packet_getter.get_proto(self._outputs["world_landmarks"]).landmark
        pose = RoiPose(
            np.array([[lm.x * width, lm.y * height, lm.visibility, lm.presence] for lm in landmarks]),
            np.array([[lm.x, lm.y, lm.z] for lm in world]),
            None,
            None,
        )
        # The graph's mask covers the whole image, zero outside the region: only the region's
        # bounding box is kept (copied: mediapipe reuses the buffer behind numpy_view).
        half = side / 2 * (abs(np.cos(rotation)) + abs(np.sin(rotation)))
        left, top = (max(0, int(np.floor(c - half))) for c in centre)
        right, bottom = min(width, int(np.ceil(centre[0] + half))), min(height, int(np.ceil(centre[1] + half)))
        if "segmentation" in self._outputs and right > left and bottom > top:
            mask = mp.packet_getter.get_image(self._outputs["segmentation"]).numpy_view()
            pose.segmentation = np.asarray(mask).squeeze()[top:bottom, left:right].astype(np.float32)
            pose.segmentation_box = np.array([left, top, right, bottom], dtype=np.float64) - 0.5
        return pose

    def close(self) -> None:
        """Stops the graph; safe to call twice."""
        if self._graph is not None:
            self._graph.close()
            self._graph = None
