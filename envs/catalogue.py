"""The action catalogue: action 0 is no contact, then one action per (channel, message) pair."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journeylab.envs.scenario import MESSAGE_TYPES, Scenario

NO_CONTACT = 0


@dataclass(frozen=True)
class ActionCatalogue:
    """Index ↔ (channel, message) mapping, in the scenario's channel order then message order."""

    channels: tuple[str, ...]
    messages: tuple[str, ...]
    message_types: tuple[str, ...]
    """Message type of each message (same order as ``messages``)."""
    type_names: tuple[str, ...]
    """Distinct message types present in the scenario, in canonical order."""
    action_channel: np.ndarray
    """Channel index of each action; -1 for no contact. Shape (A,)."""
    action_message: np.ndarray
    """Message index of each action; -1 for no contact. Shape (A,)."""

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> ActionCatalogue:
        channels = tuple(scenario.channels)
        messages = tuple(scenario.messages)
        pairs = [(channels.index(channel), messages.index(name)) for channel, name in scenario.contact_actions()]
        types = tuple(scenario.messages[m].type for m in messages)
        return cls(
            channels=channels,
            messages=messages,
            message_types=types,
            type_names=tuple(t for t in MESSAGE_TYPES if t in types),
            action_channel=np.array([-1] + [c for c, _ in pairs], dtype=np.int64),
            action_message=np.array([-1] + [m for _, m in pairs], dtype=np.int64),
        )

    @property
    def size(self) -> int:
        return int(self.action_channel.shape[0])

    def name(self, action: int) -> str:
        """``"no_contact"`` or ``"channel:message"``."""
        if action == NO_CONTACT:
            return "no_contact"
        c, m = self.action_channel[action], self.action_message[action]
        return f"{self.channels[c]}:{self.messages[m]}"

    def names(self) -> list[str]:
        return [self.name(a) for a in range(self.size)]

    def index(self, channel: str, message: str) -> int:
        """The action index of a (channel, message) pair; ``KeyError`` naming it if absent."""
        for action in range(1, self.size):
            if self.name(action) == f"{channel}:{message}":
                return action
        raise KeyError(f"action '{channel}:{message}' is not in the catalogue {self.names()[1:]}")

    @property
    def message_type_index(self) -> np.ndarray:
        """For each message, the index of its type in ``type_names``. Shape (M,)."""
        return np.array([self.type_names.index(t) for t in self.message_types], dtype=np.int64)
