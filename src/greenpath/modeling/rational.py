"""Least-squares fit of the rational score curve ``score_t ~ a / (b + t)``.

The paper's decision rule (GAISSA-UPC/energydl-full, ``src/analysis/analysis_rq2.Rmd``,
function ``get_best_epoch``) fits this curve by nonlinear least squares to the scores
(accuracy per kWh) of epochs ``t = 1..n`` and takes ``round(sqrt(a) - b)`` as the optimal
epoch. The path stage calls :func:`rational_optimum` at each simulated epoch; the fit is a
curve fit of the scores seen so far, not a predictor fitted on training data.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

#: Solvers of :func:`fit_rational`.
SOLVERS: tuple[str, ...] = ("gauss-newton", "lm")

#: Start values ``(a, b)``; the second is the Rmd's retry when the first gives ``a < 0``.
STARTS: tuple[tuple[float, float], ...] = ((100.0, 100.0), (1000.0, 1000.0))


def _rational(t: np.ndarray, a: float, b: float) -> np.ndarray:
    return a / (b + t)


def _gauss_newton(
    y: np.ndarray,
    p0: tuple[float, float],
    tol: float = 1e-5,
    max_iter: int = 10000,
    min_factor: float = 1e-10,
) -> tuple[float, float] | None:
    """Gauss-Newton with step halving for ``y_t ~ a / (b + t)``, the algorithm of R's ``nls``.

    R's default ``nls`` algorithm (Bates and Watts, 1988; R documentation of ``nls`` and
    ``nls.control``): the Gauss-Newton increment ``(J'J)^-1 J' r`` is scaled by a factor that
    halves until the residual sum of squares does not grow (and doubles, up to 1, after a
    success); convergence when the relative-offset criterion
    ``sqrt(|Q1' r|^2 / |Q2' r|^2) <= tol``. The Rmd calls it with ``minFactor = 1e-10`` and
    ``maxiter = 10000``. Returns ``(a, b)``, or ``None`` where R would stop with an error
    (step factor below ``min_factor``, iteration limit, non-finite values).
    """
    t = np.arange(1, len(y) + 1, dtype=float)
    a, b = float(p0[0]), float(p0[1])
    with np.errstate(all="ignore"):
        r = y - a / (b + t)
        dev = float(r @ r)
        fac = 1.0
        for _ in range(max_iter):
            jac = np.column_stack([1.0 / (b + t), -a / (b + t) ** 2])
            if not np.all(np.isfinite(jac)):
                return None
            q, _r = np.linalg.qr(jac, mode="complete")
            rot = q.T @ r
            denom = float(rot[2:] @ rot[2:])
            if denom == 0.0 or math.sqrt(float(rot[:2] @ rot[:2]) / denom) <= tol:
                return a, b
            incr = np.linalg.lstsq(jac, r, rcond=None)[0]
            while fac >= min_factor:
                na, nb = a + fac * incr[0], b + fac * incr[1]
                rn = y - na / (nb + t)
                nd = float(rn @ rn)
                if math.isfinite(nd) and nd <= dev:
                    a, b, r, dev = na, nb, rn, nd
                    fac = min(2.0 * fac, 1.0)
                    break
                fac /= 2.0
            if fac < min_factor:
                return None
    return None


def _levenberg_marquardt(y: np.ndarray, p0: tuple[float, float]) -> tuple[float, float] | None:
    t = np.arange(1, len(y) + 1, dtype=float)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            popt, _ = curve_fit(_rational, t, y, p0=p0, maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    return float(popt[0]), float(popt[1])


def fit_rational(scores: np.ndarray, solver: str = "gauss-newton") -> tuple[float, float] | None:
    """Least-squares fit of ``score_t ~ a / (b + t)``, t = 1..n (Rmd ``get_best_epoch``).

    Start at ``(a, b) = (100, 100)``; if that gives ``a < 0``, restart at ``(1000, 1000)``
    (the Rmd's retry; here also when the first start does not converge).

    Args:
        scores: shape (n,), scores in accuracy per kWh.
        solver: ``gauss-newton`` (R ``nls``'s algorithm, default) or ``lm``
            (``scipy.optimize.curve_fit``, Levenberg-Marquardt; it can land in another
            optimum, docs/paths.md).

    Returns:
        ``(a, b)`` or ``None`` when neither start converges.

    Raises:
        ValueError: unknown solver.
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; use 'gauss-newton' or 'lm'")
    y = np.asarray(scores, dtype=float)
    fit = _gauss_newton if solver == "gauss-newton" else _levenberg_marquardt
    result = None
    for p0 in STARTS:
        res = fit(y, p0)
        if res is None:
            continue
        result = res
        if res[0] >= 0:
            return res
    return result


def rational_optimum(scores: np.ndarray, solver: str = "gauss-newton") -> tuple[float, float]:
    """Optimal epoch and score of the rational curve through ``scores``.

    Args:
        scores: shape (n,), scores of epochs 1..n in accuracy per kWh (the rule
            ``sqrt(a) - b`` is not unit-invariant: kWh reproduces the paper).
        solver: see :func:`fit_rational`.

    Returns:
        ``(epoch_opt, score_opt)`` with ``epoch_opt = round(sqrt(a) - b)`` and
        ``score_opt = a / (b + epoch_opt)``; ``(nan, nan)`` when the fit fails or ``a < 0``.
    """
    fit = fit_rational(scores, solver)
    if fit is None or fit[0] < 0:
        return math.nan, math.nan
    a, b = fit
    epoch_opt = float(np.round(math.sqrt(a) - b))
    return epoch_opt, a / (b + epoch_opt)
