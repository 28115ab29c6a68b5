"""Open metrichmsr's files with Blender's own importers and say what came in: scene.glb and
people_rigged.glb with the glTF importer, a person_<id>.bvh with the BVH importer. `track`'s
animated scene.glb (people ``track_<id>``): its actions' frame range, and how many people show
(bones spread over more than 10 cm) and how far the bones moved at the start, middle and end.

Run with Blender's Python module (``pip install bpy==4.2.0``, Python 3.11; ``make glb-check``
sets it up in ``.venv-bpy``):
``python scripts/glb_check/blender_check.py out/demo/scene.glb out/demo/people_rigged.glb out/demo/person_0.bvh``.
Exits 1 when an import fails, brings in no person, or a skeleton has other than Anny's 104 bones.
"""

import os
import sys

import bpy

ANNY_BONES = 104


def check(path: str) -> bool:
    """Import one file into an empty scene; print what came in; whether it is as expected."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bvh = path.endswith(".bvh")
    imported = bpy.ops.import_anim.bvh(filepath=path) if bvh else bpy.ops.import_scene.gltf(filepath=path)
    if imported != {"FINISHED"}:
        print(f"blender: could not import {path}")
        return False
    objects = bpy.context.scene.objects
    meshes = [o for o in objects if o.type == "MESH"]
    people = [o for o in meshes if o.name.startswith(("person_", "track_"))]
    armatures = [o for o in objects if o.type == "ARMATURE"]
    bones = sorted({len(a.data.bones) for a in armatures})
    print(
        f"blender {bpy.app.version_string}: {os.path.basename(path)}: {len(meshes)} meshes ({len(people)} people), "
        f"{sum(len(o.data.vertices) for o in meshes)} vertices, {len(armatures)} armatures of {bones} bones"
        + "".join(f", frames {a.animation_data.action.frame_range[:]}" for a in armatures if bvh and a.animation_data)
    )
    if bvh:
        return len(armatures) == 1 and bones == [ANNY_BONES]
    if any(a.animation_data and a.animation_data.action for a in armatures) and not played(armatures):
        return False
    # A rigged file: every person skinned to an armature of Anny's bones; scene.glb: no armature.
    return bool(people) and (not armatures or (bones == [ANNY_BONES] and len(armatures) == len(people)))


def played(armatures) -> bool:
    """Play the armatures' actions at the scene's start, middle and end frames; print what shows; whether any bone moved."""
    import numpy as np

    scene = bpy.context.scene
    ranges = [a.animation_data.action.frame_range[:] for a in armatures if a.animation_data and a.animation_data.action]
    first, last = min(r[0] for r in ranges), max(r[1] for r in ranges)

    def heads(frame: float) -> list:
        scene.frame_set(int(frame), subframe=frame % 1)
        return [np.array([a.matrix_world @ b.head for b in a.pose.bones]) for a in armatures]

    start = heads(first)
    shown, moved = [], []
    for frame in (first, (first + last) / 2, last):
        now = heads(frame)
        shown.append(sum(np.ptp(h, axis=0).max() > 0.1 for h in now))
        moved.append(max(np.linalg.norm(h - s, axis=1).max() for h, s in zip(now, start)))
    print(
        f"  actions over frames {first:g}-{last:g} at {scene.render.fps} fps; people shown at start, middle, end: "
        f"{', '.join(map(str, shown))}; bones moved from the start up to {moved[1]:.3f} m (middle), {moved[2]:.3f} m (end)"
    )
    return max(moved) > 0


if __name__ == "__main__":
    ok = all([check(path) for path in sys.argv[1:]])
    sys.stdout.flush()
    os._exit(0 if ok else 1)  # bpy 4.2 crashes while the interpreter tears it down
