"""The command line's input checks under hypothesis: any flag text, any --boxes JSON, any byte
prefix of a real image, any output path exits 0, 2 or 3, rejects on one line, and writes or
touches nothing (the checks run in this process; no model loads). The same fuzzer runs
10,000+ inputs as a benchmark: ``python -m metrichmsr.bench.fuzz_cli``."""

from metrichmsr.bench.fuzz_cli import Fuzzer, summary


def test_fuzzed_inputs_exit_cleanly_and_touch_nothing(tmp_path):
    tallies = Fuzzer(tmp_path).run(150, raise_on_defect=True)
    assert all(t.inputs > 0 for t in tallies.values()), summary(tallies)
    assert sum(t.defects for t in tallies.values()) == 0, summary(tallies)
    # The strategies reach past the first check: some inputs pass, some are refused.
    assert sum(t.exits[0] for t in tallies.values()) > 0 and sum(t.exits[2] for t in tallies.values()) > 0
