"""A user's own Policy subclass works everywhere a built-in one does: by import path or entry point."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from journeylab.agents.policy import PolicySpecError, parse_policy_spec, policy_from_spec, policy_names
from journeylab.experiments.cli.main import main
from tests.helpers import compile_scenario

USER_MODULE = textwrap.dedent("""
    import numpy as np
    from journeylab.agents import Policy


    class EveryKDays(Policy):
        name = "every_k_days"

        def __init__(self, params, seed=0, k=7):
            super().__init__(params, seed)
            self.k = int(k)

        def act(self, batch):
            first = np.argmax(batch.action_mask[:, 1:], axis=1) + 1
            allowed = batch.action_mask[:, 1:].any(axis=1)
            return np.where(allowed & (batch.day % self.k == 0), first, 0).astype(np.int64)


    class NotAPolicy:
        pass
""")


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch) -> str:
    (tmp_path / "my_policies.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_policies"
    sys.modules.pop("my_policies", None)


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("batch_and_blast:period=14,channel=web", ("batch_and_blast", {"period": 14, "channel": "web"})),
        ("my.module:Cls", ("my.module:Cls", {})),
        ("my_module:Cls:k=3,label=x", ("my_module:Cls", {"k": 3, "label": "x"})),
        ("learned:module=/m,mode=sample", ("learned", {"module": "/m", "mode": "sample"})),
    ],
)
def test_specs_name_a_policy_and_its_options(spec: str, parsed: tuple) -> None:
    assert parse_policy_spec(spec) == parsed


def test_a_user_policy_runs_from_the_command_line(user_module: str, tmp_path: Path) -> None:
    spec = f"{user_module}:EveryKDays:k=5"
    out = tmp_path / "metrics.json"
    assert main(["simulate", "telecom_retention", "--policy", spec, "--customers", "300", "--days", "20",
                 "--json", str(out)]) == 0  # fmt: skip
    metrics = json.loads(out.read_text())
    assert metrics["policy"] == "every_k_days"
    assert 0 < metrics["metrics"]["contacts_per_customer"]["mean"] <= 4  # days 0, 5, 10, 15 at most
    assert metrics["metrics"]["rule_violations"]["mean"] == 0


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        (":EveryKDays:cadence=3", "unexpected keyword argument 'cadence'"),
        (":Missing", "cannot import it"),
        (":NotAPolicy", "expected a subclass of journeylab.agents.Policy"),
    ],
)
def test_a_bad_user_policy_spec_exits_2_naming_it(user_module: str, suffix: str, message: str, capsys) -> None:
    assert main(["simulate", "telecom_retention", "--policy", user_module + suffix, "--customers", "10"]) == 2
    assert message in capsys.readouterr().err


def test_an_installed_package_offers_policies_by_entry_point(user_module: str, tmp_path: Path, monkeypatch) -> None:
    """A distribution on the path whose entry points name ``journeylab.policies`` (as pip installs them)."""
    dist = tmp_path / "site" / "my_policies-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-policies\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[journeylab.policies]\nevery_k_days = my_policies:EveryKDays\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert "every_k_days" in policy_names()
    policy = policy_from_spec("every_k_days:k=2", compile_scenario("telecom_retention"))
    assert type(policy).__name__ == "EveryKDays" and policy.k == 2
    with pytest.raises(PolicySpecError, match="--policy: unknown policy 'nothing_like_it'"):
        policy_from_spec("nothing_like_it", compile_scenario("telecom_retention"))


def test_the_readmes_own_policy_example_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    """The README's "Write your own policy" code, as a reader would save it, through the CLI it shows."""
    from tests.helpers import REPO

    readme = (REPO / "README.md").read_text()
    start = readme.index("# my_policies.py")
    (tmp_path / "my_policies.py").write_text(readme[start : readme.index("```", start)])
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        spec = "my_policies:WeeklyOffer:period=14"
        assert main(["simulate", "telecom_retention", "--policy", spec, "--customers", "200", "--days", "30"]) == 0
        assert "policy weekly_offer" in capsys.readouterr().out
    finally:
        sys.modules.pop("my_policies", None)
