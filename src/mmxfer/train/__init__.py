"""Training: the accelerate loop (:mod:`.loop`), batch orders and multi-task mixing (:mod:`.sampling`),
the task-data seam (:mod:`.data`), the three phases (:mod:`.phases`), one run from a resolved request
(:mod:`.run`); ``mmxfer train`` is :mod:`mmxfer.cli.train`.

Submodules are imported on use (``mmxfer --help`` stays fast)."""
