"""Builders of MEDI-format training data from what users have (written with :func:`training.medi.write_medi`).

One module per source, each returning ``list[MediRecord]``:

* :mod:`training.builders.beir`: a BEIR folder's qrels (one task per dataset, the product's
  retrieval instructions for the dataset's domain, BM25 hard negatives);
* :mod:`training.builders.sts`: STS-benchmark pairs as a symmetric task under the STS instruction;
* :mod:`training.builders.unlabeled`: label-free pseudo-queries from a collection's own chunks
  (key phrases, headings, inverse cloze sentences, generated questions when a generator is
  configured), one task per kind.

:mod:`training.builders.negatives` mines the BM25 hard negatives, :mod:`training.builders.passages`
finds headings and sentences in chunk text, and :mod:`training.builders.common` holds the
sampling and counting they share.
"""
