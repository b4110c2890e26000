"""Real-time next-best-action decisions from an exported policy artifact.

``DecisionEngine.load(DIR)`` verifies the artifact (``journeylab.serving.artifact``), rebuilds the scenario's
action catalogue and contact rules from the manifest, and checks that ``journeylab.envs.features`` encodes
exactly the manifest's feature spec. A decision then runs the simulator's own code:

request → ``journeylab.envs.record_builder`` golden record → ``journeylab.envs.rules`` checks → ``journeylab.envs.features``
observation → the ONNX policy's masked logits → the best allowed action. One request (``decide``)
takes ``journeylab.envs.one_customer``, the same rules and features computed with Python scalars
(tested equal bit for bit), because ~150 numpy calls on arrays of one cost far more than the model.

Masked actions get −∞ before the choice, so a blocked action is never returned whatever the model
prefers. Greedy by default; with ``epsilon`` > 0 a uniformly random allowed action replaces the
greedy one with probability epsilon, and every decision records the propensity of the action it
chose, (1 − ε)·[greedy] + ε / #allowed, for off-policy evaluation. Imports numpy, onnxruntime and
pydantic only.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from journeylab.envs.catalogue import ActionCatalogue
from journeylab.envs.features import encode, feature_spec
from journeylab.envs.one_customer import OneCustomerView
from journeylab.envs.record import GoldenRecord
from journeylab.envs.record_builder import build_record
from journeylab.envs.rules import RULE_NAMES, ContactRules, mask_from_channels, rule_passes
from journeylab.envs.scenario import Scenario
from journeylab.serving.artifact import ArtifactError, PolicyArtifact
from journeylab.serving.columns import RequestColumns, Vocabulary, one_customer, request_columns
from journeylab.serving.explanations import FeatureGroups, explain
from journeylab.serving.requests import DecisionRequestBase, RequestModels


def policy_probabilities(masked_logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of logits with blocked actions at −∞: 0 where blocked."""
    scores = np.exp(masked_logits - masked_logits.max(axis=-1, keepdims=True))
    scores /= scores.sum(axis=-1, keepdims=True)
    return scores


@dataclass
class Decision:
    """One decision: the action (channel and message, or none), why, and how it was chosen.

    ``allowed`` and ``blocked`` are built on first read from the scores and rule verdicts the
    decision keeps, so a caller that only needs the action does not pay for them. A value: derive
    another with ``dataclasses.replace`` (not frozen, because a frozen dataclass's constructor costs
    1.3 µs more, 4% of a real-time decision)."""

    decision_id: str
    customer_id: str
    day: int
    channel: str | None
    message: str | None
    action_index: int
    propensity: float
    explored: bool
    model: dict[str, str]
    explanation: list[dict[str, Any]] | None = None
    """On request: the features that moved the chosen action's score most (``journeylab.serving.explanations``)."""
    arm: str | None = None
    """The customer's holdout arm when the service runs arms (``journeylab.serving.arms``)."""
    observation: np.ndarray | None = field(default=None, repr=False, compare=False)
    """(F,) what the policy saw: logged as the decision's context (``journeylab.serving.contexts``)."""
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)
    """(A,) the actions the rules allowed: logged with the context."""
    probabilities: np.ndarray | None = field(default=None, repr=False, compare=False)
    """(A,) the policy's probability of each action, 0 where blocked (or ``logits`` to derive them from)."""
    logits: np.ndarray | None = field(default=None, repr=False, compare=False)
    """(A,) the policy's logits (the probabilities are derived from them with blocked actions at −∞)."""
    rule_passes: Any = field(default=None, repr=False, compare=False)
    """(R, C) each rule's verdict per channel, rules in ``RULE_NAMES`` order."""
    engine: DecisionEngine | None = field(default=None, repr=False, compare=False)

    @cached_property
    def scores(self) -> np.ndarray:
        """(A,) the policy's probability of each action, 0 where blocked."""
        if self.probabilities is not None:
            return self.probabilities
        if self.logits is None or self.mask is None:
            raise ValueError("this decision keeps neither probabilities nor logits and mask")
        return policy_probabilities(np.where(self.mask, self.logits, -np.inf))

    @cached_property
    def allowed(self) -> list[dict[str, Any]]:
        """Every allowed action with its score: the policy's probability of choosing it."""
        engine, scores = self._engine(), self.scores.tolist()
        assert self.mask is not None
        return [engine.scored(a, scores[a]) for a in np.flatnonzero(self.mask).tolist()]

    @cached_property
    def blocked(self) -> list[dict[str, Any]]:
        """Every blocked action with the contact rules that block it."""
        engine, passes = self._engine(), self.rule_passes
        assert self.mask is not None
        verdicts = passes.tolist() if isinstance(passes, np.ndarray) else passes  # Python lists index fast
        return [engine.blocked(a, verdicts) for a in np.flatnonzero(~self.mask).tolist()]

    def _engine(self) -> DecisionEngine:
        if self.engine is None:
            raise ValueError("this decision keeps no engine: its allowed and blocked actions are unknown")
        return self.engine

    def to_dict(self) -> dict[str, Any]:
        answer = {
            "decision_id": self.decision_id,
            "customer_id": self.customer_id,
            "day": self.day,
            "action": {"index": self.action_index, "channel": self.channel, "message": self.message},
            "propensity": self.propensity,
            "explored": self.explored,
            "model": self.model,
            "allowed": self.allowed,
            "blocked": self.blocked,
        }
        if self.explanation is not None:
            answer["explanation"] = self.explanation
        if self.arm is not None:
            answer["arm"] = self.arm
        return answer


