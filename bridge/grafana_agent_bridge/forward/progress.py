"""A target's delivery progress: its feed consumer, the progress mark file, the resume point.

The feed's acknowledged position is durable but coarse (written about once a second); the mark
is a small file rewritten at every batch boundary (no fsync: it has to survive ``kill -9``, not
power loss) that says which batch was in flight, so a restart can re-send exactly that batch
(see ``sender.py``) instead of everything since the last acknowledgement.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..config import ForwardTarget, derived_target_name, legacy_target_name
from ..storage import FeedPosition, ForwardSource

log = logging.getLogger(__name__)


def consumer_name(target: ForwardTarget) -> str:
    """The feed consumer of a target: stable across restarts and reordering of targets."""
    return _consumer_of(target.name)


def _consumer_of(name: str) -> str:
    return f"forward-{name}"


@dataclass(frozen=True)
class Mark:
    """Delivery progress of a target as of the last batch boundary (see ``sender.py``)."""

    delivered: FeedPosition
    in_flight_end: FeedPosition
    in_flight_samples: int
    shards: int
    in_flight_exemplars: int = 0
    """Last, so a mark written before exemplars were forwarded (six fields) still parses."""

    def dump(self) -> str:
        d, f = self.delivered, self.in_flight_end
        fields = (d.segment, d.offset, f.segment, f.offset, self.in_flight_samples, self.shards)
        return " ".join(map(str, (*fields, self.in_flight_exemplars))) + "\n"

    @staticmethod
    def parse(text: str) -> Mark:
        values = [int(x) for x in text.split()]
        if len(values) == 6:
            values.append(0)
        ds, do, fs, fo, k, n, e = values
        return Mark(FeedPosition(ds, do), FeedPosition(fs, fo), k, n, e)


class ProgressFile:
    """One target's mark file (``<state_dir>/<consumer>.progress``); without a state directory
    nothing is recorded and a restart resumes from the last acknowledgement."""

    def __init__(self, state_dir: Path | None, consumer: str, label: str) -> None:
        self.path = state_dir / f"{consumer}.progress" if state_dir else None
        self._label = label

    def read(self) -> Mark | None:
        if self.path is None:
            return None
        try:
            return Mark.parse(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            log.warning("forward %s: ignoring unreadable %s: %s", self._label, self.path, e)
            return None

    def write(self, mark: Mark) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(mark.dump())
            os.replace(tmp, self.path)
        except OSError as e:
            log.warning("forward %s: could not record progress in %s: %s", self._label, tmp, e)

    def resume_point(self, acked: FeedPosition, shards: int) -> tuple[FeedPosition, Mark | None]:
        """Where to start reading, and the batch that was in flight at an unclean stop."""
        mark = self.read()
        if mark is None or mark.delivered < acked:
            return acked, None
        if mark.shards != shards:
            log.warning(
                "forward %s: the shard count changed since the last run; resuming from the "
                "last acknowledged position (some samples will be sent twice)",
                self._label,
            )
            return acked, None
        if not (mark.delivered < mark.in_flight_end):
            return mark.delivered, None
        log.info(
            "forward %s: resuming after an unclean stop: re-sending the %d samples that were "
            "in flight (the upstream may already have them)",
            self._label,
            mark.in_flight_samples,
        )
        return mark.delivered, mark

    def migrate_legacy_state(self, feed: ForwardSource, target: ForwardTarget) -> None:
        """Rename state saved under the name earlier versions derived from the URL, which
        included its credentials (and put them in file names), to the current name, keeping
        the cursor: forwarding carries on where it was, nothing is re-sent or lost."""
        url = target.url
        legacy = legacy_target_name(url)
        if legacy == target.name or target.name != derived_target_name(url):
            return  # nothing to migrate, or an explicit name (a user's own choice)
        old = _consumer_of(legacy)
        moved = False
        if self.path is not None:
            old_mark = self.path.with_name(f"{old}.progress")
            try:
                if self.path.exists():
                    old_mark.unlink(missing_ok=True)  # a rename cut short by a crash
                elif old_mark.exists():
                    os.replace(old_mark, self.path)
                    moved = True
            except OSError as e:
                log.warning(
                    "forward %s: could not rename the old progress file: %s", self._label, e
                )
        if feed.rename_consumer(old, consumer_name(target)):
            moved = True
        if moved:
            log.info(
                "forward %s: renamed the saved position from the old name, which contained "
                "the URL's credentials",
                self._label,
            )
