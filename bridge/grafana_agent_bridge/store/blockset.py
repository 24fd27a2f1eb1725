"""The loaded blocks of a store, oldest first: loading (and setting aside damaged ones) on
open, adding a freshly cut block, deleting blocks that retention gave up. Compaction changes
the set and the querier reads it, both under the store's lock; a ``Block`` itself is immutable
and is read without the lock."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from ..labels import Labels
from .block import Block, CorruptBlockError, GroupCache
from .progress import OpenProgress
from .stats import StoreStats

log = logging.getLogger(__name__)

Binder = tuple[Callable[[Labels], int], Callable[[int], Labels]]
"""The index's (labels -> id, id -> labels), which blocks map their own series ids through."""


class BlockSet:
    def __init__(self, blocks_dir: Path, cache_bytes: int, stats: StoreStats) -> None:
        self.dir = blocks_dir
        self.blocks: list[Block] = []
        self._cache = GroupCache(cache_bytes)
        self._stats = stats

    def __iter__(self) -> Iterator[Block]:
        return iter(self.blocks)

    def __len__(self) -> int:
        return len(self.blocks)

    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.blocks)

    def samples(self) -> int:
        return sum(b.samples for b in self.blocks)

    def newest_end(self, default: int) -> int:
        return max([default, *(b.maxt for b in self.blocks)])

    def overlapping(self, mint: int, maxt: int) -> list[Block]:
        return [b for b in self.blocks if b.overlaps(mint, maxt)]

    def load(self, progress: OpenProgress) -> None:
        entries = sorted(self.dir.iterdir())
        progress.start("blocks", len(entries))
        for done, p in enumerate(entries):
            progress.advance(done)
            if p.name.endswith(".tmp"):
                log.warning("removing unfinished block %s", p)
                shutil.rmtree(p, ignore_errors=True)
                continue
            if not p.is_dir() or p.name.endswith(".corrupt"):
                continue
            try:
                block = Block(p, self._cache)
            except CorruptBlockError as e:
                self._stats.blocks_corrupt += 1
                aside = p.with_name(p.name + ".corrupt")
                log.error("block %s is corrupt (%s); set aside as %s", p, e, aside.name)
                try:
                    p.rename(aside)
                except OSError:
                    log.exception("could not set aside %s", p)
                continue
            if block.bad_groups:
                self._stats.blocks_corrupt += 1
            self.blocks.append(block)
        self.blocks.sort(key=lambda b: (b.mint, b.maxt))
        progress.finish()

    def bind(self, binder: Binder) -> None:
        for b in self.blocks:
            b.bind(*binder)

    def add(self, path: Path, binder: Binder) -> None:
        block = Block(path, self._cache)
        block.bind(*binder)
        self.blocks.append(block)
        self.blocks.sort(key=lambda b: (b.mint, b.maxt))

    def delete(self, doomed: list[Block]) -> None:
        gone = {id(b) for b in doomed}
        self.blocks = [b for b in self.blocks if id(b) not in gone]
        for b in doomed:
            log.info("retention: deleting block %s [%d, %d)", b.id, b.mint, b.maxt)
            shutil.rmtree(b.path, ignore_errors=True)
            self._cache.drop_block(b.id)
        self._stats.retention_blocks_deleted += len(doomed)

    def close(self) -> None:
        for b in self.blocks:
            b.close()
