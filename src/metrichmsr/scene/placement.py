"""Where recovered people stand: the floor under them, and which detections are no whole person.

Arrays in, arrays out (camera frame, OpenCV axes, metres; pixels of the image), so the
pipeline and the benchmarks place people the same way:

- :func:`people_floor`: the floor the people stand on (``scene.floor.floor_from_people``),
  tilted by the image's lines where they say (``scene.horizon``), and their foot contacts;
- :func:`parts_read_as_far`: detections that are a part of another person (a limb, a head)
  read as a whole, small body far behind;
- :func:`floating_phantoms`: detections over several people or things read as one body
  floating above the floor.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from metrichmsr.body import up_directions
from metrichmsr.perception import box_containment
from metrichmsr.scene.floor import (
    MAX_SUNKEN_RATIO,
    FloorPlane,
    floating_scales,
    floor_from_people,
    foot_contacts,
    placing_people,
    stood_on,
)
from metrichmsr.scene.horizon import ImageLines, with_floor_extent

#: A detection at least ``PART_INSIDE`` (area) inside a taller, better-seen person's box and
#: recovered ``PART_FARTHER`` times as far is a part of that person (a limb, a head) that
#: BlazePose took for a whole, small body and HumanMoE placed far behind. On the held-out
#: benchmark that held for 17 detections: 14 matched no one, 1 a real person.
PART_INSIDE = 0.8
PART_FARTHER = 1.5


def parts_read_as_far(boxes: np.ndarray, scores: np.ndarray, translations: np.ndarray) -> np.ndarray:
    """(N,) bool: which of N recovered people are a part of another read as a far-away person
    (see :data:`PART_INSIDE`).

    boxes: (N, 4) [x0, y0, x1, y1] px; scores: (N,) detection confidence; translations: (N, 3)
    body roots, camera frame, metres.
    """
    boxes = np.asarray(boxes).reshape(-1, 4)
    heights = [float(box[3] - box[1]) for box in boxes]
    distances = [float(np.linalg.norm(t)) for t in np.asarray(translations).reshape(-1, 3)]
    n = len(boxes)
    return np.array(
        [
            any(
                scores[j] > scores[i]
                and heights[j] > heights[i]
                and box_containment(boxes[i], boxes[j]) >= PART_INSIDE
                and distances[i] >= PART_FARTHER * distances[j]
                for j in range(n)
            )
            for i in range(n)
        ],
        dtype=bool,
    )


#: A standing person's box (the landmarks, +10%) is at most about half as wide as tall, arms
#: down; one box over two people side by side, or over a sign and a cone, is wider.
MAX_STANDING_WIDTH = 0.5


def floating_phantoms(boxes: np.ndarray, floor: FloorPlane, contacts_m: np.ndarray, heights_m: np.ndarray) -> np.ndarray:
    """(N,) bool: which of N recovered people are no person but a box over several people or
    things, read as one body floating above the floor.

    BlazePose sometimes lays one skeleton over people walking side by side, or over a sign
    and a cone; HumanMoE reads that figure as a near body, which floats metres above the
    floor the others stand on. A detection whose feet float more than a third of the
    camera's height above the floor, whom no standing height up to
    ``scene.floor.MAX_STANDING_HEIGHT_M`` brings onto it (``scene.floor.floating_scales``
    leaves it where it is), and which either holds at least :data:`PART_INSIDE` of another
    detection's box or is wider than :data:`MAX_STANDING_WIDTH` of its height, is such a box.
    A person on a balcony stands in a narrow box and holds no one; a near adult with a child
    behind stands on the floor. Nothing is decided against a floor most people miss
    (``scene.floor.stood_on``).

    boxes: (N, 4) [x0, y0, x1, y1] px; floor: the floor the people stand on; contacts_m: (N, 3)
    their foot contacts, camera frame, metres (NaN rows: not known); heights_m: (N,) metres.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = len(boxes)
    if not stood_on(floor, contacts_m):
        return np.zeros(n, dtype=bool)
    ratio = floor.below_ratio(contacts_m)
    with np.errstate(invalid="ignore"):
        floating = np.isfinite(ratio) & (ratio < 1.0 / MAX_SUNKEN_RATIO)
    stays = floating_scales(floor, contacts_m, heights_m) == 1.0
    inside = np.array([[box_containment(boxes[j], boxes[i]) for j in range(n)] for i in range(n)]).reshape(n, n)
    holds = ((inside >= PART_INSIDE) & ~np.eye(n, dtype=bool)).any(axis=1)
    wide = (boxes[:, 2] - boxes[:, 0]) > MAX_STANDING_WIDTH * (boxes[:, 3] - boxes[:, 1])
    return floating & stays & (holds | wide)


