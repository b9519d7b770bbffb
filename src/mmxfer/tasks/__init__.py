"""Task specs. Importing this package registers every task in ``mmxfer.catalog.TASKS``."""
