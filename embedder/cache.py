"""A persistent, bounded embedding cache: never encode the same text under the same instruction twice.

Vectors are stored in SQLite (``<data_dir>/cache/embeddings.sqlite`` by default) under a key that
is the sha256 of (model key, runtime, instruction, sha256 of the text); the model key includes
the model id, the normalisation and the token limit. A hit returns the stored float32 bytes, so
it is bitwise identical to the vector that was first computed. The least recently used entries
are evicted beyond ``max_entries``. The file survives restarts and may be shared by processes
(SQLite's WAL journal); inside a process one connection is guarded by a lock, so threads can
share a cache.

:class:`CachedEmbedder` wraps any :class:`~embedder.base.Embedder`; the factory
:func:`embedder.make_embedder` applies it when the settings enable it.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from embedder.base import Embedder, EmbedderWrapper, Vectors, check_texts
from embedder.errors import EmbedderError
from embedder.loading import weights_fingerprint

logger = logging.getLogger(__name__)

#: Rows deleted at once when the cache is over its bound (amortises the eviction query).
_EVICT_SLACK = 0.05


class CacheError(EmbedderError):
    """The embedding cache file cannot be opened or written."""


def text_key(model_key: str, runtime: str, instruction: str | None, text: str) -> bytes:
    """The cache key of one text: sha256 over model key, runtime, instruction and the text's sha256.

    ``None`` (no instruction) and ``""`` are different instructions.
    """
    text_sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    marker = "\x01" if instruction is None else "\x02" + instruction
    joined = "\x00".join((model_key, runtime, marker, text_sha))
    return hashlib.sha256(joined.encode("utf-8")).digest()


class EmbeddingCache:
    """Vectors by key in one SQLite file, bounded to ``max_entries`` (least recently used out).

    Args:
        path: the SQLite file (its folder is created).
        max_entries: most vectors kept.

    Raises:
        CacheError: the file cannot be opened.
    """

    def __init__(self, path: Path, max_entries: int = 200_000) -> None:
        self.path = Path(path)
        self.max_entries = max_entries
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(self.path), check_same_thread=False, timeout=30.0, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS vectors ("
                " key BLOB PRIMARY KEY, dim INTEGER NOT NULL, vector BLOB NOT NULL, used INTEGER NOT NULL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS vectors_used ON vectors(used)")
            self._count = int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
        except (sqlite3.Error, OSError) as exc:
            raise CacheError(
                f"cannot open the embedding cache {str(self.path)!r}: {exc}; fix: make its folder "
                "writable, set cache.path to another file, or disable it (cache.ingest=false)"
            ) from exc
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, Vectors]:
        """The cached vectors among ``keys`` (marking them recently used)."""
        found: dict[bytes, Vectors] = {}
        if not keys:
            return found
        unique = list(dict.fromkeys(keys))
        now = time.time_ns()
        with self._lock:
            for start in range(0, len(unique), 500):
                part = unique[start : start + 500]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    f"SELECT key, dim, vector FROM vectors WHERE key IN ({marks})",
                    part,
                ).fetchall()
                for key, dim, blob in rows:
                    found[bytes(key)] = np.frombuffer(blob, dtype=np.float32, count=int(dim)).copy()
                if rows:
                    self._db.executemany(
                        "UPDATE vectors SET used = ? WHERE key = ?", [(now, row[0]) for row in rows]
                    )
        self.hits += sum(1 for key in keys if key in found)
        self.misses += sum(1 for key in keys if key not in found)
        return found

    def put_many(self, items: Iterable[tuple[bytes, Vectors]]) -> None:
        """Store vectors (float32) under their keys, then evict beyond ``max_entries``."""
        now = time.time_ns()
        rows = [
            (key, int(vector.shape[0]), np.ascontiguousarray(vector, dtype=np.float32).tobytes(), now)
            for key, vector in items
        ]
        if not rows:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                before = self._db.total_changes
                self._db.executemany(
                    "INSERT OR IGNORE INTO vectors(key, dim, vector, used) VALUES (?, ?, ?, ?)", rows
                )
                self._count += self._db.total_changes - before
                if self._count > self.max_entries:
                    self._count = int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
                    excess = self._count - self.max_entries
                    if excess > 0:
                        excess += int(self.max_entries * _EVICT_SLACK)
                        excess = min(excess, self._count)
                        self._db.execute(
                            "DELETE FROM vectors WHERE key IN "
                            "(SELECT key FROM vectors ORDER BY used ASC LIMIT ?)",
                            (excess,),
                        )
                        self._count -= excess
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise CacheError(f"cannot write the embedding cache {str(self.path)!r}: {exc}") from exc

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()


class CachedEmbedder(EmbedderWrapper):
    """An :class:`~embedder.base.Embedder` that looks texts up in an :class:`EmbeddingCache` first.

    Only the misses reach the wrapped embedder (each distinct text once per call); hits are
    counted in ``stats.cache_hits``. Everything else (``count_tokens``, ``token_budget``, ``model``
    ...) is the wrapped embedder's (see :class:`~embedder.base.EmbedderWrapper`).

    Args:
        inner: the embedder that computes vectors.
        cache: where vectors are kept.
        runtime: the inference runtime of ``inner`` (part of the key).
    """

    def __init__(self, inner: Embedder, cache: EmbeddingCache, runtime: str = "torch") -> None:
        super().__init__(inner)
        self.cache = cache
        self.runtime = runtime
        model = inner.model_id
        if Path(model).is_dir():  # a local folder can be retrained in place: key its weights too
            model += "|weights=" + hashlib.sha256(weights_fingerprint(model).encode("utf-8")).hexdigest()[:16]
        self.model_key = f"{model}|normalize={inner.normalize}|max_seq_length={inner.max_seq_length}"

    def embed(
        self,
        texts: Sequence[str],
        instruction: str | None,
        *,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> Vectors:
        """Cached vectors for the texts seen before, the wrapped embedder's for the rest."""
        items = check_texts(texts)
        if not items:
            return np.zeros((0, self.dimension), dtype=np.float32)
        keys = [text_key(self.model_key, self.runtime, instruction, text) for text in items]
        found = self.cache.get_many(keys)
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, items, strict=True):
            if key not in found:
                missing.setdefault(key, text)
        if missing:
            vectors = self.inner.embed(
                list(missing.values()), instruction, batch_size=batch_size, show_progress=show_progress
            )
            fresh = list(zip(missing, np.asarray(vectors, dtype=np.float32), strict=True))
            self.cache.put_many(fresh)
            # What a later hit returns: the float32 bytes as stored.
            found.update(
                (key, np.frombuffer(vector.tobytes(), dtype=np.float32).copy()) for key, vector in fresh
            )
        self.stats.cache_hits += len(items) - len(missing)
        return np.stack([found[key] for key in keys]).astype(np.float32, copy=False)
