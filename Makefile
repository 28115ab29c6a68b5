.PHONY: setup demo test bench clean
PY := .venv/bin/python
export PYOPENGL_PLATFORM ?= egl

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m metrichmsr recover assets/sample.jpg -o out/demo
	@echo "demo outputs: out/demo/result.json out/demo/scene.glb out/demo/overlay.png"

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) -m metrichmsr.bench.recover_bench

clean:
	rm -rf out .pytest_cache
