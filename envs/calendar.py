"""The event log's calendar: which day numbers are valid, at every door.

Days are integers; ISO dates count days since ``EPOCH`` (1970-01-01). The decision service refuses
any day it would log outside ``[FIRST_DAY, LAST_DAY]`` (``journeylab.serving.requests``) and
``journeylab.envs.event_log.validate_events`` refuses any row outside it, so what the service
acknowledges, every later reader accepts. Pure standard library: serving imports it.
"""

from __future__ import annotations

import datetime as dt

EPOCH = dt.date(1970, 1, 1)
FIRST_DAY = 0
LAST_DAY = (dt.date.max - EPOCH).days
"""2,932,896: 9999-12-31, the last ISO date a request can name; far past any horizon and well
inside int64, so no day the service logs overflows a reader."""
