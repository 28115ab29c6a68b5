// Parse metrichmsr's glb files with three.js's own GLTFLoader (what a three.js viewer runs) and
// say what came in: `node scripts/glb_check/threejs_check.mjs out/demo/scene.glb
// out/demo/people_rigged.glb` after `npm install` in this folder (`make glb-check` does both).
// Exits 1 when parsing fails, finds no person, or a skeleton has other than Anny's 104 bones.
import fs from 'node:fs';
import path from 'node:path';
import { REVISION } from 'three';
import { GLTFLoader } from 'three/examples/jsm/loaders/GLTFLoader.js';

// Node has no DOM: GLTFLoader looks for `self`, and decodes textures with createImageBitmap.
globalThis.self = globalThis;
globalThis.createImageBitmap = async () => ({ width: 1, height: 1, close() {} });

const ANNY_BONES = 104;

function check(file) {
  const bytes = fs.readFileSync(file);
  const data = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return new Promise((resolve) => {
    new GLTFLoader().parse(data, '', (gltf) => {
      const meshes = [];
      gltf.scene.traverse((object) => { if (object.isMesh) meshes.push(object); });
      const people = meshes.filter((mesh) => mesh.name.startsWith('person_'));
      const skinned = meshes.filter((mesh) => mesh.isSkinnedMesh);
      const bones = [...new Set(skinned.map((mesh) => mesh.skeleton.bones.length))];
      const vertices = meshes.reduce((n, mesh) => n + mesh.geometry.attributes.position.count, 0);
      console.log(`three.js r${REVISION}: ${path.basename(file)}: ${meshes.length} meshes (${people.length} people, `
        + `${skinned.length} skinned, skeletons of ${JSON.stringify(bones)} bones), ${vertices} vertices`);
      resolve(people.length > 0 && (skinned.length === 0 || (bones.length === 1 && bones[0] === ANNY_BONES)));
    }, (error) => { console.error(`three.js: ${path.basename(file)}: ${error.message}`); resolve(false); });
  });
}

let ok = true;
for (const file of process.argv.slice(2)) ok = (await check(file)) && ok;
process.exit(ok ? 0 : 1);
