"""The embedded TSDB: a write-ahead log, an in-memory head, immutable compressed blocks and a
label index, behind the ``Appender``, ``Querier`` and ``ChangeFeed`` protocols of
``grafana_agent_bridge.storage``.

Write semantics (what the ingest layer reports to remote-write clients):

- Samples of a series must arrive in ascending timestamp order. A sample older than the
  series' newest is rejected with ``"out of order sample"``; one at the same timestamp with
  different value bits with ``"duplicate sample for timestamp"``; one older than the head's
  lower bound (data already cut into a block) with ``"out of bounds"``; one stamped more than
  ``max_future_ms`` (10 min) after the wall clock with ``"too far in the future"``.
- Limits (``StoreOptions``), checked before anything is indexed or kept: a sample that would
  create a series beyond ``max_head_series`` head series is rejected (``storage.max_head_series``);
  a new series whose labels break ``label_limits`` (count, name or value bytes) is rejected
  whole; an exemplar whose labels exceed ``max_exemplar_labels_length`` characters is rejected,
  its sample kept. WAL replay never applies them: what was acknowledged stays.
- An exact duplicate (same timestamp, same value bits, e.g. a retried request, also for an
  older sample still in the head) is accepted and counted in ``accepted_samples`` but not
  stored twice.
- **A partly invalid write keeps its valid samples**: every sample not rejected is stored, the
  rejected ones are listed in ``AppendResult.rejections`` (the API answers 400 naming them):
  the first 100 one by one, the rest as one summary per kind carrying its ``count``.
  This differs from Prometheus, which rolls the whole request back; keeping the valid part
  means a sender that drops the request on 400 loses only the invalid samples.
- ``append`` returns after the accepted data is written to the WAL (``os.write``), so it
  survives ``kill -9``; fsync happens when a WAL segment is closed and on ``close()``.
- On a write error (disk full) nothing of the write is kept and ``StorageFullError`` is
  raised; after ``close()`` appends raise ``ShuttingDownError``.

Layout of the data directory: ``wal/`` (segments), ``blocks/<id>/`` (immutable blocks),
``feed/`` (consumer positions, and what retention took from consumers), ``head.json`` (the
head's lower bound) and ``lock`` (one process at a time: a second ``Store.open`` raises
``StoreLockedError``). Damage found on open (torn or corrupt WAL tail, corrupt block) is
repaired or set aside, logged and counted in ``Store.stats()``, never fatal. Data in a newer
format (a WAL record type or block version this version does not know, after a downgrade) is
not damage: ``Store.open`` raises ``NewerFormatError`` and changes nothing.

``Store`` (``db.py``) is a facade over parts that own their state: the WAL (``wlog.py``), the
head (``head.py``, rules in ``appender.py``), blocks and compaction (``blockset.py``,
``compact.py``), the change feed (``feed.py``) and the querier (``querier.py``); ``docs/store.md``
maps them.
"""

from .db import Store, StoreStats
from .errors import NewerFormatError
from .lockfile import StoreLockedError
from .options import StoreOptions

__all__ = ["NewerFormatError", "Store", "StoreLockedError", "StoreOptions", "StoreStats"]
