"""The direct model of doubly robust off-policy evaluation: each action's expected window reward.

A ridge regression per action of the logged reward on the observation the decision was made on
(the simulator's feature encoding, standardised, with an unpenalised intercept), cross-fitted: the
customers are split into ``FOLDS`` groups and each group's predictions come from a model fitted on
the others, so a decision's own reward never enters its prediction (Chernozhukov et al.,
"Double/debiased machine learning", Econometrics Journal 2018). An action with fewer than
``MIN_ROWS`` logged decisions in a fold's training part is predicted by the mean reward of every
decision there. The doubly robust estimate is unbiased whenever the propensities are right, however
rough this model is; a better model only narrows the interval.
"""

from __future__ import annotations

import numpy as np

from journeylab.experiments.harness.ope import LoggedDecisions

FOLDS = 2
RIDGE = 10.0
"""Penalty on the standardised coefficients (in units of decisions): shrinks rare actions' fits."""
MIN_ROWS = 30


def _fold_of(customer: np.ndarray, folds: int) -> np.ndarray:
    """Each decision's fold, by a fixed hash of its customer (every decision of a customer together)."""
    _, code = np.unique(customer, return_inverse=True)
    mixed = (code.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(33)
    return (mixed % np.uint64(folds)).astype(np.int64)


def _ridge(x: np.ndarray, y: np.ndarray, penalty: float) -> tuple[np.ndarray, float]:
    """Coefficients and intercept of ``y ≈ x β + b`` with ``penalty`` on β (x already standardised)."""
    centre_x, centre_y = x.mean(axis=0), float(y.mean())
    xc = x - centre_x
    gram = xc.T @ xc + penalty * np.eye(x.shape[1])
    beta = np.linalg.solve(gram, xc.T @ (y - centre_y))
    return beta, centre_y - float(centre_x @ beta)


def fitted_direct_model(data: LoggedDecisions, folds: int = FOLDS, penalty: float = RIDGE) -> np.ndarray:
    """(n, A) cross-fitted predictions of each action's window reward for every logged decision."""
    n_actions = data.allowed.shape[1]
    x = data.observations.astype(np.float64)
    fold = _fold_of(data.customer, folds)
    predicted = np.zeros((data.size, n_actions))
    for k in range(folds):
        train, test = fold != k, fold == k
        if not test.any():
            continue
        if not train.any():
            train = test
        scale = x[train].std(axis=0)
        scale[scale == 0] = 1.0
        z = x / scale
        fallback = float(data.reward[train].mean())
        for a in range(n_actions):
            rows = train & (data.action == a)
            if rows.sum() < MIN_ROWS:
                predicted[test, a] = fallback
                continue
            beta, intercept = _ridge(z[rows], data.reward[rows], penalty)
            predicted[test, a] = z[test] @ beta + intercept
    return predicted
