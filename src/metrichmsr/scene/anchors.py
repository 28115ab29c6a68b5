"""The people as metric rulers: the pixels whose depth they fix, and how far their feet stand
above a depth map.

A recovered person's rendered z-buffer on their visible pixels, and the floor under their
feet, are *anchors* of the scene depth (:func:`human_anchors`), which ``scene.refine`` makes
the depth map agree with. All depths are camera-frame z (OpenCV axes) in metres; images are
(H, W); K is (3, 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from metrichmsr.geometry import rays_z1
from metrichmsr.scene.floor import FloorPlane

if TYPE_CHECKING:
    from metrichmsr.render import Mesh, Renderer


def people_depth(
    renderer: Renderer, K: np.ndarray, size: tuple[int, int], meshes: Sequence[Mesh]
) -> tuple[np.ndarray, np.ndarray]:
    """The people's z-buffer: the nearest person surface at each pixel (occlusion included).

    Args:
        renderer: the shared renderer; K: (3, 3); size: (W, H) of the image.
        meshes: one (vertices (V, 3) camera frame metres, faces (F, 3)) per person.

    Returns:
        ``depth_m`` (H, W) float32, NaN off the people; ``ids`` (H, W) int16, the person seen
        at each pixel, -1 elsewhere. Renders above the renderer's ``max_side`` are brought
        back to (W, H) by nearest-neighbour sampling.
    """
    import cv2

    _, depth, ids = renderer.render(K, size, meshes)
    if ids.shape != (size[1], size[0]):
        depth = cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST)
        ids = cv2.resize(ids, size, interpolation=cv2.INTER_NEAREST)
    return np.where(ids >= 0, depth, np.nan).astype(np.float32), ids


@dataclass(frozen=True)
class Anchors:
    """Pixels of one image whose metric depth is known from the people.

    Attributes:
        depth_m: (H, W) float32 metres, NaN where there is no anchor.
        group: (H, W) int32, the person an anchor belongs to (people pixels and the floor
            around their feet), -1 where none: the unit held out when validating.
        weight: (H, W) float32 >= 0: each person's body pixels share weight 1, the floor
            pixels around their feet another 1, so a near person counts as much as a far one.
        on_people: (H, W) bool, pixels covered by a person.
        K: (3, 3) intrinsics.
        contacts_m: (N, 3) camera-frame foot contacts, one per person (may be empty).
        floor: the floor plane, if known.
    """

    depth_m: np.ndarray
    group: np.ndarray
    weight: np.ndarray
    on_people: np.ndarray
    K: np.ndarray
    contacts_m: np.ndarray
    floor: FloorPlane | None = None


def human_anchors(
    K: np.ndarray,
    people_depth_m: np.ndarray,
    ids: np.ndarray,
    contacts_m: np.ndarray | None = None,
    floor: FloorPlane | None = None,
    edge_px: int = 2,
    contact_radius_m: float = 0.3,
) -> Anchors:
    """Anchors from the people's z-buffer and the floor under their feet.

    Args:
        K: (3, 3) intrinsics of the image.
        people_depth_m, ids: (H, W) from :func:`people_depth`.
        contacts_m: (N, 3) foot contacts (``floor.foot_contacts``), row i for person i.
        floor: when given, floor anchors get the plane's depth at each pixel; otherwise the
            contact's depth.
        edge_px: people pixels this close to another person or the background are dropped:
            estimators blur depth edges, and a one-pixel shift there is a large depth error.
        contact_radius_m: floor pixels within this radius (on the image, at the contact's
            distance) of a projected contact and not covered by a person become anchors.
    """
    import cv2

    height, width = ids.shape
    kernel = np.ones((2 * edge_px + 1, 2 * edge_px + 1), np.uint8)
    label = ids.astype(np.float32)
    interior = (cv2.erode(label, kernel) == cv2.dilate(label, kernel)) & (ids >= 0) & np.isfinite(people_depth_m)
    depth = np.where(interior, people_depth_m, np.nan).astype(np.float32)
    group = np.where(interior, ids, -1).astype(np.int32)
    is_contact = np.zeros(ids.shape, bool)
    contacts = np.zeros((0, 3)) if contacts_m is None else np.asarray(contacts_m, dtype=np.float64)
    for person, contact in enumerate(contacts):
        if not (np.all(np.isfinite(contact)) and contact[2] > 0):
            continue
        centre = (K @ contact)[:2] / contact[2]
        radius_px = np.clip(K[0, 0] * contact_radius_m / contact[2], 2.0, 50.0)
        low = np.maximum(np.floor(centre - radius_px), 0).astype(int)
        high = np.minimum(np.ceil(centre + radius_px) + 1, (width, height)).astype(int)
        if np.any(high <= low):  # the disc lies outside the image
            continue
        v, u = np.mgrid[low[1] : high[1], low[0] : high[0]]
        disc = ((u - centre[0]) ** 2 + (v - centre[1]) ** 2 <= radius_px**2) & (ids[v, u] < 0)
        u, v = u[disc], v[disc]
        if floor is None:
            depth[v, u] = contact[2]
        else:
            on_floor_m = floor.ray_depth(rays_z1(K, u, v))
            depth[v, u] = np.where(np.isfinite(on_floor_m), on_floor_m, np.nan)
        group[v, u] = person
        is_contact[v, u] = True
    group[~np.isfinite(depth)] = -1
    weight = np.zeros(ids.shape, np.float32)
    for part in (~is_contact, is_contact):
        members = part & (group >= 0)
        counts = np.bincount(group[members], minlength=1)
        weight[members] = 1.0 / counts[group[members]]
    return Anchors(depth, group, weight, ids >= 0, np.asarray(K, dtype=np.float64), contacts, floor)


def feet_to_floor_m(
    depth_m: np.ndarray,
    K: np.ndarray,
    contacts_m: np.ndarray,
    up: np.ndarray,
    on_people: np.ndarray | None = None,
    window_px: int = 3,
) -> np.ndarray:
    """Height of each foot contact above the scene surface the depth map shows around it.

    Each pixel of a (2 window_px + 1)^2 window around the projected contact is lifted to 3D
    on its own ray; the contact's distance is the median of ``up . (contact - point)``.
    Pixels covered by people are left out when any others remain (the shoe hides the floor
    it stands on).

    Args:
        depth_m: (H, W) scene depth, metres; K: (3, 3); contacts_m: (N, 3) camera frame.
        up: (3,) unit vector against gravity (the floor's ``up``).
        on_people: (H, W) bool, pixels covered by a person.

    Returns:
        (N,) metres, > 0 for feet above the surface, NaN for contacts outside the image or
        without depth around them.
    """
    height, width = depth_m.shape
    out = np.full(len(contacts_m), np.nan)
    for i, contact in enumerate(np.asarray(contacts_m, dtype=np.float64)):
        if not (np.all(np.isfinite(contact)) and contact[2] > 0):
            continue
        u, v = np.rint((K @ contact)[:2] / contact[2]).astype(int)
        if not (0 <= u < width and 0 <= v < height):
            continue
        rows, cols = np.mgrid[
            max(v - window_px, 0) : min(v + window_px + 1, height), max(u - window_px, 0) : min(u + window_px + 1, width)
        ]
        keep = np.isfinite(depth_m[rows, cols])
        if on_people is not None and (keep & ~on_people[rows, cols]).any():
            keep &= ~on_people[rows, cols]
        if not keep.any():
            continue
        points = rays_z1(K, cols[keep], rows[keep]) * depth_m[rows, cols][keep][:, None]
        out[i] = float(np.median((contact - points) @ up))
    return out


def composite_people(depth_m: np.ndarray, people_depth_m: np.ndarray) -> np.ndarray:
    """(H, W) the scene depth with the people's z-buffer in front where they are nearer (NaN-aware)."""
    return np.fmin(depth_m, people_depth_m).astype(np.float32)
