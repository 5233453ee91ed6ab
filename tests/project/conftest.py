"""Tests of the project itself: the import contracts and docs/ARCHITECTURE.md's references, the README, the
project and ops files, test isolation, and the benchmarks' smoke runs at toy size."""
