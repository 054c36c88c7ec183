"""Fixtures shared with the fork tests: a throwaway copy of the project (real baseline, keys)."""

from tests.fork.conftest import project

__all__ = ["project"]
