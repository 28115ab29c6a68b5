// metrichmsr's 3D viewer: the page `view.html` that `recover` and `track` write next to their
// results. Everything it shows is embedded in the page (result.json or tracks.json, and
// scene.glb as base64), so it opens from the file system with no server and no network.
//
// Frames: result.json is in the OpenCV camera frame (x right, y down, z forward, metres);
// scene.glb and three.js are y-up with the camera looking down -z, so camera-frame points
// enter the scene as (x, -y, -z), exactly as scene.glb's vertices were written.
//
// `npm run build` in this folder bundles this file with three.js into
// src/metrichmsr/viewer/viewer.bundle.js, which the Python side inlines into each page.
import * as THREE from 'three';
import { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js';
import { GLTFLoader } from 'three/examples/jsm/loaders/GLTFLoader.js';

// COCO-17 limbs by joint name (result.json's joints3d keys), drawn as skeletons in track mode.
const COCO_LIMBS = [
  ['left_ankle', 'left_knee'], ['left_knee', 'left_hip'], ['right_ankle', 'right_knee'], ['right_knee', 'right_hip'],
  ['left_hip', 'right_hip'], ['left_shoulder', 'left_hip'], ['right_shoulder', 'right_hip'],
  ['left_shoulder', 'right_shoulder'], ['left_shoulder', 'left_elbow'], ['left_elbow', 'left_wrist'],
  ['right_shoulder', 'right_elbow'], ['right_elbow', 'right_wrist'], ['nose', 'left_eye'], ['nose', 'right_eye'],
  ['left_eye', 'left_ear'], ['right_eye', 'right_ear'],
];
// The overlay's palette (metrichmsr.render.PALETTE order is irrelevant here: tracks only need distinct colours).
const TRACK_COLOURS = [0xe6194b, 0x3cb44b, 0x4363d8, 0xf58231, 0x911eb4, 0x42d4f4, 0xf032e6, 0xbfef45, 0xfabed4, 0x469990];
const ORBIT_BACKGROUND = 0x1e2227;
const PICK_TOLERANCE_PX = 5;

const $ = (id) => document.getElementById(id);
const count = (n, one, many) => `${n} ${n === 1 ? one : many}`;

/** A camera-frame point (OpenCV, metres) in the scene's y-up frame. */
const fromOpenCV = ([x, y, z]) => new THREE.Vector3(x, -y, -z);

/** The text of an embedded <script> data block, null when absent or empty. */
function embedded(id) {
  const element = $(id);
  const text = element ? element.textContent.trim() : '';
  return text ? text : null;
}

function base64ToArrayBuffer(base64) {
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(base64).buffer; // native: Chrome 140+, Firefox 133+
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i += 1) bytes[i] = text.charCodeAt(i);
  return bytes.buffer;
}

/**
 * The OpenGL projection of a pinhole camera with OpenCV pixel-centre intrinsics, so the view
 * through it lines up pixel for pixel with the photo (principal point included).
 */
function projectionFromIntrinsics({ fx, fy, cx, cy }, width, height, near, far) {
  const a = 1 - (2 * (cx + 0.5)) / width;
  const b = (2 * (cy + 0.5)) / height - 1;
  return new THREE.Matrix4().set(
    (2 * fx) / width, 0, a, 0,
    0, (2 * fy) / height, b, 0,
    0, 0, -(far + near) / (far - near), (-2 * far * near) / (far - near),
    0, 0, -1, 0,
  );
}

/** Line segments (scene frame) from the camera centre to the image corners at `depth` metres. */
function frustumLines(intrinsics, width, height, depth) {
  const { fx, fy, cx, cy } = intrinsics;
  const corners = [[-0.5, -0.5], [width - 0.5, -0.5], [width - 0.5, height - 0.5], [-0.5, height - 0.5]].map(([u, v]) =>
    fromOpenCV([((u - cx) / fx) * depth, ((v - cy) / fy) * depth, depth]),
  );
  const points = [];
  corners.forEach((corner, i) => points.push(new THREE.Vector3(), corner, corner, corners[(i + 1) % 4]));
  const lines = new THREE.LineSegments(
    new THREE.BufferGeometry().setFromPoints(points),
    new THREE.LineBasicMaterial({ color: 0xdddddd }),
  );
  lines.name = 'frustum';
  return lines;
}