#: Relative error of a recovered person's distance that the floor fit allows for (the
#: held-out benchmark's median is ~8%, see BENCHMARKS.md).
RECOVERED_DEPTH_NOISE = 0.1
#: People with a shorter box do not place the floor: on the held-out benchmark every detection
#: under 20 px tall and 58% of those 20-40 px were false, and one such speck on its own put
#: the camera 30 m above the floor.
MIN_FLOOR_PERSON_PX = 40.0


def scene_lines(image: np.ndarray, K: np.ndarray, boxes: np.ndarray) -> ImageLines:
    """The (H, W, 3) image's straight lines, the people's (N, 4) boxes left out (their edges are not the scene's)."""
    return ImageLines(image, K, exclude_boxes=np.asarray(boxes).reshape(-1, 4))


def people_floor(
    joints: np.ndarray,
    boxes: np.ndarray,
    global_rotations: np.ndarray,
    feet_seen: np.ndarray | None = None,
    image: np.ndarray | None = None,
    K: np.ndarray | None = None,
    camera_height_m: float | None = None,
    lines: ImageLines | None = None,
) -> tuple[FloorPlane | None, np.ndarray | None]:
    """The floor under recovered people (``scene.floor.floor_from_people``) and their foot contacts.

    Args:
        joints: (N, J, 3) posed joints, camera frame, metres, ``body.JOINT_NAMES`` order.
        boxes: (N, 4) person boxes [x0, y0, x1, y1] px.
        global_rotations: (N, 3, 3) the bodies' global rotations (``BodyParams``).
        feet_seen: (N,) bool, whose feet BlazePose saw (``perception.feet_seen``); None: everyone's.

    Each body's up direction is its global rotation's (HumanMoE learned it from upright
    bodies in every pose family, so sitting and crouching people give it too); only people
    whose feet were seen place the floor, unless nobody's were; people under
    :data:`MIN_FLOOR_PERSON_PX` tall never do. Given the (H, W, 3) image and its K, the
    floor's tilt is then taken from the image's vanishing points near the bodies' up
    (``scene.horizon.up_from_lines``) where it has enough straight lines; the people still
    give its height. The vertical lines' feet behind the people also say where the floor
    ends (``FloorPlane.wall_distance_m``, the planar layout's backdrop), and the floor's own
    lines how far it is seen (``FloorPlane.floor_seen_m``), both at the floor's final height.
    With ``camera_height_m`` (the camera's known height above the floor, metres) the floor
    takes that height instead of the people's. ``lines``: the image's lines, already looked for
    with these people's boxes left out (default: looked for in ``image``).

    Returns (the floor or None, (N, 3) camera-frame foot contacts in metres with NaN rows for
    people who did not place the floor, or None without a floor).
    """
    boxes = np.asarray(boxes).reshape(-1, 4)
    tall = (boxes[:, 3] - boxes[:, 1]) >= MIN_FLOOR_PERSON_PX
    if not tall.any():
        return None, None
    joints = np.asarray(joints)
    seen = np.ones(len(boxes), dtype=bool) if feet_seen is None else np.asarray(feet_seen, dtype=bool)
    ups = up_directions(global_rotations)
    place = dict(ups=ups[tall], feet_seen=seen[tall], depth_noise=RECOVERED_DEPTH_NOISE)
    floor = floor_from_people(joints[tall], **place)
    if lines is None and image is not None:
        lines = scene_lines(image, K, boxes)
    line_up = lines.up_near(floor.up) if floor is not None and lines is not None else None
    if line_up is not None:
        floor = floor_from_people(joints[tall], **place, scene_up=line_up.up)
    if floor is None:
        return None, None
    if camera_height_m is not None:
        floor = replace(floor, camera_height_m=float(camera_height_m), height_source="user")
    if line_up is not None:  # where the floor ends, at the height it has now
        floor = with_floor_extent(floor, line_up, lines.K, beyond_m=float(np.nanmax(joints @ floor.forward)))
    contacts = foot_contacts(joints, floor.up)
    contacts[~(tall & placing_people(tall & seen))] = np.nan  # no anchor where no floor was placed
    return floor, contacts
