"""What a chunk is stored as besides its dense vector, one module per representation.

``base`` (the interface), ``dense``, ``sparse`` (BM25), ``sentences`` (MaxSim multivectors),
``augmented`` (keyword- and question-augmented vectors), ``registry`` (the representations, one
line each), ``records`` (what a collection records and its Qdrant schema), ``builder`` (a batch's
vectors at ingest time).
"""
