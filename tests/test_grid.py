"""Grid arithmetic (issue 2: job counts and the minimum number of trained epochs)."""

from greenpath.grid import branches, epochs_needed, stop_points, trunk_segments


def test_segments_cover_the_trunk_once():
    segs = trunk_segments(10, [0, 3, 5, 7])
    assert [(s.start, s.end) for s in segs] == [(0, 3), (3, 5), (5, 7), (7, 10)]
    assert sum(s.end - s.start for s in segs) == 10


def test_segments_without_zero():
    assert [(s.start, s.end) for s in trunk_segments(50, [10, 20])] == [(0, 10), (10, 20), (20, 50)]


def test_minimum_epochs_by_hand():
    # trunk 10 + freeze (10+7+5+3) + quant (10+7+5+3) = 60; stop trains nothing
    assert epochs_needed(10, [0, 3, 5, 7], ["freeze", "quant", "stop"]) == 60
    assert epochs_needed(50, [0, 10, 20, 30, 40], ["freeze"]) == 50 + 150
    assert branches([0, 3], ["stop"]) == []
    assert stop_points([0, 3, 5], ["stop"]) == [3, 5]
