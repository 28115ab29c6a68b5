// Parse a scene.glb with three.js's own GLTFLoader (what a three.js viewer runs) and say what
// came in: `node scripts/glb_check/threejs_check.mjs out/demo/scene.glb` after `npm install`
// in this folder (`make glb-check` does both). Exits 1 when parsing fails or finds no person.
import fs from 'node:fs';
import { REVISION } from 'three';
import { GLTFLoader } from 'three/examples/jsm/loaders/GLTFLoader.js';

// Node has no DOM: GLTFLoader looks for `self`, and decodes textures with createImageBitmap.
globalThis.self = globalThis;
globalThis.createImageBitmap = async () => ({ width: 1, height: 1, close() {} });

const file = fs.readFileSync(process.argv[2]);
const data = file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength);
new GLTFLoader().parse(data, '', (gltf) => {
  const meshes = [];
  gltf.scene.traverse((object) => { if (object.isMesh) meshes.push(object); });
  const people = meshes.filter((mesh) => mesh.name.startsWith('person_'));
  const vertices = meshes.reduce((n, mesh) => n + mesh.geometry.attributes.position.count, 0);
  console.log(`three.js r${REVISION}: ${meshes.length} meshes (${people.length} people), ${vertices} vertices`);
  process.exit(people.length ? 0 : 1);
}, (error) => { console.error(`three.js: ${error.message}`); process.exit(1); });
