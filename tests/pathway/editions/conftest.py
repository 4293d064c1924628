"""The API client fixtures (a fresh migrated store of each dialect) for the impact tests."""

from tests.api.conftest import client, clock

__all__ = ["client", "clock"]
