"""Defaults of `recover` shared by the command line and :class:`metrichmsr.Recoverer`.

A light module (no torch, no numpy; pathlib only) so that the command line can read it before it parses its
arguments and loads the models.
"""

from pathlib import Path

#: The shipped HumanMoE weights (``models.humanmoe.HUMANMOE_WEIGHTS``; recipe:
#: metrichmsr/train/humanmoe_gpu.toml, then humanmoe_gpu_renders.toml; see BENCHMARKS.md).
HUMANMOE_WEIGHTS = Path(__file__).parent / "models" / "weights" / "humanmoe.pt"
#: Smallest person height (pixels) the detector looks for.
MIN_PERSON_PX = 60.0
#: BlazePose confidence a person needs in `recover` (lower than mediapipe's 0.5: small, distant
#: people score low and are still worth recovering).
MIN_SCORE = 0.4
#: A group photo holds dozens: the detector's own default (20) cut the sample photo's 24.
MAX_PEOPLE = 60
#: The formats `recover --format` and `track --format` can write the rigged people in
#: (``scene.rig_export``): glTF skins (recover's ``people_rigged.glb``, track's animated
#: ``scene.glb``) and BVH (``person_<id>.bvh``, ``track_<id>.bvh``).
RIG_FORMATS = ("glb", "bvh")
#: What `recover` and `track` write them in unless told.
DEFAULT_RIG_FORMATS = ("glb",)
#: `track` scans the whole frame for people on every this-many-th recovered frame; in between
#: it follows the people it has from where they were (BlazePose's video mode), ~10x cheaper.
#: Followed people are not lost between scans, so the scans are for newcomers: on the PETS clip
#: 10 against 5 ran 5.5 against 4.5 frames/s, found 4.16 against 4.39 people a frame and made
#: fewer tracks (17 against 20); on rendered clips IDF1 0.877 against 0.857 (BENCHMARKS.md).
DETECT_EVERY = 10
#: A fixed camera's scans look only where the picture moves, except every this-many-th, which
#: looks everywhere (someone who stood still since the last one and was lost is found again).
FULL_SCAN_EVERY = 5
#: Who `--population` can say the people are (``metrichmsr.population``): as the floor shows
#: them (adults where everyone standing on it is adult-sized, else anyone), anyone, or adults only.
POPULATIONS = ("auto", "all", "adults")
POPULATION = "auto"