/** The floor (result.json's scene.floor or tracks.json's floor) as a plane in the scene frame. */
function floorPlane(floor) {
  const up = fromOpenCV(floor.up).normalize();
  // Camera-frame floor: up . X + camera_height = 0; the same in the scene frame (a rotation).
  return new THREE.Plane(up, floor.camera_height_m);
}

/** A metre grid on the floor plane around `centre` (scene frame), `halfSize` metres each way. */
function floorGrid(plane, centre, halfSize) {
  const size = 2 * Math.ceil(halfSize);
  const grid = new THREE.GridHelper(size, size, 0x9aa4ad, 0x59626b);
  grid.material.transparent = true;
  grid.material.opacity = 0.8;
  grid.quaternion.setFromUnitVectors(new THREE.Vector3(0, 1, 0), plane.normal);
  grid.position.copy(plane.projectPoint(centre, new THREE.Vector3()));
  grid.name = 'grid';
  return grid;
}

class Viewer {
  constructor(container, { intrinsics, width, height }) {
    this.container = container;
    this.intrinsics = intrinsics;
    this.imageWidth = width;
    this.imageHeight = height;
    this.renderer = new THREE.WebGLRenderer({ antialias: true, alpha: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(window.devicePixelRatio);
    container.appendChild(this.renderer.domElement);
    this.scene = new THREE.Scene();
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x55504a, 1.6));

    // The photo's camera: at the origin looking down -z, its projection from K (never recomputed).
    this.photoCamera = new THREE.PerspectiveCamera();
    this.orbitCamera = new THREE.PerspectiveCamera(50, 1, 0.05, 2000);
    for (const camera of [this.photoCamera, this.orbitCamera]) {
      // A light that moves with the camera, from a little above and behind it.
      const light = new THREE.DirectionalLight(0xffffff, 1.8);
      light.position.set(0.3, 0.6, 1);
      light.target.position.set(0, 0, -1);
      camera.add(light, light.target);
      this.scene.add(camera);
    }
    this.controls = new OrbitControls(this.orbitCamera, this.renderer.domElement);
    // Dragging or zooming in the camera's view leaves it for the orbit, which starts where the photo was taken.
    this.controls.addEventListener('change', () => (this.cameraView ? this.setView('orbit') : this.requestRender()));

    this.people = []; // {mesh, record, material}
    this.layers = {}; // name -> [objects]
    this.photoUrl = null;
    this.silhouettes = false;
    this.cameraView = false;
    this.floor = null;
    this.centre = new THREE.Vector3(0, 0, -5);
    this.addLayer('frustum', frustumLines(intrinsics, width, height, 0.5));
    new ResizeObserver(() => this.resize()).observe(container);
  }

  addLayer(name, object) {
    this.scene.add(object);
    (this.layers[name] ||= []).push(object);
  }

