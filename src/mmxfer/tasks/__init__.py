"""Task specs. Importing this package registers every task in ``mmxfer.catalog.TASKS``."""

from mmxfer.tasks import flores, starter, starter_flores, text, vision_language, wmt, xtreme  # noqa: F401  (registration)
