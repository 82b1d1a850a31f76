"""Qdrant: the client factory, the self-describing collection record, chunk points and the per-file manifest with repair."""