@dataclass
class DecisionBatch:
    """Decisions for a batch, as arrays; ``decisions()`` materialises the per-customer responses."""

    columns: RequestColumns
    action: np.ndarray  # (N,) chosen action index
    propensity: np.ndarray  # (N,)
    explored: np.ndarray  # (N,) bool
    scores: np.ndarray  # (N, A) policy probabilities, 0 where blocked
    mask: np.ndarray  # (N, A) bool
    rule_passes: np.ndarray  # (R, C, N) bool: each rule's verdict per channel
    id_prefix: str
    engine: DecisionEngine
    observations: np.ndarray | None = None  # (N, F): what the policy saw, for explanations

    @property
    def size(self) -> int:
        return int(self.action.shape[0])

    def decision(self, i: int) -> Decision:
        engine, action = self.engine, int(self.action[i])
        channel, message = engine.actions[action]
        return Decision(
            decision_id=f"{self.id_prefix}{i:08x}",
            customer_id=self.columns.customer_id[i],
            day=int(self.columns.customers.today[i]),
            channel=channel,
            message=message,
            action_index=action,
            propensity=float(self.propensity[i]),
            explored=bool(self.explored[i]),
            model=engine.model,
            explanation=self._explanation(i, action),
            observation=None if self.observations is None else self.observations[i],
            mask=self.mask[i],
            probabilities=self.scores[i],
            rule_passes=self.rule_passes[:, :, i],
            engine=engine,
        )

    def _explanation(self, i: int, action: int) -> list[dict[str, Any]] | None:
        wanted = self.columns.explain
        if wanted is None or not wanted[i] or self.observations is None:
            return None
        return self.engine.explain(self.observations[i], self.mask[i], action)

    def decisions(self) -> list[Decision]:
        return [self.decision(i) for i in range(self.size)]

    def to_frame(self) -> Any:
        """A pandas DataFrame, one row per decision, built column by column (``journeylab.serving.frames.batch_frame``)."""
        from journeylab.serving.frames import batch_frame

        return batch_frame(self)


