"""(filled by its issue)."""
