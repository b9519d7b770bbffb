"""Test helpers shipped with the package: tiny trunks, synthetic run folders and the starter trunk's reference engine.

Used by the tests, the benchmarks and the rehearsal, never by the product: nothing in mmxfer imports this
package statically. :func:`mmxfer.catalog.load_plugins` imports it (a plugin package), so the trunks
``tiny`` and ``tiny-bert`` are found by name (``--set trunk.name=tiny``).
"""

from mmxfer.testing import tiny  # noqa: F401  (registers the tiny trunks)
