"""``journeylab demo``: the main job on embedded defaults.

For now: every preset evaluated under every baseline on the same customers (paired intervals
against ``no_contact``), each policy tracked as an MLflow run in the local sqlite store.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from agents.baselines import BASELINES
from envs.scenario import preset_names
from experiments.evaluate import evaluate, log_evaluation
from experiments.plots import evaluation_figures
from experiments.tracking import tracking_uri


def run_demo(customers: int, seed: int, track: bool = True) -> int:
    started = time.perf_counter()
    policies = list(BASELINES)
    for preset in preset_names():
        evaluation = evaluate(preset, policies, customers, seed=seed)
        print(f"\n{evaluation.table()}")
        if track:
            with tempfile.TemporaryDirectory() as scratch:
                log_evaluation(evaluation, None, evaluation_figures(evaluation, Path(scratch)))
    print(f"\nDone in {time.perf_counter() - started:.1f} s.")
    if track:
        print(f"Every policy above is an MLflow run (experiment = preset) in {tracking_uri()}.")
        print("Browse them: .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1")
    print("One cohort in detail: .venv/bin/journeylab simulate PRESET --policy NAME --plot cohort.png")
    return 0
