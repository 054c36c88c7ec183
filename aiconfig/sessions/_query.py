"""SQL over a catalog with DuckDB (the well-kept engine for Parquet on one machine).

Views (each row carries ``session_id``):

* ``sessions``: one row per session, the catalog's columns (``ROW_FIELDS``);
* ``events``: every row of every readable session's ``events.parquet`` (the seed's schema);
* ``frames``: frame rows: ``session_id, stream, frame_index, t_ns, t_capture_ns,
  capture_delay_ns, is_duplicate, duplicate`` (``padded``/``dropped``/null);
* ``inputs``: input rows: ``session_id, frame_ref, t_ns, event_type, key_code, mouse_x,
  mouse_y, mouse_button, delta, metadata``.

The data is opened read-only: only ``SELECT`` statements run, file access is limited to ROOT and
the configuration is locked before the user's SQL runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._errors import SessionError
from ._format import EVENTS_FILE, STATUS_COMPLETE, STATUS_RECOVERED

if TYPE_CHECKING:
    from ._catalog import Catalog

__all__ = ["QueryError", "run_query"]


class QueryError(SessionError):
    """The SQL was refused or failed (DuckDB's message, one line)."""


_FRAMES = """
CREATE VIEW frames AS SELECT session_id, stream, frame_ref AS frame_index, t_ns, t_capture_ns,
  t_capture_ns - t_ns AS capture_delay_ns, is_duplicate,
  CASE WHEN is_duplicate THEN coalesce(json_extract_string(metadata, '$.duplicate'), 'padded')
  END AS duplicate
FROM events WHERE event_type = 'frame'
"""
_INPUTS = """
CREATE VIEW inputs AS SELECT session_id, frame_ref, t_ns, event_type, key_code, mouse_x, mouse_y,
  mouse_button, delta, metadata FROM events WHERE stream = 'input'
"""


def connect(catalog: Catalog) -> Any:
    """A DuckDB connection with the four views, locked down for read-only use."""
    import duckdb
    import pyarrow as pa

    from ._format import event_schema

    con = duckdb.connect(":memory:")
    rows = catalog.table()
    con.register("_sessions", rows)
    con.execute("CREATE VIEW sessions AS SELECT * FROM _sessions")
    import pyarrow.compute as pc

    usable = pc.and_(
        pc.is_in(rows["status"], pa.array([STATUS_COMPLETE, STATUS_RECOVERED])),
        pc.is_null(rows["problem"]),
    )
    prefix = str(catalog.root) + "/"
    files = [f"{prefix}{p}/{EVENTS_FILE}" for p in rows["path"].filter(usable).to_pylist()]
    if files:
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet([{listed}])")  # noqa: S608
    else:
        con.register("_no_events", event_schema().empty_table())
        con.execute("CREATE VIEW events AS SELECT * FROM _no_events")
    con.execute(_FRAMES)
    con.execute(_INPUTS)
    root = str(catalog.root.resolve()).rstrip("/") + "/"
    con.execute(f"SET allowed_directories = ['{root.replace(chr(39), chr(39) * 2)}']")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def run_query(catalog: Catalog, sql: str) -> Any:
    """The result of one ``SELECT`` as a ``pyarrow.Table``; :class:`QueryError` otherwise."""
    import duckdb

    con = connect(catalog)
    try:
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise QueryError(_one_line(exc), hint="check the SQL") from None
        if len(statements) != 1:
            raise QueryError(
                f"give exactly one SQL statement (got {len(statements)})",
                hint="run one query per call",
            )
        if statements[0].type != duckdb.StatementType.SELECT:
            raise QueryError(
                f"only SELECT queries run here (got {statements[0].type.name})",
                hint="the session data is opened read-only",
            )
        try:
            return con.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise QueryError(
                _one_line(exc), hint="views: sessions, events, frames, inputs"
            ) from None
    finally:
        con.close()


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(exc).__name__
