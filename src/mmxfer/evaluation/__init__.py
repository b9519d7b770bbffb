"""Zero-shot evaluation: suites, predictions of a trunk on retrieval tasks, scoring and re-scoring of prediction files."""
