"""The BlazePose ``.task`` bundle, built in memory from the models inside the mediapipe wheel.

mediapipe 0.10.14 ships the two raw BlazePose networks (``modules/pose_detection`` and
``modules/pose_landmark``) for its legacy Solutions graphs, but the Tasks API
(``PoseLandmarker``) wants one ``.task`` zip holding ``pose_detector.tflite`` and
``pose_landmarks_detector.tflite``, each carrying TFLite metadata that says how to normalise
the input image. Adding that metadata with mediapipe's own writer turns the shipped files into
the bundle Google distributes separately, without a download and without touching
site-packages.
"""

import io
import os

import mediapipe
from mediapipe.tasks.python.metadata.metadata_writers import (
    metadata_writer,
    model_asset_bundle_utils,
    writer_utils,
)

# (wheel path, file name inside the bundle, input normalisation mean, std): the detector takes
# pixels in [-1, 1], the landmark network pixels in [0, 1].
_BUNDLE_PARTS = (
    ("modules/pose_detection/pose_detection.tflite", "pose_detector.tflite", 127.5, 127.5),
    (
        "modules/pose_landmark/pose_landmark_full.tflite",
        "pose_landmarks_detector.tflite",
        0.0,
        255.0,
    ),
)


def _with_image_metadata(model: bytes, name: str, mean: float, std: float) -> bytes:
    """Returns ``model`` with metadata for one RGB image input normalised as ``(x - mean) / std``.

    Every output tensor gets a plain feature entry so the metadata lists the model's outputs
    one to one (the writer's default shares one entry object between all outputs).
    """
    buffer = bytearray(model)
    writer = (
        metadata_writer.MetadataWriter.create(buffer).add_general_info(name).add_image_input(norm_mean=[mean], norm_std=[std])
    )
    for _ in writer_utils.get_output_tensor_names(buffer):
        writer.add_feature_output()
    model_with_metadata, _ = writer.populate()
    return bytes(model_with_metadata)


def build_pose_landmarker_bundle() -> bytes:
    """Returns the bytes of a ``.task`` bundle for ``vision.PoseLandmarker`` (full landmark model).

    Pass them as ``BaseOptions(model_asset_buffer=...)``. Raises ``FileNotFoundError`` when the
    installed mediapipe wheel ships no models (releases after 0.10.14 do not).
    """
    root = os.path.dirname(mediapipe.__file__)
    zipped = io.BytesIO()
    # The Tasks runtime maps bundle members in place, so they must be stored uncompressed and
    # 4-byte aligned: mediapipe's AlignZipFile does both.
    with model_asset_bundle_utils.AlignZipFile(zipped, mode="w", alignment=4) as bundle:
        for wheel_path, member, mean, std in _BUNDLE_PARTS:
            with open(os.path.join(root, wheel_path), "rb") as f:
                model = f.read()
            bundle.writestr(member, _with_image_metadata(model, member, mean, std))
    return zipped.getvalue()
