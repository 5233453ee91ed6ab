"""Tests of ``flows/``: the Prefect flows run on the session's Prefect API (``prefect_harness``): the pipeline
end to end, decide live and fanned out, the replay backtest and its caps, walk-forward, Dask and OANDA prices."""
