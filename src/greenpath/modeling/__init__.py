"""Predict accuracy and energy of training paths: EAT-IT importer, predictors, evaluation.

See docs/modeling.md. Public entry points:

- :func:`greenpath.modeling.eatit.import_eatit`, :func:`~greenpath.modeling.eatit.flag_chance_level`
- :class:`~greenpath.modeling.base.Predictor`, :class:`~greenpath.modeling.base.PathForecast`,
  :func:`~greenpath.modeling.base.get_predictor`
- :func:`greenpath.modeling.io.save` / :func:`~greenpath.modeling.io.load`
- :func:`greenpath.modeling.evaluate.evaluate_lodo` / :func:`~greenpath.modeling.evaluate.evaluate_model`
"""

from greenpath.modeling.base import (
    PathForecast,
    Predictor,
    available_predictors,
    get_predictor,
)
from greenpath.modeling.eatit import flag_chance_level, import_eatit
from greenpath.modeling.io import load, save

__all__ = [
    "PathForecast",
    "Predictor",
    "available_predictors",
    "flag_chance_level",
    "get_predictor",
    "import_eatit",
    "load",
    "save",
]
