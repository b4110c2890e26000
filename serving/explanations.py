"""Why this decision: the golden-record features that moved the chosen action's score most.

Occlusion (Zeiler & Fergus, "Visualizing and understanding convolutional networks", ECCV 2014),
run with onnxruntime alone: each feature of the customer's observation — the segment's one-hot
columns as one feature — is replaced in turn by a reference customer's value, all variants in one
batch through the policy, and the change in the decision's margin is that feature's effect:

- the margin of a contact is its score over staying silent, logit(a) − logit(no contact);
- the margin of silence is its score over the best allowed contact.

A positive effect means the customer's own value pushed towards the decision, compared with the
reference customer; the largest effects by magnitude are returned. The reference customer is the
engine's example request (``DecisionEngine.example_request``: an active customer with a short recent
history), encoded exactly as any request is, so an explanation reads "compared with a typical
active customer". The action mask stays the customer's: rules are reported beside, as blocked actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

TOP_FEATURES = 3
"""Features an explanation names: the few a person reads."""


@dataclass(frozen=True)
class FeatureGroups:
    """The observation's columns grouped by golden-record feature (the segment one-hot is one)."""

    names: tuple[str, ...]
    columns: tuple[tuple[int, ...], ...]
    normalisation: tuple[str, ...]
    labels: tuple[str, ...] = ()
    """The one-hot segment columns' segment names, in column order."""

    @classmethod
    def from_spec(cls, spec: list[dict[str, str]]) -> FeatureGroups:
        names: list[str] = []
        columns: list[tuple[int, ...]] = []
        normalisation: list[str] = []
        segment = tuple(i for i, f in enumerate(spec) if f["name"].startswith("segment="))
        if segment:
            names.append("segment")
            columns.append(segment)
            normalisation.append("one-hot")
        for i, feature in enumerate(spec):
            if i not in segment:
                names.append(feature["name"])
                columns.append((i,))
                normalisation.append(feature["normalisation"])
        labels = tuple(spec[i]["name"].removeprefix("segment=") for i in segment)
        return cls(tuple(names), tuple(columns), tuple(normalisation), labels)


def margins(logits: np.ndarray, mask: np.ndarray, action: int) -> np.ndarray:
    """(V,) the decision's margin in each row of ``logits`` (V, A), blocked actions left out."""
    allowed = np.where(mask[None, :], logits, -np.inf)
    if action != 0:
        return allowed[:, action] - allowed[:, 0]
    contacts = allowed[:, 1:]
    best = contacts.max(axis=1) if contacts.shape[1] else np.full(logits.shape[0], -np.inf)
    return np.where(np.isfinite(best), allowed[:, 0] - best, 0.0)


def explain(
    logits_of: Any, groups: FeatureGroups, observation: np.ndarray, reference: np.ndarray, mask: np.ndarray, action: int
) -> list[dict[str, Any]]:
    """The ``TOP_FEATURES`` features whose occlusion changes the decision's margin most.

    ``logits_of(observations (V, F), masks (V, A))`` is the policy (``PolicyArtifact.logits``)."""
    variants = np.repeat(observation[None, :], len(groups.names) + 1, axis=0)
    for g, columns in enumerate(groups.columns, start=1):
        variants[g, list(columns)] = reference[list(columns)]
    masks = np.repeat(mask[None, :].astype(np.float32), variants.shape[0], axis=0)
    margin = margins(np.asarray(logits_of(variants, masks)), mask, action)
    effects = margin[0] - margin[1:]
    order = np.argsort(-np.abs(effects), kind="stable")[:TOP_FEATURES]
    return [
        {
            "feature": groups.names[g],
            "value": _shown(observation, groups, g),
            "reference": _shown(reference, groups, g),
            "normalisation": groups.normalisation[g],
            "effect": float(effects[g]),
        }
        for g in order.tolist()
        if effects[g] != 0.0
    ]


def _shown(observation: np.ndarray, groups: FeatureGroups, group: int) -> float | str:
    """The feature's encoded value; for the segment, the segment's name."""
    values = observation[list(groups.columns[group])]
    return float(values[0]) if len(values) == 1 else groups.labels[int(np.argmax(values))]
