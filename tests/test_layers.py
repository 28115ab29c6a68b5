"""The package's layers: no module imports from a layer above its own.

Read from the source with ``ast`` (every import, function-level and ``TYPE_CHECKING`` ones
included), so a stage cannot come to lean on what is built on top of it. Imports within one
layer are free.
"""

import ast
from pathlib import Path

import pytest

import metrichmsr

PACKAGE = Path(metrichmsr.__file__).parent

#: Layer of each top-level module or subpackage of ``metrichmsr``, bottom (0) to top.
LAYERS = {
    # Plain helpers, the camera, the body model and perception.
    "errors": 0,
    "defaults": 0,
    "devices": 0,
    "_quiet": 0,
    "_outputs": 0,
    "image_io": 0,
    "video_io": 0,
    "inputs": 0,
    "geometry": 0,
    "joints": 0,
    "camera": 0,
    "body": 0,
    "population": 0,
    "perception": 0,
    # The method's stages and what they share.
    "models": 1,
    "scene": 1,
    "fit": 1,
    "render": 1,
    "synth": 1,
    "metrics": 1,
    "result": 1,
    "tracking": 1,
    "tracks": 1,
    "viewer": 1,
    # The one place that wires the stages.
    "pipeline": 2,
    # Training HumanMoE and annotating datasets (jobs over the pipeline), then the front ends:
    # the benchmarks (which may measure what training reads, and the command line itself), the
    # command line and the package's front door.
    "train": 3,
    "annotate": 3,
    "bench": 4,
    "cli": 4,
    "__main__": 4,
    "__init__": 4,
}


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    """Layer of ``metrichmsr.<name>[...]``; the package itself is its ``__init__``."""
    parts = module.split(".")
    if parts[0] != "metrichmsr":
        raise ValueError(f"not a metrichmsr module: {module}")
    name = parts[1] if len(parts) > 1 else "__init__"
    if name not in LAYERS:
        raise KeyError(f"metrichmsr.{name} has no layer: add it to LAYERS in tests/test_layers.py")
    return LAYERS[name]


def imported_modules(path: Path, root: Path = PACKAGE) -> set[str]:
    """The ``metrichmsr`` modules ``path`` (a file of the package at ``root``) imports, absolute or relative."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "metrichmsr":  # from metrichmsr import camera; from metrichmsr import __version__
                found.update(
                    f"metrichmsr.{alias.name}"
                    if (root / alias.name).is_dir() or (root / f"{alias.name}.py").is_file()
                    else module
                    for alias in node.names
                )
            else:
                found.add(module)
    return {m for m in found if m == "metrichmsr" or m.startswith("metrichmsr.")}


def upward_imports(package: Path = PACKAGE) -> list[str]:
    """``"importer (layer) -> imported (layer)"`` for every import from a higher layer."""
    problems = []
    for path in sorted(package.rglob("*.py")):
        importer = _module_name(path, package)
        own = layer_of(importer if path.name != "__main__.py" else "metrichmsr.__main__")
        for module in sorted(imported_modules(path, package)):
            theirs = layer_of(module)
            if theirs > own:
                problems.append(f"{importer} (layer {own}) -> {module} (layer {theirs})")
    return problems


def test_every_module_has_a_layer():
    for path in PACKAGE.rglob("*.py"):
        layer_of(_module_name(path))


def test_no_module_imports_from_a_layer_above():
    assert upward_imports() == []


def test_an_upward_import_is_caught(tmp_path):
    fake = tmp_path / "metrichmsr"
    (fake / "train").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "train" / "__init__.py").write_text("")
    (fake / "train" / "noise.py").write_text("def measure():\n    from metrichmsr.bench.score import match\n")
    (fake / "camera.py").write_text("from . import pipeline\nfrom metrichmsr import body, __version__\n")
    (fake / "pipeline.py").write_text("")
    (fake / "body.py").write_text("")
    assert upward_imports(fake) == [
        "metrichmsr.camera (layer 0) -> metrichmsr (layer 4)",  # __version__ is the package's own
        "metrichmsr.camera (layer 0) -> metrichmsr.pipeline (layer 2)",
        "metrichmsr.train.noise (layer 3) -> metrichmsr.bench.score (layer 4)",
    ]


@pytest.mark.parametrize("module, layer", [("metrichmsr.scene.depth", 1), ("metrichmsr.perception", 0), ("metrichmsr", 4)])
def test_layer_of_a_module(module, layer):
    assert layer_of(module) == layer