class DecisionEngine:
    """Loads a verified artifact once; decides for one request or a batch."""

    def __init__(self, artifact: PolicyArtifact, epsilon: float = 0.0, seed: int | None = None) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon: expected a probability in [0, 1], got {epsilon}")
        self.artifact, self.epsilon = artifact, epsilon
        manifest = artifact.manifest
        self.scenario = Scenario.model_validate(manifest["scenario"])
        self.catalogue = ActionCatalogue.from_scenario(self.scenario)
        self.rules = ContactRules.from_scenario(self.scenario)
        self.segments = len(self.scenario.segments)
        spec = feature_spec(self.catalogue, list(self.scenario.segments)).to_json()
        if spec != manifest["features"]:
            raise ArtifactError("manifest.json: 'features' differ from this version's feature encoder")
        self.model = {"name": str(manifest["model"]["name"]), "version": str(manifest["model"]["version"])}
        self.models = RequestModels.for_manifest(manifest)
        self.vocabulary = Vocabulary(
            channel={c: i for i, c in enumerate(self.catalogue.channels)},
            message_type=dict(zip(self.catalogue.messages, self.catalogue.message_type_index.tolist(), strict=True)),
            segment={s: i for i, s in enumerate(self.scenario.segments)},
        )
        self.actions: list[tuple[str | None, str | None]] = [(None, None)] + [
            (self.catalogue.channels[c], self.catalogue.messages[m])
            for c, m in zip(self.catalogue.action_channel[1:], self.catalogue.action_message[1:], strict=True)
        ]
        self.rng = np.random.default_rng(seed)
        self._action_channel: list[int] = self.catalogue.action_channel.tolist()
        self.view = OneCustomerView(
            self.rules, len(self.catalogue.channels), len(self.catalogue.type_names), self.segments
        )
        self._masks: dict[tuple[bool, ...], tuple[np.ndarray, np.ndarray]] = {}
        self._id_prefix, self._decisions = uuid.uuid4().hex[:16], itertools.count()
        self.feature_groups = FeatureGroups.from_spec(manifest["features"])
        example = request_columns([self.models.validate_request(self.example_request())], self.vocabulary)
        self.reference_observation = self.observe(example)[0][0].copy()
        """The customer explanations compare with: the example request, encoded like any request."""

    @classmethod
    def load(
        cls, root: str | Path, epsilon: float = 0.0, seed: int | None = None, manifest_sha256: str | None = None
    ) -> DecisionEngine:
        return cls(PolicyArtifact.load(root, manifest_sha256), epsilon, seed)

    # -- explanations -------------------------------------------------------------------------

    def scored(self, action: int, score: float) -> dict[str, Any]:
        channel, message = self.actions[action]
        return {"channel": channel, "message": message, "score": score}

    def blocked(self, action: int, passes: Any) -> dict[str, Any]:
        """``passes``: (R, C) rule verdicts of one customer (an array, or a list of per-rule lists)."""
        channel, message = self.actions[action]
        column = self._action_channel[action]
        return {
            "channel": channel,
            "message": message,
            "rules": [n for n, verdicts in zip(RULE_NAMES, passes, strict=True) if not verdicts[column]],
        }

    def explain(self, observation: np.ndarray, mask: np.ndarray, action: int) -> list[dict[str, Any]]:
        """The features that moved this decision most, by occlusion against the reference customer."""
        return explain(self.artifact.logits, self.feature_groups, observation, self.reference_observation, mask, action)

    # -- deciding -----------------------------------------------------------------------------

    def decide(self, request: DecisionRequestBase | dict[str, Any]) -> Decision:
        """The decision for one request (a validated model or a dict, validated here).

        The real-time path: the rules and features of ``journeylab.envs.one_customer`` (scalars,
        equal to the batch path's bit for bit), one ONNX call, the same choice as a batch of one."""
        request = self.models.validate_request(request)
        customer = one_customer(request, self.vocabulary)
        observations, allowed_channels, passes = self.view.observe(customer)
        mask, mask_feed = self._action_mask(allowed_channels)
        logits, observation = self.artifact.logits(observations, mask_feed)[0], observations[0]
        action, propensity, explored = self._choose_one(logits, mask)
        channel, message = self.actions[action]
        return Decision(
            decision_id=self._decision_id(),
            customer_id=request.customer_id,
            day=customer.today,
            channel=channel,
            message=message,
            action_index=action,
            propensity=propensity,
            explored=explored,
            model=self.model,
            explanation=self.explain(observation, mask, action) if request.explain else None,
            observation=observation,
            mask=mask,
            logits=logits,
            rule_passes=passes,
            engine=self,
        )

    def _decision_id(self) -> str:
        """A fresh 24-hex-digit id, ``decide_batch``'s format: this engine's random prefix and a count."""
        count = next(self._decisions)
        if count >= 1 << 32:  # the count has 8 hex digits: start a new prefix
            self._id_prefix, self._decisions = uuid.uuid4().hex[:16], itertools.count(1)
            count = 0
        return f"{self._id_prefix}{count:08x}"

    def _action_mask(self, allowed_channels: list[bool]) -> tuple[np.ndarray, np.ndarray]:
        """(A,) bool action mask and its (1, A) float32 model input, for channels allowed (cached: 2^C of them)."""
        key = tuple(allowed_channels)
        masks = self._masks.get(key)
        if masks is None:
            mask = mask_from_channels(np.array(key, bool)[:, None], self.catalogue)[0].copy()
            mask.flags.writeable = False
            masks = self._masks[key] = (mask, mask[None].astype(np.float32))
        return masks

    def decide_batch(self, requests: Any) -> DecisionBatch:
        """Decisions for a sequence of requests (models or dicts), or a pandas DataFrame of them."""
        if hasattr(requests, "to_dict") and hasattr(requests, "columns"):
            from journeylab.serving.frames import frame_requests

            requests = frame_requests(requests)
        validated = [self.models.validate_request(r) for r in requests]
        return self.decide_columns(request_columns(validated, self.vocabulary))

    def observe(self, columns: RequestColumns) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The simulator's view of a batch: observations (N, F), action mask (N, A), rule verdicts (R, C, N)."""
        record = build_record(
            self.rules, len(self.catalogue.type_names), columns.customers, columns.contacts, columns.activity
        )
        return self.observe_record(record)

    def observe_record(self, record: GoldenRecord) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``observe`` for golden records already built (a whole base rebuilt from its event log)."""
        passes = rule_passes(record, self.rules)
        allowed_channels = passes.all(axis=0) & record.alive
        observations = encode(record, self.rules, self.segments, allowed=allowed_channels)
        return observations, mask_from_channels(allowed_channels, self.catalogue), passes

    def decide_columns(self, columns: RequestColumns) -> DecisionBatch:
        """The vectorised core: records, rules, features, policy, choice."""
        observations, mask, passes = self.observe(columns)
        logits = self.artifact.logits(observations, mask)
        logits = np.where(mask, logits, -np.inf)  # never serve a blocked action, whatever the model says
        scores = policy_probabilities(logits)
        action, propensity, explored = self._choose(logits, mask)
        return DecisionBatch(
            columns, action, propensity, explored, scores, mask, passes, uuid.uuid4().hex[:16], self, observations
        )

    def masked_logits(self, record: GoldenRecord) -> tuple[np.ndarray, np.ndarray]:
        """(N, A) the policy's logits with blocked actions at −∞, and the (N, A) action mask."""
        observations, mask, _ = self.observe_record(record)
        return np.where(mask, self.artifact.logits(observations, mask), -np.inf), mask

    def choose_keyed(
        self, logits: np.ndarray, mask: np.ndarray, explore: np.ndarray, pick: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(action, propensity, explored) like ``_choose``, from given uniforms ``explore`` and ``pick``
        (keyed by customer and day, so any split of a batch makes the same choices)."""
        greedy = logits.argmax(axis=1)
        n = greedy.shape[0]
        if self.epsilon == 0.0:
            return greedy, np.ones(n), np.zeros(n, bool)
        count = mask.sum(axis=1)
        explored = explore < self.epsilon
        nth = np.minimum((pick * count).astype(np.int64), count - 1)
        uniform = np.argmax(np.cumsum(mask, axis=1) > nth[:, None], axis=1)
        action = np.where(explored, uniform, greedy)
        propensity = (1.0 - self.epsilon) * (action == greedy) + self.epsilon / count
        return action, propensity, explored

    def _choose_one(self, logits: np.ndarray, mask: np.ndarray) -> tuple[int, float, bool]:
        """``_choose`` for one customer's (A,) logits as the model gave them: the same draws as a batch of one.

        The model's favourite is served as it is when the rules allow it (masking the others could
        not change the choice); otherwise, or when exploring, blocked actions get −∞ first."""
        if self.epsilon == 0.0:
            favourite = int(logits.argmax())
            if mask[favourite]:
                return favourite, 1.0, False
            return int(np.where(mask, logits, -np.inf).argmax()), 1.0, False
        action, propensity, explored = self._choose(np.where(mask, logits, -np.inf)[None], mask[None])
        return int(action[0]), float(propensity[0]), bool(explored[0])

    def _choose(self, logits: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        greedy = logits.argmax(axis=1)
        n = greedy.shape[0]
        if self.epsilon == 0.0:
            return greedy, np.ones(n), np.zeros(n, bool)
        count = mask.sum(axis=1)
        explored = self.rng.random(n) < self.epsilon
        uniform = np.where(mask, self.rng.random(mask.shape), -1.0).argmax(axis=1)
        action = np.where(explored, uniform, greedy)
        propensity = (1.0 - self.epsilon) * (action == greedy) + self.epsilon / count
        return action, propensity, explored

    # -- examples -----------------------------------------------------------------------------

    def example_request(self) -> dict[str, Any]:
        """A valid request for this artifact (for docs, smoke tests and benchmarks)."""
        channel, message = self.actions[1]
        today = 400
        return {
            "customer_id": "example-0001",
            "today": today,
            "segment": next(iter(self.scenario.segments)),
            "value_tier": 1,
            "tenure_days": 365,
            "onboarding_days": 30,
            "last_purchase_day": today - 20,
            "last_activity_day": today - 6,
            "purchase_frequency": 0.8,
            "spend": 45.0,
            "consent": dict.fromkeys(self.catalogue.channels, True),
            "history": [
                {"day": today - 9, "channel": channel, "message": message, "outcome": "delivered"},
                {"day": today - 6, "channel": channel, "message": message, "outcome": "opened"},
            ],
        }
