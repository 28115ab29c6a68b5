"""Fuzz the command line's input checks: any text for each flag, any JSON for ``--boxes``, any
byte prefix of a real JPEG or PNG, any output path.

Every input must end in exit status 0, 2 or 3 (never 1, an internal error, never a traceback);
exit 2 must come with exactly one line on stderr; and nothing may be written or touched: each
input is first checked with ``--dry-run``, and every rejected one is then run for real, which
must fail the same way before any model loads. ``tests/test_cli_fuzz.py`` runs a few hundred
inputs in ``make test``; this script runs as many as asked and prints a table.

    python -m metrichmsr.bench.fuzz_cli --n 10000
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image

from metrichmsr.cli import main

VALUE_FLAGS = (
    "--fov",
    "--focal",
    "--intrinsics",
    "--camera-height",
    "--min-person-px",
    "--max-people",
    "--min-score",
    "--depth",
    "--device",
    "--weights",
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=24,
)
# Boxes near the real shape, so the checks past "is it a list" are reached too.
box_lists = st.lists(st.lists(st.floats(-200, 300) | st.integers(-5, 100), min_size=3, max_size=5), max_size=4)
flag_values = st.tuples(st.sampled_from(VALUE_FLAGS), st.text(max_size=24))
output_names = st.text(min_size=1, max_size=16).filter(lambda name: name not in (".", ".."))


@dataclass
class Tally:
    """What one strategy's inputs gave."""

    inputs: int = 0
    exits: Counter = field(default_factory=Counter)
    internal_errors: list[str] = field(default_factory=list)  # exit 1, a traceback, or an escaped exception
    not_one_line: list[str] = field(default_factory=list)  # exit 2 without exactly one line on stderr
    touched: list[str] = field(default_factory=list)  # a rejected input that wrote or changed a file
    seconds: float = 0.0

    @property
    def defects(self) -> int:
        return len(self.internal_errors) + len(self.not_one_line) + len(self.touched)


def _snapshot(root: Path) -> dict:
    return {p.relative_to(root): (p.read_bytes(), p.stat().st_mtime_ns) if p.is_file() else None for p in sorted(root.rglob("*"))}