  /**
   * scene.glb's content: people (`person_<i>` for a result, the skinned `track_<id>` for
   * tracks), the scene surface, floor, photo plane and photo. Its glTF, for the animation.
   */
  async loadScene(glb, peopleRecords) {
    const gltf = await new GLTFLoader().parseAsync(glb, '');
    const root = gltf.scene;
    // The page's copy of scene.glb has no normals (they would be half its bytes): smooth ones
    // from the triangles, where GLTFLoader would have shaded the meshes flat.
    root.traverse((object) => {
      if (!object.isMesh || object.geometry.attributes.normal) return;
      const position = object.geometry.attributes.position;
      if (position.normalized) { // 16-bit (page_glb): as floats, which computeVertexNormals reads far faster
        const floats = new Float32Array(position.count * 3);
        for (let i = 0; i < position.count; i++) {
          floats[3 * i] = position.getX(i);
          floats[3 * i + 1] = position.getY(i);
          floats[3 * i + 2] = position.getZ(i);
        }
        object.geometry.setAttribute('position', new THREE.BufferAttribute(floats, 3));
      }
      object.geometry.computeVertexNormals();
      object.material.flatShading = false;
      object.material.needsUpdate = true;
    });
    const byName = (name) => root.getObjectByName(name);
    peopleRecords.forEach((record, i) => {
      const mesh = byName(`person_${i}`);
      if (!mesh) throw new Error(`scene.glb has no node person_${i} for result.json's person ${record.id}`);
      mesh.material = mesh.material.clone(); // its own, to highlight it alone
      this.people.push({ mesh, record, material: mesh.material });
    });
    // The photo as the backdrop of the camera's view: scene.glb's texture, its bytes as they are.
    const images = gltf.parser.json.images || [];
    if (images.length) {
      const bytes = await gltf.parser.getDependency('bufferView', images[0].bufferView);
      this.photoUrl = URL.createObjectURL(new Blob([bytes], { type: images[0].mimeType }));
    }
    this.scene.add(root);
    for (const name of ['scene', 'floor', 'image_plane']) {
      const object = byName(name);
      if (object) (this.layers[name === 'image_plane' ? 'frustum' : name] ||= []).push(object);
    }
    const camera = byName('camera'); // the glb's tube frustum: the line frustum draws it crisper here
    if (camera) camera.visible = false;
    this.layers.people = this.people.map((p) => p.mesh);
    root.traverse((object) => {
      if (!object.isSkinnedMesh) return;
      object.frustumCulled = false; // its bounds are the bind pose's: animated, it would be culled where it is not
      if (/^track_\d+$/.test(object.name)) this.layers.people.push(object);
    });
    this.centre = this.people.length
      ? this.people.reduce((sum, p) => sum.add(fromOpenCV(p.record.translation)), new THREE.Vector3()).divideScalar(this.people.length)
      : this.centre;
    return gltf;
  }

  setFloor(floor, points) {
    this.floor = floorPlane(floor);
    const spread = points.length ? Math.max(...points.map((p) => p.distanceTo(this.centre))) : 0;
    this.addLayer('grid', floorGrid(this.floor, this.centre, spread + 2));
  }

  /** The orbit from the photo's camera position around the people. */
  resetOrbit() {
    this.orbitCamera.position.set(0, 0, 0);
    this.controls.target.copy(this.centre);
    this.controls.update();
  }

  setView(view) {
    this.cameraView = view === 'camera';
    $('camera-view').classList.toggle('active', this.cameraView);
    this.resize();
  }

  setSilhouettes(on) {
    // People flat white on black in the camera's view: what a test compares with the overlay.
    this.silhouettes = on;
    this.scene.overrideMaterial = on ? new THREE.MeshBasicMaterial({ color: 0xffffff }) : null;
    this.requestRender();
  }

  setLayerVisible(name, visible) {
    for (const object of this.layers[name] || []) object.visible = visible;
    this.requestRender();
  }

  resize() {
    const { clientWidth: width, clientHeight: height } = this.container;
    const canvas = this.renderer.domElement;
    if (this.cameraView) {
      // The photo's aspect, as large as fits: the projection then maps pixel to pixel.
      const scale = Math.min(width / this.imageWidth, height / this.imageHeight);
      const [w, h] = [Math.round(this.imageWidth * scale), Math.round(this.imageHeight * scale)];
      this.renderer.setSize(w, h);
      canvas.style.left = `${Math.round((width - w) / 2)}px`;
      canvas.style.top = `${Math.round((height - h) / 2)}px`;
      const near = 0.05;
      const far = 2000;
      this.photoCamera.projectionMatrix.copy(projectionFromIntrinsics(this.intrinsics, this.imageWidth, this.imageHeight, near, far));
      this.photoCamera.projectionMatrixInverse.copy(this.photoCamera.projectionMatrix).invert();
    } else {
      this.renderer.setSize(width, height);
      canvas.style.left = canvas.style.top = '0px';
      this.orbitCamera.aspect = width / Math.max(1, height);
      this.orbitCamera.updateProjectionMatrix();
    }
    this.requestRender();
  }

