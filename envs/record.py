"""The golden record: what a business observably knows about each customer.

Only this record is encoded into observations and checked by the contact rules; the hidden
customer state (affinity, fatigue, satisfaction, intent, true lifecycle stage) never enters it.
Every field is derivable from an event history (contacts with their outcomes, visits,
purchases, unsubscribes), so a decision service can rebuild it from a customer's history and
apply exactly the same features and rules as the simulator.

Days are stored as the day of the last event (``NEVER`` when there was none) rather than as
counters, so advancing the calendar costs nothing; "days since" is computed on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

NEVER = -100_000
"""Day stored for an event that never happened; far enough back to pass every rule."""
ACTIVITY_HALF_LIFE_DAYS = 30.0
"""Half-life of the exponentially weighted contact, engagement and purchase counts."""
ACTIVITY_DECAY = np.float32(0.5 ** (1.0 / ACTIVITY_HALF_LIFE_DAYS))


@dataclass
class GoldenRecord:
    """Observable record of N customers over C channels and T message types.

    Per-channel fields are channel-major, (C, N): every pass over them is contiguous.
    """

    today: np.ndarray  # (N,) int32: the customer's current day
    alive: np.ndarray  # (N,) bool: still a customer
    segment: np.ndarray  # (N,) int64
    value_tier: np.ndarray  # (N,) int64: 0 low, 1 mid, 2 high
    tenure: np.ndarray  # (N,) int32: days since the customer joined
    onboarding_days: np.ndarray  # (N,) int32: length of the customer's onboarding programme
    consent: np.ndarray  # (C, N) bool
    contact_days: np.ndarray  # (K, C, N) int32: last K contact days per channel, newest first (newest only at cap 1)
    any_contact_days: np.ndarray  # (G, N) int32: days of the last G contacts on any channel
    last_engaged_day: np.ndarray  # (C, N) int32
    ignored_streak: np.ndarray  # (C, N) int32: consecutive ignored contacts
    suppressed_until: np.ndarray  # (C, N) int32: channel paused while today < this day
    contacts_ewm: np.ndarray  # (C, N) float32: decayed count of contacts
    engagements_ewm: np.ndarray  # (C, N) float32: decayed count of engagements
    last_message_day: np.ndarray  # (T, N) int32: last contact carrying each message type
    last_purchase_day: np.ndarray  # (N,) int32
    last_activity_day: np.ndarray  # (N,) int32: visit, engagement or purchase
    purchases_ewm: np.ndarray  # (N,) float32
    spend_ewm: np.ndarray  # (N,) float32

    @classmethod
    def empty(cls, n: int, channels: int, message_types: int, history: int, any_history: int) -> GoldenRecord:
        """A record of ``n`` customers with no history; ``history``/``any_history`` size the rings."""
        never2 = np.full((channels, n), NEVER, dtype=np.int32)
        return cls(
            today=np.zeros(n, np.int32),
            alive=np.ones(n, bool),
            segment=np.zeros(n, np.int64),
            value_tier=np.zeros(n, np.int64),
            tenure=np.zeros(n, np.int32),
            onboarding_days=np.zeros(n, np.int32),
            consent=np.ones((channels, n), bool),
            contact_days=np.full((history, channels, n), NEVER, dtype=np.int32),
            any_contact_days=np.full((any_history, n), NEVER, dtype=np.int32),
            last_engaged_day=never2.copy(),
            ignored_streak=np.zeros((channels, n), np.int32),
            suppressed_until=never2.copy(),
            contacts_ewm=np.zeros((channels, n), np.float32),
            engagements_ewm=np.zeros((channels, n), np.float32),
            last_message_day=np.full((message_types, n), NEVER, dtype=np.int32),
            last_purchase_day=np.full(n, NEVER, dtype=np.int32),
            last_activity_day=np.full(n, NEVER, dtype=np.int32),
            purchases_ewm=np.zeros(n, np.float32),
            spend_ewm=np.zeros(n, np.float32),
        )

    @property
    def size(self) -> int:
        return int(self.today.shape[0])

    def clear_rows(self, rows: np.ndarray) -> None:
        """Forget the history of ``rows`` (a new customer takes their place)."""
        blank = GoldenRecord.empty(
            len(rows),
            self.consent.shape[0],
            self.last_message_day.shape[0],
            self.contact_days.shape[0],
            self.any_contact_days.shape[0],
        )
        for field in fields(self):
            getattr(self, field.name)[..., rows] = getattr(blank, field.name)

    def advance_day(self) -> None:
        """Move every customer to the next day: decay the weighted counts, age tenure."""
        self.today += 1
        self.tenure += 1
        for counts in (self.contacts_ewm, self.engagements_ewm, self.purchases_ewm, self.spend_ewm):
            counts *= ACTIVITY_DECAY

    def log_contacts(
        self,
        rows: np.ndarray,
        channel: np.ndarray,
        message_type: np.ndarray,
        engaged: np.ndarray,
        suppress_after: int,
        pause_days: int,
        history_depth: np.ndarray,
    ) -> None:
        """Record contacts of ``rows`` on ``channel`` today, with whether each was engaged with.

        ``history_depth[c]`` is how many past contact days channel c's cap needs kept.
        ``suppress_after`` consecutive ignored contacts pause the channel for ``pause_days``
        (0 disables suppression). Indexing is flat (channel · N + row): one-dimensional fancy
        indexing is several times faster than two-dimensional on the hot path.
        """
        day = self.today[rows]
        cell = channel * self.size + rows
        self._push_contact_day(cell, day, channel, history_depth)
        for newer, older in zip(self.any_contact_days[-2::-1], self.any_contact_days[:0:-1], strict=True):
            older[rows] = newer[rows]
        self.any_contact_days[0, rows] = day
        self.last_message_day.reshape(-1)[message_type * self.size + rows] = day
        self.contacts_ewm.reshape(-1)[cell] += 1.0
        self.engagements_ewm.reshape(-1)[cell] += engaged
        streak = (self.ignored_streak.reshape(-1)[cell] + 1) * ~engaged
        if suppress_after > 0:
            paused = streak >= suppress_after
            suppressed = self.suppressed_until.reshape(-1)
            suppressed[cell[paused]] = day[paused] + 1 + pause_days
            streak[paused] = 0
        self.ignored_streak.reshape(-1)[cell] = streak
        self.last_engaged_day.reshape(-1)[cell[engaged]] = day[engaged]
        self.last_activity_day[rows[engaged]] = day[engaged]

    def _push_contact_day(
        self, cell: np.ndarray, day: np.ndarray, channel: np.ndarray, history_depth: np.ndarray
    ) -> None:
        """Shift each contacted channel's ring of contact days and put today first."""
        if len(self.contact_days) > 1:
            deep = history_depth[channel] > 1  # a cap of one contact only ever reads the newest day
            shifted = cell[deep]
            for newer, older in zip(self.contact_days[-2::-1], self.contact_days[:0:-1], strict=True):
                older.reshape(-1)[shifted] = newer.reshape(-1)[shifted]
        self.contact_days[0].reshape(-1)[cell] = day

    def log_purchases(self, rows: np.ndarray, spend: np.ndarray) -> None:
        day = self.today[rows]
        self.last_purchase_day[rows] = day
        self.last_activity_day[rows] = day
        self.purchases_ewm[rows] += 1.0
        self.spend_ewm[rows] += spend.astype(np.float32)

    def log_visits(self, rows: np.ndarray) -> None:
        self.last_activity_day[rows] = self.today[rows]

    def log_unsubscribes(self, rows: np.ndarray, channel: np.ndarray) -> None:
        self.consent.reshape(-1)[channel * self.size + rows] = False
