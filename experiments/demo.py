"""``journeylab demo``: the main job on embedded defaults.

For now: every preset simulated under every registered policy, with the headline business
metrics side by side.
"""

from __future__ import annotations

import time

from agents import make_policy, policy_names
from envs.parameters import ScenarioParameters
from envs.scenario import load_scenario, preset_names
from experiments.cohort import run_cohort

COLUMNS = (
    ("net_value_per_customer", "net value", "{:>10.2f}"),
    ("revenue_per_customer", "revenue", "{:>9.2f}"),
    ("contact_cost_per_customer", "contact $", "{:>9.3f}"),
    ("conversions_per_customer", "conv.", "{:>6.3f}"),
    ("churn_rate", "churn", "{:>6.1%}"),
    ("optout_rate", "opt-out", "{:>7.1%}"),
    ("contacts_per_customer", "contacts", "{:>8.1f}"),
    ("rule_violations", "viol.", "{:>5.0f}"),
)


def run_demo(customers: int, seed: int) -> int:
    started = time.perf_counter()
    header = f"{'policy':<16}" + " ".join(f"{title:>{len(fmt.format(0))}}" for _, title, fmt in COLUMNS)
    for preset in preset_names():
        params = ScenarioParameters.compile(load_scenario(preset))
        days = params.scenario.horizon_days
        print(f"\n{preset} — {customers:,} customers over {days} days (per customer; net value ± 95% CI)")
        print(header)
        for name in policy_names():
            policy = make_policy(name, params, seed)
            if not policy.deployable:
                name += "*"
            metrics = run_cohort(params, policy, customers, days, seed).metrics()
            cells = " ".join(fmt.format(metrics[key]["mean"]) for key, _, fmt in COLUMNS)
            print(f"{name:<16}{cells}")
    print(f"\n* simulation-only policy (reads hidden state). Done in {time.perf_counter() - started:.1f} s.")
    print("Next: `journeylab simulate PRESET --policy NAME --plot cohort.png` for one cohort in detail.")
    return 0
