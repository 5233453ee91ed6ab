"""Ingest adapters: file and network sources, validation, and the merge into ``raw``."""
