"""The one early-stopping rule (greenpath.early_stopping), pure Python."""

from __future__ import annotations

import math

import numpy as np
import pytest

from greenpath.early_stopping import PatienceRule, stop_epoch
from greenpath.paths.strategies import patience_stop_epoch

SEQ = [0.50, 0.62, 0.61, 0.60, 0.59, 0.58]


def test_rule_by_hand_and_state_round_trip():
    rule = PatienceRule(2)
    assert [rule.update(v, e) for e, v in enumerate(SEQ[:3], 1)] == [True, True, False]
    assert (rule.best, rule.best_epoch, rule.wait, rule.should_stop) == (0.62, 2, 1, False)
    again = PatienceRule(7, mode="min")
    again.load_state_dict(rule.state_dict())
    again.update(SEQ[3], 4)
    assert (again.patience, again.mode, again.wait, again.stopped_epoch) == (2, "max", 2, 4)


def test_min_mode_min_delta_and_non_finite():
    rule = PatienceRule(1, mode="min", min_delta=0.1)
    assert rule.update(1.0, 1) and not rule.update(0.95, 2)  # 0.05 < min_delta
    assert rule.stopped_epoch == 2
    nan = PatienceRule(3)
    assert not nan.update(math.nan, 1) and not nan.update(math.inf, 2)
    assert (nan.best, nan.wait) == (None, 2)


def test_stop_epoch_and_the_strategies_wrapper_agree():
    assert stop_epoch(SEQ, 2) == (4, 2)
    assert stop_epoch(SEQ, 10) == (6, 2)
    assert patience_stop_epoch(np.array(SEQ), 2) == (4, 2)
    assert patience_stop_epoch([math.nan, math.nan], 5) == (2, 1)  # nothing finite
    with pytest.raises(ValueError, match="empty"):
        stop_epoch([], 2)
    with pytest.raises(ValueError, match="patience"):
        PatienceRule(0)
    with pytest.raises(ValueError, match="mode"):
        PatienceRule(2, mode="up")
    with pytest.raises(ValueError, match="min_delta"):
        PatienceRule(2, min_delta=-1)
