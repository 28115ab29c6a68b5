"""Open a scene.glb with Blender's own glTF importer and say what came in.

Run with Blender's Python module (``pip install bpy==4.2.0``, Python 3.11; ``make glb-check``
sets it up in ``.venv-bpy``): ``python scripts/glb_check/blender_check.py out/demo/scene.glb``.
Exits 1 when the import fails or brings in no person.
"""

import os
import sys

import bpy


def main(path: str) -> int:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    if bpy.ops.import_scene.gltf(filepath=path) != {"FINISHED"}:
        print(f"blender: could not import {path}")
        return 1
    meshes = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    people = [o for o in meshes if o.name.startswith("person_")]
    vertices = sum(len(o.data.vertices) for o in meshes)
    print(
        f"blender {bpy.app.version_string}: {len(meshes)} meshes ({len(people)} people), {vertices} vertices, "
        f"{len(bpy.data.materials)} materials"
    )
    return 0 if people else 1


if __name__ == "__main__":
    code = main(sys.argv[1])
    sys.stdout.flush()
    os._exit(code)  # bpy 4.2 crashes while the interpreter tears it down
