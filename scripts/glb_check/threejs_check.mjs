// Parse metrichmsr's glb files with three.js's own GLTFLoader (what a three.js viewer runs) and
// say what came in: `node scripts/glb_check/threejs_check.mjs out/demo/scene.glb
// out/demo/people_rigged.glb` after `npm install` in this folder (`make glb-check` does both).
// `track`'s scene.glb too: its people are `track_<id>`, and its animation is played with an
// AnimationMixer to its middle and end, saying how far the bones moved.
// Exits 1 when parsing fails, finds no person, a skeleton has other than Anny's 104 bones, or an
// animation moves no bone.
import fs from 'node:fs';
import path from 'node:path';
import { AnimationMixer, Box3, LoopOnce, REVISION, Vector3 } from 'three';
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

// Play `clip` on `scene` at its start, middle and end: print how far the bones' world positions
// moved from the start (metres, largest) and how many people show (a hidden one is scaled to a
// point); return the largest move.
function play(scene, clip, skinned) {
  const mixer = new AnimationMixer(scene);
  mixer.clipAction(clip).setLoop(LoopOnce).play().clampWhenFinished = true;
  const at = (time) => {
    mixer.setTime(time);
    scene.updateMatrixWorld(true);
    return skinned.map((mesh) => mesh.skeleton.bones.map((bone) => bone.getWorldPosition(new Vector3())));
  };
  const start = at(0).flat();
  const showing = (people) => people.filter((bones) => new Box3().setFromPoints(bones).getSize(new Vector3()).length() > 0.1).length;
  const frames = [0, clip.duration / 2, clip.duration].map((time) => {
    const people = at(time);
    return { shown: showing(people), moved: Math.max(0, ...people.flat().map((p, i) => p.distanceTo(start[i]))) };
  });
  console.log(`  animation ${clip.name}: ${clip.duration.toFixed(3)} s, ${clip.tracks.length} tracks; people shown at `
    + `start, middle, end: ${frames.map((f) => f.shown).join(', ')}; bones moved from the start up to `
    + `${frames[1].moved.toFixed(3)} m (middle), ${frames[2].moved.toFixed(3)} m (end)`);
  return Math.max(frames[1].moved, frames[2].moved);
}

let ok = true;
for (const file of process.argv.slice(2)) ok = (await check(file)) && ok;
process.exit(ok ? 0 : 1);