  get camera() {
    return this.cameraView ? this.photoCamera : this.orbitCamera;
  }

  requestRender() {
    if (this.renderPending) return;
    this.renderPending = true;
    requestAnimationFrame(() => {
      this.renderPending = false;
      this.render();
    });
  }

  render() {
    const canvas = this.renderer.domElement;
    const backdrop = this.cameraView && !this.silhouettes && this.photoUrl;
    canvas.style.backgroundImage = backdrop ? `url(${this.photoUrl})` : 'none';
    this.renderer.setClearColor(this.silhouettes ? 0x000000 : ORBIT_BACKGROUND, backdrop ? 0 : 1);
    // In the camera's view the photo is the backdrop: what stands between it and the camera goes.
    const hidden = this.cameraView ? ['scene', 'floor', 'frustum'] : [];
    if (this.silhouettes) hidden.push('grid', 'tracks', 'skeletons');
    const restore = [];
    for (const name of hidden) {
      for (const object of this.layers[name] || []) {
        restore.push([object, object.visible]);
        object.visible = false;
      }
    }
    this.renderer.render(this.scene, this.camera);
    for (const [object, visible] of restore) object.visible = visible;
    this.onRender?.();
  }

  /** The first visible mesh (or the floor) under a pointer event: {point, person} or null. */
  pick(event) {
    const rect = this.renderer.domElement.getBoundingClientRect();
    const ndc = new THREE.Vector2(((event.clientX - rect.left) / rect.width) * 2 - 1, -((event.clientY - rect.top) / rect.height) * 2 + 1);
    const raycaster = new THREE.Raycaster();
    raycaster.setFromCamera(ndc, this.camera);
    const targets = [...this.people.map((p) => p.mesh), ...(this.layers.scene || []), ...(this.layers.floor || [])].filter(
      (object) => object.visible && !(this.cameraView && ['scene', 'floor'].includes(object.name)),
    );
    const hit = raycaster.intersectObjects(targets, true)[0];
    if (hit) {
      const person = this.people.find((p) => p.mesh === hit.object || p.mesh.getObjectById(hit.object.id));
      return { point: hit.point, person };
    }
    const point = this.floor && raycaster.ray.intersectPlane(this.floor, new THREE.Vector3());
    return point ? { point, person: null } : null;
  }

  /** A screen position (CSS px, page) of a scene point, null behind the camera. */
  toScreen(point) {
    const p = point.clone().project(this.camera);
    if (p.z > 1) return null;
    const rect = this.renderer.domElement.getBoundingClientRect();
    return [rect.left + ((p.x + 1) / 2) * rect.width, rect.top + ((1 - p.y) / 2) * rect.height];
  }
}

/** Two clicks, one distance: the ruler's points, line and label. */
class Ruler {
  constructor(viewer) {
    this.viewer = viewer;
    this.points = [];
    this.group = new THREE.Group();
    viewer.addLayer('ruler', this.group);
    this.label = $('ruler-label');
  }

  add(point) {
    if (this.points.length === 2) this.clear();
    this.points.push(point.clone());
    const marker = new THREE.Mesh(new THREE.SphereGeometry(0.03, 12, 8), new THREE.MeshBasicMaterial({ color: 0xffd400, depthTest: false }));
    marker.position.copy(point);
    marker.renderOrder = 10;
    this.group.add(marker);
    if (this.points.length === 2) {
      const line = new THREE.Line(
        new THREE.BufferGeometry().setFromPoints(this.points),
        new THREE.LineBasicMaterial({ color: 0xffd400, depthTest: false }),
      );
      line.renderOrder = 10;
      this.group.add(line);
    }
    this.update();
    this.viewer.requestRender();
    return this.distance();
  }

