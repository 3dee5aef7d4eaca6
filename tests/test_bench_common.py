"""The benchmarks' target check: a figure against an issue's bound, a miss noted and kept for the suite's verdict."""

import pytest

from tests.bench.common import Results


@pytest.mark.parametrize(
    "value, baseline, bounds, ratio, kept",
    [
        (9.0, 10.0, {"at_least": 0.9}, True, True),  # exactly on the bound
        (8.9, 10.0, {"at_least": 0.9}, True, False),
        (0.0, None, {"at_most": 0}, False, True),
        (1.0, None, {"at_most": 0}, False, False),
        (150.0, None, {"at_least": 100, "at_most": 200}, False, True),
        (None, None, {"at_least": 0}, False, False),  # nothing measured misses every target
        (5.0, None, {"at_least": 0.9}, True, False),  # a ratio without a baseline
    ],
)
def test_a_figure_meets_its_target_or_is_recorded_as_missed(value, baseline, bounds, ratio, kept, capsys):
    results = Results()
    reference = results.add("g", "plain", baseline, "images/s") if baseline is not None else None
    figure = results.add("g", "ours", value, "images/s", baseline=reference)
    assert results.require(figure, ratio=ratio, **bounds) is kept
    assert len(results.missed) == (0 if kept else 1)
    if not kept:
        assert results.missed[0].startswith("[g] ours: ") and "target" in results.missed[0]
        assert "target missed" in capsys.readouterr().out


def test_a_target_needs_a_bound():
    results = Results()
    with pytest.raises(ValueError, match="at_least or at_most"):
        results.require(results.add("g", "x", 1.0, "s"))
