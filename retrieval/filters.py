"""What a search may see: the user's document / domain restriction.

Pending chunks (an ingest still running, or one that was interrupted) are left out inside every
query (:func:`store.payload.committed_filter` in Qdrant's queries; the in-process index
masks them), and a hit whose file's manifest has another content hash, or none (a file being
replaced or removed), is left out afterwards (:meth:`store.manifest.Manifests.committed_hashes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from store.payload import DOMAIN, FILE_NAME, SOURCE, metadata_path

if TYPE_CHECKING:
    from qdrant_client import models


def build_filter(documents: Sequence[str] | None = None, domain: str | None = None) -> models.Filter | None:
    """The Qdrant filter for a document and domain restriction.

    Args:
        documents: file names or sources; a chunk matches when its ``file_name`` or its
            ``source`` is one of them. ``None`` or empty: all documents.
        domain: only chunks ingested with this domain; ``None``: any domain.

    Returns:
        The filter, or ``None`` when nothing is restricted.
    """
    from qdrant_client import models  # lazy: qdrant_client takes about a second to import

    must: list[Any] = []
    names = sorted({name for name in documents or () if name})
    if names:
        must.append(
            models.Filter(
                should=[
                    models.FieldCondition(key=metadata_path(FILE_NAME), match=models.MatchAny(any=names)),
                    models.FieldCondition(key=metadata_path(SOURCE), match=models.MatchAny(any=names)),
                ]
            )
        )
    if domain is not None:
        must.append(models.FieldCondition(key=metadata_path(DOMAIN), match=models.MatchValue(value=domain)))
    return models.Filter(must=must) if must else None
