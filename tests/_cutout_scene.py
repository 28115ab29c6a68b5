"""A synthetic scene for the depth anchors and their refinement: a floor, a back wall and
cardboard people, with its exact depth."""

import numpy as np

from metrichmsr.scene.floor import FloorPlane

SIZE = (512, 384)  # (W, H)
K = np.array([[420.0, 0.0, 255.5], [0.0, 420.0, 191.5], [0.0, 0.0, 1.0]])
CAMERA_HEIGHT_M = 1.5
FLOOR = FloorPlane(up=np.array([0.0, -1.0, 0.0]), camera_height_m=CAMERA_HEIGHT_M)
WALL_M = 14.0
# Cardboard people: fronto-parallel 0.5 x 1.7 m panels standing on the floor, (image column
# fraction, depth in metres).
PEOPLE = [(0.08, 3.0), (0.25, 7.0), (0.42, 4.5), (0.6, 10.0), (0.78, 5.5), (0.93, 3.5)]


def cutout_scene(people=PEOPLE):
    """Ground-truth depth (H, W) of a floor, a back wall and the panels; the panels' z-buffer
    (NaN elsewhere), their ids (-1 elsewhere) and their foot contacts (N, 3)."""
    width, height = SIZE
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    depth = np.minimum(FLOOR.depth_map(K, SIZE), WALL_M)
    people_depth_m = np.full((height, width), np.nan, np.float32)
    ids = np.full((height, width), -1, np.int16)
    contacts = []
    for i, (column, z) in enumerate(people):
        x = (column * width - K[0, 2]) / K[0, 0] * z
        u0, u1 = K[0, 0] * (x - 0.25) / z + K[0, 2], K[0, 0] * (x + 0.25) / z + K[0, 2]
        v0, v1 = K[1, 1] * (CAMERA_HEIGHT_M - 1.7) / z + K[1, 2], K[1, 1] * CAMERA_HEIGHT_M / z + K[1, 2]
        panel = (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1) & ~(people_depth_m < z)
        people_depth_m[panel], ids[panel] = z, i
        contacts.append((x, CAMERA_HEIGHT_M, z))
    depth = np.fmin(depth, people_depth_m).astype(np.float32)
    return depth, people_depth_m, ids, np.array(contacts)
