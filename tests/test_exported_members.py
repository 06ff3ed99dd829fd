"""The public surface of the ``logwarden`` package is exactly what ``__all__`` lists."""

from __future__ import annotations

import importlib.metadata
import types

import logwarden


class TestExportedMembers:
    def test_every_name_in_all_exists(self) -> None:
        """Every name in ``logwarden.__all__`` is an attribute of the package."""
        missing = [name for name in logwarden.__all__ if not hasattr(logwarden, name)]
        assert missing == []

    def test_every_public_name_is_in_all(self) -> None:
        """Every public name the package defines or re-exports is listed in ``__all__``."""
        # Submodules become attributes once anything imports them (logwarden.config, and
        # logwarden.chat after a test imports it): they are reached by path, not re-exported.
        public = {
            name
            for name, value in vars(logwarden).items()
            if not name.startswith("_") and not isinstance(value, types.ModuleType)
        }
        assert public == set(logwarden.__all__)

    def test_all_has_no_duplicates(self) -> None:
        """No name is listed twice in ``__all__``."""
        assert len(logwarden.__all__) == len(set(logwarden.__all__))

    def test_exports_are_defined_in_logwarden(self) -> None:
        """Every exported class and function comes from a logwarden module."""
        for name in logwarden.__all__:
            module = getattr(getattr(logwarden, name), "__module__", "")
            assert module.startswith("logwarden."), f"{name} comes from {module}"

    def test_version_matches_the_distribution(self) -> None:
        """``logwarden.__version__`` is the installed distribution's version."""
        assert logwarden.__version__ == importlib.metadata.version("logwarden")
