"""Evaluation on real benchmarks (BEIR retrieval, STS) through the product's own ingest and search."""
