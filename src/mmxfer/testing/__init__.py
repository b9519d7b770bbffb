"""Test helpers shipped with the package: tiny trunks, synthetic run folders and the starter trunk's reference engine.

Used by the tests, the benchmarks and the rehearsal, never by the product: nothing in mmxfer imports this
package statically. :func:`mmxfer.catalog.load_plugins` imports it (a plugin package), so the trunks
``tiny``, ``tiny-bert`` and ``rehearsal-xlmr``, the tower ``rehearsal-vit`` and the data source ``fixtures``
are found by name (``--set trunk.name=tiny``).
"""

from mmxfer.testing import rehearsal, saved, tiny  # noqa: F401  (register the tiny models and the fixtures)
