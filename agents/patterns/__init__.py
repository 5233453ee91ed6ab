"""Chart patterns, point in time (ARCHITECTURE §4): candlestick patterns (``candles``, and ``candles_at`` for the few
bars the analyst judges at each decision), confirmed swing points (``swings``), the formations built on them (``formations``) and the pattern analyst that turns the recent ones into an
opinion (``analyst``). Pure: bars in, patterns and opinions out; the bars come from the snapshot
(``agents.snapshot.MarketView.bars``), live and replayed alike."""
