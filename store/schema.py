"""The Qdrant collection a :class:`~store.record.CollectionRecord` asks for: its vectors and payload indexes.

The vectors are those of the representations the record has
(:func:`representations.records.collection_schema`, which keeps the dense chunk vector the
unnamed default vector that ``langchain_qdrant`` reads). On a server, the payload fields that
filters use are indexed; the embedded store has no payload indexes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from representations.records import collection_schema
from store.journal import use_wal
from store.payload import CHUNK_INDEX, DOMAIN, FILE_NAME, FILE_SHA256, PENDING_KEY, SOURCE, metadata_path
from store.record import CollectionRecord, record_metadata

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

logger = logging.getLogger(__name__)

#: Metadata fields a server indexes as keywords (the filters of searches, deletes and counts).
KEYWORD_INDEXED = (SOURCE, FILE_SHA256, FILE_NAME, DOMAIN)


def create_collection(
    client: QdrantClient, collection: str, record: CollectionRecord, *, local: bool
) -> None:
    """Create the chunk collection ``record`` describes, with ``record`` as its metadata.

    Args:
        client: the client.
        collection: the (new) collection's name.
        record: what it is built with.
        local: ``True`` for the embedded / in-memory store (no payload indexes).
    """
    vectors, sparse = collection_schema(record.representations, record.dimension)
    client.create_collection(
        collection,
        vectors_config=vectors,
        sparse_vectors_config=sparse,
        metadata=record_metadata(record),
    )
    if local:
        use_wal(client)  # the new collection's storage file (see store.journal)
    else:
        index_payload(client, collection)
    ensure_pending_index(client, collection, local=local)
    logger.info("created collection %s (%s, dim %d)", collection, record.model, record.dimension)


def index_payload(client: QdrantClient, collection: str) -> None:
    """On a server, index the payload fields that filters use (:data:`KEYWORD_INDEXED`, the chunk index)."""
    from qdrant_client import models  # lazy: qdrant_client takes about a second to import

    for field in KEYWORD_INDEXED:
        client.create_payload_index(collection, metadata_path(field), models.PayloadSchemaType.KEYWORD)
    client.create_payload_index(collection, metadata_path(CHUNK_INDEX), models.PayloadSchemaType.INTEGER)


def ensure_pending_index(client: QdrantClient, collection: str, *, local: bool) -> None:
    """On a server, index the pending flag (every query filters on it); local mode has none."""
    from qdrant_client import models  # lazy: qdrant_client takes about a second to import

    if local:
        return
    schema = client.get_collection(collection).payload_schema or {}
    if PENDING_KEY not in schema:
        client.create_payload_index(collection, PENDING_KEY, models.PayloadSchemaType.BOOL)
