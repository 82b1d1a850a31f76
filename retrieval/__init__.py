"""Search: retrieval modes, filters, the search engine and its scorers (Qdrant's query API and the exact in-process index)."""
