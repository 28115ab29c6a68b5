"""`recover`'s defaults are defined once (``metrichmsr.defaults``) and read by every front end."""

import inspect
import subprocess
import sys

from metrichmsr import defaults
from metrichmsr.cli import build_parser


def test_the_command_line_and_the_recoverer_share_the_defaults():
    from metrichmsr.perception import PoseDetector
    from metrichmsr.pipeline import Recoverer

    args = build_parser().parse_args(["recover", "photo.jpg", "-o", "out"])
    recoverer = inspect.signature(Recoverer).parameters
    for name in ("min_person_px", "min_score", "max_people"):
        expected = getattr(defaults, name.upper())
        assert getattr(args, name) == expected
        assert recoverer[name].default == expected
    assert inspect.signature(PoseDetector).parameters["min_person_px"].default == defaults.MIN_PERSON_PX


def test_the_defaults_load_nothing_heavy():
    code = "import sys, metrichmsr.defaults; assert not {'torch', 'numpy'} & set(sys.modules), sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
