"""A mapping file: a log's own vocabulary translated into a scenario's, before calibration.

Real logs name things their own way — ``mobile`` for the push channel, an offer's id for the
message, ``purchase`` for a conversion — and their customer tables hold attributes (age, income,
gender), not the scenario's segments. A YAML mapping says how to translate::

    events:   {sent: contact, purchase: conversion}      # the log's event names → the schema's
    channels: {mobile: push}                             # the log's channels → the scenario's
    messages: {ae264e36: bogo_10_7}                       # the log's messages → the scenario's
    segments:                                            # customer attributes → segments; first match wins
      - segment: no_profile
        when: {income: missing}
      - segment: high_income
        when: {income: [80000, null]}                    # a number range [low, high); null: open
      - segment: women
        when: {gender: [F]}                              # categories
      - segment: everyone_else                           # no condition: everyone left

A value the log holds that is neither mapped nor already a valid name, a mapping target that is not
valid, and a customer no segment rule matches are all errors naming the column, the value and
the valid targets (exit 2 in the CLI).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from journeylab.envs.event_log import EVENT_TYPES
from journeylab.envs.scenario import Scenario
from journeylab.errors import InputError

SECTIONS = ("events", "channels", "messages", "segments")
MISSING = "missing"


class MappingError(InputError):
    """A mapping file that is malformed, or a log value it leaves unmapped; the message names both."""


@dataclass(frozen=True)
class SegmentRule:
    segment: str
    when: dict[str, Any] = field(default_factory=dict)

    def matches(self, table: pd.DataFrame) -> np.ndarray:
        """(n,) bool: the customers every condition holds for."""
        hit = np.ones(len(table), bool)
        for column, condition in self.when.items():
            values = table[column]
            if condition == MISSING:
                hit &= values.isna().to_numpy()
            elif _is_range(condition):
                low, high = condition
                numbers = pd.to_numeric(values, errors="coerce").to_numpy(float)
                inside = ~np.isnan(numbers)
                if low is not None:
                    inside &= numbers >= low
                if high is not None:
                    inside &= numbers < high
                hit &= inside
            else:
                hit &= values.astype(str).isin([str(c) for c in condition]).to_numpy()
        return hit


def _is_range(condition: Any) -> bool:
    return (
        isinstance(condition, list)
        and len(condition) == 2
        and all(c is None or isinstance(c, int | float) for c in condition)
        and any(c is not None for c in condition)
    )


@dataclass(frozen=True)
class LogMapping:
    events: dict[str, str] = field(default_factory=dict)
    channels: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    segments: tuple[SegmentRule, ...] = ()

    @classmethod
    def load(cls, path: Path) -> LogMapping:
        if not path.exists():
            raise MappingError(f"mapping file {path} does not exist")
        try:
            document = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise MappingError(f"mapping file {path}: not valid YAML ({exc})") from None
        return cls.from_document(document, str(path))

    @classmethod
    def from_document(cls, document: Any, source: str = "mapping") -> LogMapping:
        if not isinstance(document, dict):
            raise MappingError(f"{source}: expected a mapping with keys {list(SECTIONS)}")
        unknown = sorted(set(document) - set(SECTIONS))
        if unknown:
            raise MappingError(f"{source}: unknown key(s) {unknown}; expected only {list(SECTIONS)}")
        tables = {}
        for section in SECTIONS[:3]:
            table = document.get(section) or {}
            if not isinstance(table, dict):
                raise MappingError(f"{source}: '{section}' must map the log's names to the scenario's")
            tables[section] = {str(k): str(v) for k, v in table.items()}
        return cls(**tables, segments=_segment_rules(document.get("segments") or [], source))

    def check_targets(self, scenario: Scenario) -> None:
        """Every target must be a name of the schema or of ``scenario``."""
        valid = _valid_names(scenario)
        for section in SECTIONS[:3]:
            for source, target in getattr(self, section).items():
                if target not in valid[section]:
                    raise MappingError(
                        f"mapping {section}.{source}: '{target}' is not one of the valid targets {sorted(valid[section])}"
                    )
        for rule in self.segments:
            if rule.segment not in scenario.segments:
                raise MappingError(
                    f"mapping segments: '{rule.segment}' is not a segment of scenario {scenario.name}: {list(scenario.segments)}"
                )

    def apply_events(self, frame: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
        """``frame`` with events, channels and messages translated; an unmapped value is an error."""
        self.check_targets(scenario)
        valid = _valid_names(scenario)
        out = frame.copy()
        for section, column in (("events", "event"), ("channels", "channel"), ("messages", "message")):
            if column not in out.columns:
                continue
            table = getattr(self, section)
            present = out[column].notna()
            mapped = out[column].where(~present, out[column].astype(str).map(lambda v, t=table: t.get(v, v)))
            bad = present & ~mapped.isin(valid[section])
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise MappingError(
                    f"column '{column}': value {frame[column].iloc[row]!r} (first at row {row}) is not mapped; "
                    f"map it under '{section}:' to one of {sorted(valid[section])}"
                )
            out[column] = mapped
        return out

    def apply_customers(self, table: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
        """``table`` with a ``segment`` column from the rules (when there are rules)."""
        if not self.segments:
            return table
        self.check_targets(scenario)
        columns = sorted({c for rule in self.segments for c in rule.when})
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise MappingError(f"mapping segments: customer table has no column(s) {missing}; it has {list(table.columns)}")  # fmt: skip
        segment = pd.Series(pd.NA, index=table.index, dtype=object)
        for rule in self.segments:
            free = segment.isna().to_numpy()
            segment[free & rule.matches(table)] = rule.segment
        unmatched = segment.isna().to_numpy()
        if unmatched.any():
            row = int(np.flatnonzero(unmatched)[0])
            values = {c: _plain(table[c].iloc[row]) for c in columns}
            raise MappingError(
                f"mapping segments: customer {table['customer_id'].iloc[row]!r} (row {row}, {values}) matches no rule; "
                f"add a rule for it (segments: {list(scenario.segments)}) or a last rule without 'when'"
            )
        return table.assign(segment=segment.astype(str))


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (for messages a user reads)."""
    return value.item() if isinstance(value, np.generic) else value


def _segment_rules(rules: Any, source: str) -> tuple[SegmentRule, ...]:
    if not isinstance(rules, list):
        raise MappingError(f"{source}: 'segments' must be a list of {{segment: NAME, when: {{COLUMN: CONDITION}}}}")
    out = []
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict) or "segment" not in rule or set(rule) - {"segment", "when"}:
            raise MappingError(f"{source}: segments[{index}]: expected keys 'segment' and optionally 'when', got {rule!r}")  # fmt: skip
        when = rule.get("when") or {}
        if not isinstance(when, dict):
            raise MappingError(f"{source}: segments[{index}].when: expected {{COLUMN: CONDITION}}, got {when!r}")
        for column, condition in when.items():
            if not (condition == MISSING or _is_range(condition) or (isinstance(condition, list) and condition)):
                raise MappingError(
                    f"{source}: segments[{index}].when.{column}: expected 'missing', a range [low, high) "
                    f"(null for an open end) or a list of categories, got {condition!r}"
                )
        out.append(SegmentRule(str(rule["segment"]), dict(when)))
    return tuple(out)


def _valid_names(scenario: Scenario) -> dict[str, set[str]]:
    return {"events": set(EVENT_TYPES), "channels": set(scenario.channels), "messages": set(scenario.messages)}
