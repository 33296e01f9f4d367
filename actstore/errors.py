"""One root error for the project.

Every error a user can cause derives from :class:`ActstoreError`; subclasses also inherit the
matching builtin so that ``except FileNotFoundError`` keeps working. Messages name the bad value and
the fix, in one line: the CLI prints ``str(err)`` and exits 1 (2 for :class:`UsageError`).
"""

from __future__ import annotations


class ActstoreError(Exception):
    """Root of every error this project raises on purpose."""

    exit_code = 1


class UsageError(ActstoreError, ValueError):
    """A bad argument or option: exit code 2."""

    exit_code = 2


class StoreNotFoundError(ActstoreError, FileNotFoundError):
    """The path is not there."""


class NotAStoreError(ActstoreError, ValueError):
    """The path exists but holds no actstore store."""


class FormatVersionError(ActstoreError, RuntimeError):
    """The store was written by a newer actstore than this one."""


class ReadOnlyError(ActstoreError, PermissionError):
    """A write was attempted on a store opened read-only (or a remote store)."""


class WriterBusyError(ActstoreError, BlockingIOError):
    """Another process holds the store's writer lock."""


class CatalogDamagedError(ActstoreError, RuntimeError):
    """The store's ``catalog.duckdb`` is truncated or damaged (DuckDB cannot read it back)."""


class UnknownArrayError(ActstoreError, KeyError):
    """No stored array for the asked (site, layer, pool)."""

    def __str__(self) -> str:  # KeyError quotes its message; we want the plain line
        return str(self.args[0]) if self.args else ""


class SchemaMismatchError(ActstoreError, ValueError):
    """A batch or table does not match what the store declared."""


class QueryError(ActstoreError, ValueError):
    """A SQL query failed."""


class IntegrityError(ActstoreError, RuntimeError):
    """verify found data that does not match its checksum or the catalog."""


class ModelError(ActstoreError, RuntimeError):
    """A model could not be loaded or is not supported."""


class InputError(ActstoreError, ValueError):
    """A prompt file, value name, language or other input is malformed."""


class RemoteError(ActstoreError, ConnectionError):
    """A remote store could not be reached or answered with something unusable."""
