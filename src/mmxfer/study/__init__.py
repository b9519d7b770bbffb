"""``mmxfer study``: a grid of arms x targets x seeds, planned (:mod:`.grid`), run here one after another or
submitted to SLURM (:mod:`.launch`), then compared."""
