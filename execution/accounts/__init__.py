"""Trading accounts: their rows, the position arithmetic of fills, trading sessions, reconciliation, the bar sweep."""