def _call(argv: list[str]) -> tuple[int | str, str]:
    """Exit status of ``metrichmsr argv`` run in this process, and its stderr."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            status = main(argv)
        except SystemExit as exit_:  # --help, --version
            status = exit_.code if isinstance(exit_.code, int) else 0
        except BaseException as error:  # main let something escape: a defect either way
            return f"escaped {type(error).__name__}: {error}", stderr.getvalue()
    return status, stderr.getvalue()


class Fuzzer:
    """A scratch folder with a good image of each kind; each input gets a fresh folder in it."""

    def __init__(self, root: Path):
        self.root = root
        rng = np.random.default_rng(0)
        sample = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
        self.encoded = {}
        for suffix, kind in ((".jpg", "JPEG"), (".png", "PNG")):
            buffer = io.BytesIO()
            sample.save(buffer, kind)
            self.encoded[suffix] = buffer.getvalue()
        self.count = 0

    def case(self, tally: Tally, files: dict[str, bytes], argv: list[str]) -> None:
        """Run ``argv`` (paths relative to a fresh folder holding ``files``) and tally it."""
        self.count += 1
        work = self.root / f"case{self.count}"
        work.mkdir()
        try:
            for name, data in files.items():
                (work / name).parent.mkdir(parents=True, exist_ok=True)
                (work / name).write_bytes(data)
            argv = [arg.replace("{work}", str(work)) for arg in argv]
            before = _snapshot(work)
            started = time.perf_counter()
            status, stderr = _call([*argv, "--dry-run"])
            label = f"{argv!r}: {status} {stderr.strip()[:200]!r}"
            if status == 2:
                status, stderr = _call(argv)  # the real run must reject it the same way
                label = f"{argv!r}: {status} {stderr.strip()[:200]!r}"
            tally.seconds += time.perf_counter() - started
            tally.inputs += 1
            tally.exits[status] += 1
            if status not in (0, 2, 3) or "Traceback" in stderr:
                tally.internal_errors.append(label)
            elif status == 2 and (stderr.count("\n") != 1 or not stderr.startswith("metrichmsr: error: ")):
                tally.not_one_line.append(label)
            if _snapshot(work) != before:
                tally.touched.append(label)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def run(self, n: int, raise_on_defect: bool = False) -> dict[str, Tally]:
        """Up to ``n`` inputs per strategy (fewer where a strategy has fewer distinct ones)."""
        tallies = {
            name: Tally() for name in ("flag values", "--boxes JSON", "--boxes near boxes", "image prefixes", "output paths")
        }
        budget = settings(
            max_examples=n, database=None, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck)
        )

        def check(tally: Tally, files: dict[str, bytes], argv: list[str]) -> None:
            defects = tally.defects
            self.case(tally, files, argv)
            if raise_on_defect and tally.defects > defects:
                raise AssertionError((tally.internal_errors + tally.not_one_line + tally.touched)[-1])

        image = {"photo.jpg": self.encoded[".jpg"]}

        @budget
        @given(st.lists(flag_values, min_size=1, max_size=3))
        def flags(pairs):
            argv = ["recover", "{work}/photo.jpg", "-o", "{work}/out"]
            for flag, value in pairs:
                argv += [flag, value]
            check(tallies["flag values"], image, argv)

        @budget
        @given(json_values, st.booleans())
        def boxes_json(data, folder):
            files = {"photos/photo.jpg" if folder else "photo.jpg": self.encoded[".jpg"], "boxes.json": json.dumps(data).encode()}
            source = "{work}/photos" if folder else "{work}/photo.jpg"
            check(tallies["--boxes JSON"], files, ["recover", source, "-o", "{work}/out", "--boxes", "{work}/boxes.json"])

        @budget
        @given(box_lists)
        def boxes_near(boxes):
            files = {**image, "boxes.json": json.dumps(boxes).encode()}
            check(
                tallies["--boxes near boxes"],
                files,
                ["recover", "{work}/photo.jpg", "-o", "{work}/out", "--boxes", "{work}/boxes.json"],
            )

        @budget
        @given(st.sampled_from(sorted(self.encoded)), st.floats(0.0, 1.0), st.booleans())
        def prefixes(suffix, fraction, folder):
            data = self.encoded[suffix]
            name = f"photos/cut{suffix}" if folder else f"cut{suffix}"
            source = "{work}/photos" if folder else "{work}/" + name
            check(tallies["image prefixes"], {name: data[: int(fraction * len(data))]}, ["recover", source, "-o", "{work}/out"])

        @budget
        @given(output_names, st.booleans())
        def outputs(name, overwrite):
            check(
                tallies["output paths"],
                image,
                ["recover", "{work}/photo.jpg", "-o", "{work}/" + name, *(["--overwrite"] if overwrite else [])],
            )

        for strategy in (flags, boxes_json, boxes_near, prefixes, outputs):
            strategy()
        return tallies


def table(tallies: dict[str, Tally]) -> str:
    rows = [
        "| strategy | inputs | exit 0 | exit 2 | exit 3 | internal errors | not one line | files touched | ms / input |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, t in tallies.items():
        rows.append(
            f"| {name} | {t.inputs} | {t.exits[0]} | {t.exits[2]} | {t.exits[3]} | {len(t.internal_errors)} | "
            f"{len(t.not_one_line)} | {len(t.touched)} | {1000 * t.seconds / max(t.inputs, 1):.1f} |"
        )
    return "\n".join(rows)


def summary(tallies: dict[str, Tally]) -> str:
    total = sum(t.inputs for t in tallies.values())
    internal = sum(len(t.internal_errors) for t in tallies.values())
    lines = sum(len(t.not_one_line) for t in tallies.values())
    touched = sum(len(t.touched) for t in tallies.values())
    return (
        f"summary: {total} inputs, {internal} internal errors or tracebacks, {lines} rejections not on one line, "
        f"{touched} with files written or touched"
    )


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="inputs per strategy, at most (default 2000; five strategies)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="metrichmsr-fuzz-") as root:
        started = time.perf_counter()
        tallies = Fuzzer(Path(root)).run(args.n)
    print(table(tallies))
    for t in tallies.values():
        for label in (t.internal_errors + t.not_one_line + t.touched)[:3]:
            print("  defect:", label)
    print(f"{summary(tallies)} ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    cli()
