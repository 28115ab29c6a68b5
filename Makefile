.PHONY: setup demo test bench glb-check clean
PY := .venv/bin/python
export PYOPENGL_PLATFORM ?= egl

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m metrichmsr recover assets/sample.jpg -o out/demo --overwrite --format glb,bvh
	@echo "demo outputs: out/demo/view.html (open it in a browser) out/demo/result.json out/demo/scene.glb out/demo/people_rigged.glb out/demo/person_<id>.bvh out/demo/overlay.png out/demo/depth.png out/demo/depth.npy"

test: setup
	$(PY) -m pytest -q

# Held-out synthetic set (seeds from 1000000), methods side by side, then recover's own targets,
# then real calibrated footage (PETS 2009 S2.L1; builds its frames from Debian's opencv-doc once),
# the sample group photo against its hand-labelled faces,
# then track on the PETS clip and on synthetic clips.
bench: setup
	$(PY) -m metrichmsr synth --n 200 --seed 1000000 -o out/synth-heldout --overwrite
	$(PY) -m metrichmsr bench out/synth-heldout -o out/bench-heldout --overwrite --methods full,fixed-fov,box-only,box-true-focal,fit-only,humanmoe+fit
	$(PY) -m metrichmsr.bench.recover_bench
	$(PY) -m metrichmsr.bench.pets -o out/bench-pets --overwrite --camera-height-known
	$(PY) -m metrichmsr.bench.group_photo -o out/bench-group-photo --overwrite
	$(PY) -m metrichmsr.bench.track_pets -o out/bench-track-pets --overwrite
	$(PY) -m metrichmsr synth --video --n 8 --seed 1000000 -o out/synth-video --overwrite
	$(PY) -m metrichmsr.bench.track_synth out/synth-video -o out/bench-track-synth --overwrite

# Open the demo's scene.glb, people_rigged.glb and a BVH in Blender (its Python module, ~0.5 GB,
# into .venv-bpy) and the two glb files in three.js's GLTFLoader (npm). Not part of test: it downloads both.
glb-check: demo
	[ -x .venv-bpy/bin/python ] || (python3.11 -m venv .venv-bpy && .venv-bpy/bin/pip install -q bpy==4.2.0)
	.venv-bpy/bin/python scripts/glb_check/blender_check.py out/demo/scene.glb out/demo/people_rigged.glb out/demo/person_0.bvh
	cd scripts/glb_check && npm install --silent --no-audit --no-fund
	node scripts/glb_check/threejs_check.mjs out/demo/scene.glb out/demo/people_rigged.glb

clean:
	rm -rf out .pytest_cache
