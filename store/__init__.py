"""Qdrant: the client, the self-describing collection record, chunk points and the per-file manifest with repair.

``client`` (open_client, repair on open), ``payload`` (payload keys, point ids, the pending flag),
``record`` (what a collection was built with), ``schema`` (the collection a record asks for),
``points`` (chunk points), ``manifest`` (document manifests, the write mark, the repair) and
``core`` (:class:`~store.core.VectorStore`, the facade over them, and ``store_for``).
"""