  distance() {
    return this.points.length === 2 ? this.points[0].distanceTo(this.points[1]) : null;
  }

  clear() {
    this.points = [];
    this.group.clear();
    this.update();
    this.viewer.requestRender();
  }

  update() {
    const distance = this.distance();
    const middle = distance === null ? null : this.viewer.toScreen(this.points[0].clone().add(this.points[1]).multiplyScalar(0.5));
    this.label.hidden = !middle;
    if (middle) {
      this.label.textContent = `${distance.toFixed(2)} m`;
      this.label.style.left = `${middle[0]}px`;
      this.label.style.top = `${middle[1]}px`;
    }
    $('ruler-readout').textContent = distance === null ? (this.points.length ? 'click the second point' : 'click two points') : `${distance.toFixed(3)} m`;
  }
}

/**
 * tracks.json: skeletons of the current frame, each track's path, a timeline to play; with
 * scene.glb's animation (`clip`, in the clip's seconds), the people's bodies follow it.
 */
class Tracks {
  constructor(viewer, tracks, gltf) {
    this.viewer = viewer;
    const clip = gltf?.animations.find((animation) => animation.name === 'clip');
    if (clip) {
      // The timeline sets the time: the action never advances by itself.
      this.mixer = new THREE.AnimationMixer(gltf.scene);
      this.action = this.mixer.clipAction(clip);
      this.action.play();
      this.action.paused = true;
    }
    this.frames = tracks.frames;
    this.colour = new Map(tracks.tracks.map((t, i) => [t.track_id, new THREE.Color(TRACK_COLOURS[i % TRACK_COLOURS.length])]));
    const paths = new Map();
    for (const frame of this.frames) {
      for (const person of frame.people) {
        if (!paths.has(person.track_id)) paths.set(person.track_id, []);
        paths.get(person.track_id).push(fromOpenCV(person.translation));
      }
    }
    for (const [trackId, points] of paths) {
      const path = new THREE.Line(new THREE.BufferGeometry().setFromPoints(points), new THREE.LineBasicMaterial({ color: this.colour.get(trackId) }));
      viewer.addLayer('tracks', path);
    }
    this.skeletons = new THREE.LineSegments(new THREE.BufferGeometry(), new THREE.LineBasicMaterial({ vertexColors: true }));
    viewer.addLayer('skeletons', this.skeletons);
    this.points = [...paths.values()].flat();
    this.index = 0;
    this.playing = false;
    const slider = $('timeline');
    slider.max = String(Math.max(0, this.frames.length - 1));
    slider.addEventListener('input', () => this.show(Number(slider.value)));
    $('play').addEventListener('click', () => this.setPlaying(!this.playing));
    $('timeline-bar').hidden = false;
  }

  show(index) {
    this.index = Math.min(Math.max(0, index), this.frames.length - 1);
    const frame = this.frames[this.index];
    const positions = [];
    const colours = [];
    for (const person of frame?.people || []) {
      const colour = this.colour.get(person.track_id);
      for (const [a, b] of COCO_LIMBS) {
        if (!person.joints3d[a] || !person.joints3d[b]) continue;
        positions.push(...fromOpenCV(person.joints3d[a]).toArray(), ...fromOpenCV(person.joints3d[b]).toArray());
        colours.push(...colour.toArray(), ...colour.toArray());
      }
    }
    const geometry = this.skeletons.geometry;
    geometry.setAttribute('position', new THREE.Float32BufferAttribute(positions, 3));
    geometry.setAttribute('color', new THREE.Float32BufferAttribute(colours, 3));
    geometry.computeBoundingSphere();
    if (this.action) {
      // At the keyframes' own float32 times, so a STEP key (who is seen) holds from its frame on.
      this.action.time = Math.fround(frame?.time_s ?? 0);
      this.mixer.update(0);
    }
    $('timeline').value = String(this.index);
    $('time').textContent = frame ? `${frame.time_s.toFixed(2)} s · frame ${frame.index} · ${count(frame.people.length, 'person', 'people')}` : 'no frames';
    this.viewer.requestRender();
  }

