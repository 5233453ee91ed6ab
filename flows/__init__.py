"""Prefect flows: orchestration only. Importing this package applies AlphaLoom's tool defaults before Prefect loads."""

from alphaloom.settings import apply_tool_environment

apply_tool_environment()
