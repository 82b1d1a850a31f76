"""What a chunk is stored as besides its dense vector: BM25 sparse vectors, sentence multivectors and augmented (keyword / question) vectors, their records and how they are built."""
