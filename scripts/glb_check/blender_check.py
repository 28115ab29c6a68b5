"""Open metrichmsr's files with Blender's own importers and say what came in: scene.glb and
people_rigged.glb with the glTF importer, a person_<id>.bvh with the BVH importer.

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
    people = [o for o in meshes if o.name.startswith("person_")]
    armatures = [o for o in objects if o.type == "ARMATURE"]
    bones = sorted({len(a.data.bones) for a in armatures})
    print(
        f"blender {bpy.app.version_string}: {os.path.basename(path)}: {len(meshes)} meshes ({len(people)} people), "
        f"{sum(len(o.data.vertices) for o in meshes)} vertices, {len(armatures)} armatures of {bones} bones"
        + "".join(f", frames {a.animation_data.action.frame_range[:]}" for a in armatures if bvh and a.animation_data)
    )
    if bvh:
        return len(armatures) == 1 and bones == [ANNY_BONES]
    # A rigged file: every person skinned to an armature of Anny's bones; scene.glb: no armature.
    return bool(people) and (not armatures or (bones == [ANNY_BONES] and len(armatures) == len(people)))


if __name__ == "__main__":
    ok = all([check(path) for path in sys.argv[1:]])
    sys.stdout.flush()
    os._exit(0 if ok else 1)  # bpy 4.2 crashes while the interpreter tears it down
