"""Data quality with Great Expectations 1.x: every incoming batch is validated before it is merged into ``raw``.

- ``suites``: the expectation suites (prices, news) and which expectations are row-level (a failing row is quarantined
  with the expectation's name) or batch-level (reported only, e.g. a gap in the session calendar: the bar after a gap
  is not wrong data).
- ``quality_gate``: ``QualityGate`` runs a suite's checkpoint on an in-flight pandas batch in a file context under
  ``<home>/gx`` (results kept in GX's validation store, Data Docs rebuilt), splits the batch into clean rows and
  ``Rejected`` rows, and ``record_report`` keeps a summary row in ``raw.quality_results``.

GX usage analytics are off (``GX_ANALYTICS_ENABLED=False``, set before GX is imported); nothing needs the network.
"""
