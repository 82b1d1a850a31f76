"""instructor-search."""
