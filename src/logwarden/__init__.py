"""logwarden: anonymous stranger chat whose log serves safety without becoming a liability."""

from logwarden.clock import Clock, FakeClock, SystemClock
from logwarden.config import Settings, load_settings
from logwarden.errors import (
    ConfigError,
    DataDirError,
    LogwardenError,
    ProtocolError,
    StoreError,
    VaultError,
)

__version__ = "0.1.0"

__all__ = [
    "Clock",
    "ConfigError",
    "DataDirError",
    "FakeClock",
    "LogwardenError",
    "ProtocolError",
    "Settings",
    "StoreError",
    "SystemClock",
    "VaultError",
    "load_settings",
]
