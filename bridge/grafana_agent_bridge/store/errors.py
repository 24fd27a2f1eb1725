"""Errors that stop the store from opening instead of being repaired.

Damage (a torn WAL tail, a corrupt block) is repaired or set aside on open. Data written by a
*newer* bridge is not damage: after ``snap revert`` to an older revision, a WAL record type or
block format this version does not know would otherwise look corrupt and be cut off or set
aside, losing what the newer revision had acknowledged. The store refuses to open instead and
leaves every file as it is; refreshing to the newer revision again reads it all.
"""

from __future__ import annotations


class NewerFormatError(Exception):
    """The data directory holds data in a format newer than this version writes."""

    def __init__(self, what: str, where: str = "the data directory") -> None:
        self.what = what
        super().__init__(
            f"{where} holds {what}, written by a newer grafana-agent-bridge: this version "
            "cannot read it and leaves it untouched. Refresh to the newer revision again "
            "(or move the data directory aside to start empty)"
        )

    def at(self, where: str) -> NewerFormatError:
        """The same error, saying which file."""
        return NewerFormatError(self.what, where)
