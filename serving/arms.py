"""Sticky holdout arms: which customers the served policy decides for, which the business-as-usual
program keeps, and which are never contacted (a control group) — assigned by a salted hash of the id.

What every "AI decisioning" product does to prove lift (Braze Decisioning Studio, Hightouch, Aampe):
each customer lands in one arm for as long as the salt stays, so decisions made on different days,
in the service or in nightly batches, agree on it.

Each id and the salt give one uniform number u in [0, 1) (BLAKE2b keyed by the salt, RFC 7693; no
pandas, so the service computes it too). The unit interval is laid out as

    [0, bau) → ``bau``   ·   [bau, 1 − policy) → ``control``   ·   [1 − policy, 1) → ``policy``

so the control group sits between the two programs: raising the policy's share by taking from the
control moves control customers into ``policy`` and no one out of ``policy`` or ``bau`` (raising the
business-as-usual share likewise); taking from ``bau`` moves only the customers it must.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from journeylab.errors import InputError

ARMS: tuple[str, ...] = ("policy", "bau", "control")
POLICY, BAU, CONTROL = range(3)
_SCALE = float(1 << 64)


class ArmError(InputError):
    """Arm shares that are not a split of the customers; the message names the key."""


@dataclass(frozen=True)
class ArmShares:
    """The shares of the three arms (summing to 1) and the salt that makes assignment sticky."""

    policy: float = 1.0
    bau: float = 0.0
    control: float = 0.0
    salt: str = "journeylab"

    def __post_init__(self) -> None:
        for arm in ARMS:
            share = getattr(self, arm)
            if not isinstance(share, int | float) or not math.isfinite(share) or not 0.0 <= share <= 1.0:
                raise ArmError(f"arms.{arm}: expected a share in [0, 1], got {share!r}")
        total = self.policy + self.bau + self.control
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ArmError(f"arms: the shares of policy, bau and control must sum to 1, got {total:.6g}")
        if not self.salt:
            raise ArmError("arms.salt: expected a non-empty text")

    @classmethod
    def parse(cls, text: str) -> ArmShares:
        """``policy=0.8,bau=0.1,control=0.1[,salt=S]`` (the command line's ``--arms``)."""
        values: dict[str, object] = {}
        for item in filter(None, text.split(",")):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in (*ARMS, "salt"):
                raise ArmError(f"arms: expected policy=, bau=, control= and salt= entries, got {item!r}")
            if key == "salt":
                values[key] = value.strip()
                continue
            try:
                values[key] = float(value)
            except ValueError:
                raise ArmError(f"arms.{key}: expected a share in [0, 1], got {value!r}") from None
        missing = [arm for arm in ARMS if arm not in values]
        if missing:
            raise ArmError(f"arms: missing share(s) {missing}; give policy, bau and control (they sum to 1)")
        return cls(**values)  # type: ignore[arg-type]

    def uniforms(self, customer_ids: Iterable[str]) -> np.ndarray:
        """(N,) each id's place in [0, 1): BLAKE2b of the id keyed by the salt."""
        key = hashlib.sha256(self.salt.encode()).digest()[:32]
        words = [
            int.from_bytes(hashlib.blake2b(str(cid).encode(), digest_size=8, key=key).digest(), "little")
            for cid in customer_ids
        ]
        return np.array(words, dtype=np.uint64).astype(np.float64) / _SCALE

    def assign(self, customer_ids: Iterable[str]) -> np.ndarray:
        """(N,) int8 arm of each id: ``POLICY``, ``BAU`` or ``CONTROL`` (see the module's layout)."""
        u = self.uniforms(customer_ids)
        arm = np.full(u.shape, CONTROL, np.int8)
        arm[u < self.bau] = BAU
        arm[u >= 1.0 - self.policy] = POLICY
        return arm

    def describe(self) -> str:
        return f"policy {self.policy:.0%} · bau {self.bau:.0%} · control {self.control:.0%} (salt {self.salt!r})"


def check_bau(policy: Any, bau: Any) -> None:
    """The business-as-usual artifact must decide over the policy's actions for the same segments."""
    if bau.actions != policy.actions or list(bau.scenario.segments) != list(policy.scenario.segments):
        raise ArmError(
            f"bau: {bau.model['name']} {bau.model['version']} decides over other actions or segments than "
            f"{policy.model['name']} {policy.model['version']}; the arms must decide for the same customers "
            "with the same catalogue"
        )


class ArmRouter:
    """Decides each request by its customer's arm: the served policy, the business-as-usual artifact,
    or silence for the control group (propensity 1: the control arm never contacts). Every decision
    carries its arm and the model that made it; order is kept."""

    def __init__(self, arms: ArmShares, policy: Any, bau: Any | None = None) -> None:
        if arms.bau > 0 and bau is None:
            raise ArmError(f"arms.bau: a share of {arms.bau:g} needs --bau ARTIFACT, the program the team ran before")
        if bau is not None:
            check_bau(policy, bau)
        self.arms, self.policy, self.bau = arms, policy, bau
        self.control_model = {"name": "control", "version": arms.salt}

    def decide(self, requests: list[Any]) -> list[Any]:
        import dataclasses

        arm = self.arms.assign([r.customer_id for r in requests])
        decisions: list[Any] = [None] * len(requests)
        for code, engine in ((POLICY, self.policy), (BAU, self.bau or self.policy), (CONTROL, self.policy)):
            rows = np.flatnonzero(arm == code).tolist()
            if not rows:
                continue
            given = [requests[i] for i in rows]
            if engine is not self.policy:  # its own request models: validated again against them
                given = [r.model_dump() for r in given]
            for row, decision in zip(rows, engine.decide_batch(given).decisions(), strict=True):
                if code == CONTROL:  # the rules and scores stay visible; nothing is sent
                    decision = dataclasses.replace(
                        decision, channel=None, message=None, action_index=0, propensity=1.0, explored=False,
                        model=self.control_model, explanation=None,
                    )  # fmt: skip
                decisions[row] = dataclasses.replace(decision, arm=ARMS[code])
        return decisions
