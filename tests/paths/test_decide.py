"""``decide`` on hand-made histories and forecasts (choices computed by hand), and the
per-epoch planner and the live controller taking the same path on a scripted run."""

from __future__ import annotations

import math

import numpy as np
import pytest
from paths_toy import toy_records

from greenpath.modeling.base import PathForecast
from greenpath.paths.decide import History, Margin, decide
from greenpath.paths.objectives import get_objective
from greenpath.paths.planner import forecast_tree, plan_tree_every_epoch
from greenpath.paths.tree import build_trees
from greenpath.records import build_trajectories

OBJ = get_objective("constrained", 0.01)


def fc(k, accs, joules, std=0.0):
    n = len(accs)
    return PathForecast(np.arange(k + 1, k + n + 1), np.array(accs, float), np.full(n, std),
                        np.full(n, float(joules)), np.zeros(n))  # fmt: skip


# trunk at d = 3 of E = 6, 10 J per epoch so far (30 J); the reference is base at 6 (.60)
BASE = fc(3, [0.57, 0.595, 0.60], 10.0)
QUANT = fc(3, [0.56, 0.592, 0.598], 6.0)
H3 = History(3, 6, 0.55, 30.0)


@pytest.mark.parametrize(
    ("margin", "action", "plan"),
    [
        # stop now .55 (-5 pts) unsafe; trunk to 5: -0.5 pt, 50 J; quant to 5: -0.8 pt,
        # 30 + 12 = 42 J -> the cheapest safe plan switches now
        (Margin(), "quant", ("quant", 3, 5, 42.0)),
        # delta .4 pt: quant to 5 needs >= -0.6 pt (fails); quant to 6 (-0.2 pt, 48 J) is
        # cheaper than the trunk to 5 (50 J)
        (Margin(0.0, 0.004), "quant", ("quant", 3, 6, 48.0)),
        # delta .9 pt: only plans >= -0.1 pt are safe: none but the full trunk -> continue
        (Margin(0.0, 0.009), "continue", ("base", 0, 6, 60.0)),
        # a 1-point margin on quant plans only: the trunk stopped at 5 (-0.5 pt, 50 J)
        (
            Margin(kind_margins=(("quant", 0.01), ("stop_later", 0.0))),
            "continue",
            ("base", 0, 5, 50.0),
        ),
        # a kind absent from the table gets the largest margin: nothing but the trunk
        (Margin(kind_margins=(("quant", 0.01),)), "continue", ("base", 0, 6, 60.0)),
        # the same margin from epoch 4 on only: not yet at 3 -> quant to 5 again
        (Margin(kind_margins=(("quant", 0.0), ("quant@4", 0.01))), "quant", ("quant", 3, 5, 42.0)),
    ],
)
def test_decide_on_the_trunk(margin, action, plan):
    a = decide(H3, {"base": BASE, "quant": QUANT}, OBJ, margin)
    p = a.chosen
    assert a.action == action
    assert (p.method, p.intervention_epoch, p.end_epoch, p.energy_j) == pytest.approx(plan)
    assert (a.ref_accuracy, a.full_energy_j) == (0.60, 60.0)
    stop = next(x for x in a.plans if x.action == "stop")
    assert (stop.safe, stop.value, stop.energy_j) == (False, -math.inf, 30.0)


def test_decide_stops_when_the_measured_accuracy_is_within_tolerance():
    # .596 vs the reference .60: -0.4 pt, safe; stop now is the cheapest plan (30 J)
    a = decide(History(3, 6, 0.596, 30.0), {"base": BASE, "quant": QUANT}, OBJ, Margin())
    assert a.action == "stop" and a.chosen.kind == "stop_now"
    # with z = 1 and a reference 1-sigma of .01: needs -0.4 >= -1 + 1 pt -> unsafe
    std = fc(3, [0.57, 0.595, 0.60], 10.0, std=0.01)
    assert decide(History(3, 6, 0.596, 30.0), {"base": std}, OBJ, Margin(1.0)).action == (
        "continue"
    )
    # a forbidden stop is not a plan
    a = decide(History(3, 6, 0.596, 30.0), {"base": BASE}, OBJ, Margin(), actions=("quant",))
    assert a.action == "continue" and all(p.action != "stop" for p in a.plans)


def test_decide_on_a_branch_uses_the_forecasts_made_at_the_switch():
    # quant from 3, now at 4 (36 J): stop now .58 (-2 pts) unsafe; quant to 5 (.592, 42 J)
    # safe -> continue; at .595 (-0.5 pt) stop now
    fcs = {"base": BASE, "quant": QUANT}
    a = decide(History(4, 6, 0.58, 36.0, "quant", 3), fcs, OBJ, Margin())
    assert a.action == "continue"
    assert (a.chosen.method, a.chosen.end_epoch, a.chosen.energy_j) == ("quant", 5, 42.0)
    assert {p.method for p in a.plans} == {"stop", "quant"}  # the trunk is the reference only
    b = decide(History(4, 6, 0.595, 36.0, "quant", 3), fcs, OBJ, Margin())
    assert b.action == "stop" and b.chosen.end_epoch == 4


def test_decide_score_and_errors():
    # score = acc / kWh: stop now .55 / 30 J beats every forecast plan (.57 / 40 J ...)
    a = decide(H3, {"base": BASE, "quant": QUANT}, get_objective("score"), Margin())
    assert a.action == "stop" and a.chosen.value == pytest.approx(0.55 / (30 / 3.6e6))
    assert decide(H3, {}, OBJ, Margin()).action == "continue"
    assert decide(History(0, 6), {"base": BASE}, OBJ, Margin(cold_start=False)).action == (
        "continue"
    )
    with pytest.raises(ValueError, match="need 4..6"):
        decide(History(3, 6, 0.5, 30.0), {"base": fc(4, [0.6, 0.6], 10.0)}, OBJ, Margin())


class LastPlus:
    """Forecasts every method from any trunk history: flat at the last accuracy plus a
    method's gain, constant J per epoch; no forecast without history."""

    GAIN = {"base": (0.03, 10.0), "freeze": (0.025, 4.0), "quant": (0.02, 6.0)}

    def forecast(self, history, method, intervention_epoch, last_epoch, *, dataset_info=None):
        k = int(intervention_epoch)
        assert list(history["epoch"]) == list(range(1, k + 1))
        if k == 0:
            raise ValueError("no history")
        gain, joules = self.GAIN[method]
        last = float(history.sort_values("epoch")["val_accuracy"].iloc[-1])
        return fc(k, [last + gain] * (last_epoch - k), joules)


def test_planner_and_controller_take_the_same_path():
    from greenpath.control import Controller
    from greenpath.control.run import replay_tree

    tree = build_trees(build_trajectories(toy_records()))[
        0
    ]  # trunk .2 .4 .5 .55 .58 .60; branches at 2, 4
    fcs = forecast_tree(tree, LastPlus(), range(tree.last_epoch))
    choice = plan_tree_every_epoch(tree, fcs, OBJ, Margin())
    ctl = Controller(LastPlus(), last_epoch=6, decision_epochs=tree.decision_epochs)
    key = replay_tree(ctl, tree)
    # by hand: at 1 (.2 vs ref .23) the trunk to 2 is the cheapest safe plan; at 2 (.4, 20
    # J; ref .43) freeze to 3 (.425, 24 J) is; on freeze@2 at 3 the measured .45 >= .43 - .01
    assert (choice.method, choice.intervention_epoch, choice.end_epoch) == ("freeze", 2, 3)
    assert key == ("freeze", 2, 3)
    assert [d.action for d in ctl.decisions] == ["continue", "continue", "freeze", "stop"]