  setPlaying(playing) {
    this.playing = playing && this.frames.length > 1;
    $('play').textContent = this.playing ? 'Pause' : 'Play';
    if (!this.playing) return;
    if (this.index >= this.frames.length - 1) this.show(0);
    const start = performance.now() / 1000 - this.frames[this.index].time_s;
    const step = () => {
      if (!this.playing) return;
      const now = performance.now() / 1000 - start;
      let index = this.index;
      while (index + 1 < this.frames.length && this.frames[index + 1].time_s <= now) index += 1;
      if (index !== this.index) this.show(index);
      if (index >= this.frames.length - 1) this.setPlaying(false);
      else requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  }
}

function personText(record) {
  const [x, y, z] = record.translation;
  const lines = [
    `<b>person ${record.id}</b>`,
    `height ${record.height_m.toFixed(2)} m`,
    `distance ${Math.hypot(x, y, z).toFixed(2)} m (depth ${z.toFixed(2)} m)`,
    `score ${record.score.toFixed(2)}`,
  ];
  return lines.join('<br>');
}

function setupPeoplePanel(viewer) {
  const list = $('people-list');
  let selected = null;
  const select = (person) => {
    if (selected) selected.material.emissive?.setHex(0x000000);
    selected = person;
    if (person) person.material.emissive?.setHex(0x553300);
    $('info').innerHTML = person ? personText(person.record) : '';
    $('info').hidden = !person;
    for (const item of list.children) item.classList.toggle('active', person && item.dataset.index === String(viewer.people.indexOf(person)));
    viewer.requestRender();
  };
  viewer.people.forEach((person, i) => {
    const item = document.createElement('li');
    item.dataset.index = String(i);
    const colour = person.material.color.clone().convertLinearToSRGB().getHexString();
    item.innerHTML = `<span class="swatch" style="background:#${colour}"></span>${person.record.id} · ${person.record.height_m.toFixed(2)} m · ${Math.hypot(...person.record.translation).toFixed(1)} m`;
    item.addEventListener('click', () => select(person));
    list.appendChild(item);
  });
  $('people-panel').hidden = viewer.people.length === 0;
  $('people-panel').open = viewer.people.length <= 8; // a long list would hide the scene: one click opens it
  $('people-summary').textContent = `${count(viewer.people.length, 'person', 'people')}: id · height · distance`;
  return select;
}

function setupInteraction(viewer, ruler, select) {
  let rulerOn = false;
  const setRuler = (on) => {
    rulerOn = on;
    $('ruler').classList.toggle('active', on);
    $('ruler-readout').hidden = !on;
    if (!on) ruler.clear();
    else ruler.update();
  };
  $('ruler').addEventListener('click', () => setRuler(!rulerOn));
  $('camera-view').addEventListener('click', () => viewer.setView(viewer.cameraView ? 'orbit' : 'camera'));
  for (const box of document.querySelectorAll('#layers input')) {
    box.addEventListener('change', () => viewer.setLayerVisible(box.dataset.layer, box.checked));
  }
  // A click (not a drag) picks: a ruler point in ruler mode, else a person.
  const canvas = viewer.renderer.domElement;
  let down = null;
  canvas.addEventListener('pointerdown', (event) => (down = [event.clientX, event.clientY]));
  canvas.addEventListener('pointerup', (event) => {
    if (!down || Math.hypot(event.clientX - down[0], event.clientY - down[1]) > PICK_TOLERANCE_PX) return;
    const hit = viewer.pick(event);
    if (rulerOn) {
      if (hit) ruler.add(hit.point);
    } else {
      select(hit?.person || null);
    }
  });
  viewer.onRender = () => ruler.update();
  // Fly: WASD along the view, Q/E down and up, moving the orbit's centre along.
  const keys = { w: [0, 0, -1], s: [0, 0, 1], a: [-1, 0, 0], d: [1, 0, 0], q: [0, -1, 0], e: [0, 1, 0] };
  window.addEventListener('keydown', (event) => {
    if (event.target.tagName === 'INPUT' || event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.toLowerCase();
    if (key === 'c') viewer.setView(viewer.cameraView ? 'orbit' : 'camera');
    else if (key === 'r') setRuler(!rulerOn);
    else if (key === 'h') document.body.classList.toggle('bare'); // panels away: a clean picture
    else if (key === 'escape') (rulerOn ? setRuler(false) : select(null));
    else if (keys[key]) {
      if (viewer.cameraView) viewer.setView('orbit');
      const camera = viewer.orbitCamera;
      const step = Math.max(0.05, 0.05 * camera.position.distanceTo(viewer.controls.target));
      const move = new THREE.Vector3(...keys[key]).multiplyScalar(step).applyQuaternion(camera.quaternion);
      camera.position.add(move);
      viewer.controls.target.add(move);
      viewer.controls.update();
    }
  });
}

async function main() {
  const result = JSON.parse(embedded('metrichmsr-result') || 'null');
  const tracks = JSON.parse(embedded('metrichmsr-tracks') || 'null');
  const glb = embedded('metrichmsr-scene');
  if (!result && !tracks) throw new Error('this page holds no result.json or tracks.json');
  const { fx, fy, cx, cy } = (result || tracks).camera;
  const size = result ? result.image : tracks.input;
  const viewer = new Viewer($('view'), { intrinsics: { fx, fy, cx, cy }, width: size.width, height: size.height });
  const people = result ? result.people : [];
  const gltf = glb ? await viewer.loadScene(base64ToArrayBuffer(glb), people) : null;
  let track = null;
  if (tracks) {
    track = new Tracks(viewer, tracks, gltf);
    if (track.points.length) viewer.centre = track.points.reduce((s, p) => s.add(p), new THREE.Vector3()).divideScalar(track.points.length);
  }
  const floor = result ? result.scene?.floor : tracks.floor;
  if (floor) viewer.setFloor(floor, track ? track.points : viewer.people.map((p) => fromOpenCV(p.record.translation)));
  for (const box of document.querySelectorAll('#layers input')) {
    box.parentElement.hidden = !viewer.layers[box.dataset.layer];
  }
  const select = setupPeoplePanel(viewer);
  const ruler = new Ruler(viewer);
  setupInteraction(viewer, ruler, select);
  track?.show(0);
  viewer.resetOrbit();
  viewer.setView('camera'); // the photo's view first: the overlay, in 3D
  $('title').textContent = result
    ? `${result.image.path} · ${count(people.length, 'person', 'people')}`
    : `${tracks.input.path} · ${count(tracks.tracks.length, 'track', 'tracks')}`;
  // The page's state for scripts (the browser test drives it through this).
  window.metrichmsrViewer = {
    ready: true,
    peopleCount: result ? viewer.people.length : tracks.tracks.length,
    setView: (view) => viewer.setView(view),
    setSilhouettes: (on) => viewer.setSilhouettes(on),
    select: (index) => select(viewer.people[index] || null),
    measure: (a, b) => {
      ruler.clear();
      ruler.add(fromOpenCV(a));
      return ruler.add(fromOpenCV(b));
    },
    showFrame: (index) => track?.show(index),
    // Milliseconds from navigation to the first frame drawn (the benchmark's "opens in").
    firstFrameMs: await new Promise((resolve) => requestAnimationFrame(() => resolve(performance.now()))),
    rendered: () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))),
  };
}

main().catch((error) => {
  $('error').hidden = false;
  $('error').textContent = `The viewer could not start: ${error.message}`;
  window.metrichmsrViewer = { ready: false, error: String(error) };
  console.error(error);
});
