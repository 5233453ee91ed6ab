"""Execution algorithms: TWAP/iceberg splitting, the slice schedule and its release pass, smart routing across venues."""
