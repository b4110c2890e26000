"""The one family of errors a user can fix: bad input, named where it is wrong.

Every check at the door — a scenario key, a config override, a log's column, a run id, an artifact's
manifest, a policy spec — raises an ``InputError`` whose message names the key, field, file or row
and what was expected. The command line turns any of them into exit status 2 with that message
(``journeylab.experiments.cli``), the decision service into a 4xx; nothing is written before the
check. Programming errors stay ordinary exceptions, so they are never mistaken for bad input.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input that the user can correct; the message names what and where."""


class ConfigError(InputError):
    """A configuration file or ``--set`` override is invalid; the message names every bad key."""
