// Parse metrichmsr's glb files with three.js's own GLTFLoader (what a three.js viewer runs) and
// say what came in: `node scripts/glb_check/threejs_check.mjs out/demo/scene.glb
// out/demo/people_rigged.glb` after `npm install` in this folder (`make glb-check` does both).
// `track`'s scene.glb too: its people are `track_<id>`, and its animation is played with an
// AnimationMixer to its middle and end, saying how far the bones moved.
// Exits 1 when parsing fails, finds no person, a skeleton has other than Anny's 104 bones, or an
// animation moves no bone.
import fs from 'node:fs';
import path from 'node:path';
import { AnimationMixer, REVISION, Vector3 } from 'three';
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
      const people = meshes.filter((mesh) => /^(person|track)_/.test(mesh.name));
      const skinned = meshes.filter((mesh) => mesh.isSkinnedMesh);
      const bones = [...new Set(skinned.map((mesh) => mesh.skeleton.bones.length))];
      const vertices = meshes.reduce((n, mesh) => n + mesh.geometry.attributes.position.count, 0);
      console.log(`three.js r${REVISION}: ${path.basename(file)}: ${meshes.length} meshes (${people.length} people, `
        + `${skinned.length} skinned, skeletons of ${JSON.stringify(bones)} bones), ${vertices} vertices`);
      const played = gltf.animations.map((clip) => play(gltf.scene, clip, skinned));
      resolve(people.length > 0 && (skinned.length === 0 || (bones.length === 1 && bones[0] === ANNY_BONES))
        && played.every((moved) => moved > 0));
    }, (error) => { console.error(`three.js: ${path.basename(file)}: ${error.message}`); resolve(false); });
  });
}

// Play `clip` on `scene` to its middle and its end; print how far the bones' world positions
// moved from the start (metres, largest); return that.
function play(scene, clip, skinned) {
  const mixer = new AnimationMixer(scene);
  mixer.clipAction(clip).play();
  const bones = skinned.flatMap((mesh) => mesh.skeleton.bones);
  const positions = () => { scene.updateMatrixWorld(true); return bones.map((bone) => bone.getWorldPosition(new Vector3())); };
  mixer.setTime(0);
  const start = positions();
  const moved = [clip.duration / 2, clip.duration].map((time) => {
    mixer.setTime(time);
    return Math.max(0, ...positions().map((p, i) => p.distanceTo(start[i])));
  });
  console.log(`  animation ${clip.name}: ${clip.duration.toFixed(3)} s, ${clip.tracks.length} tracks; `
    + `bones moved up to ${moved.map((m) => m.toFixed(3)).join(' m (middle), ')} m (end)`);
  return Math.max(...moved);
}

let ok = true;
for (const file of process.argv.slice(2)) ok = (await check(file)) && ok;
process.exit(ok ? 0 : 1);
