"""The app of ``bench/floor.py``: the mandated stack with nothing of ours in it.

FastAPI, pydantic request and response models, one SQLModel ``Session`` per request from an
``async`` dependency (as ``api/deps.py`` does), ``pathway.db.make_engine``'s pool, PostgreSQL. A
route runs ``n`` statements and commits; what it costs is what any route of the product pays
before its first line of clinical work.

    FLOOR_DATABASE_URL=postgresql://... uvicorn --factory bench.floor_app:app_from_environment --workers 2
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from pathway.store.db import make_engine

ROWS = 1_000  # rows of the looked-up table (a patient table's stand-in)

_metadata = MetaData()
looked_up = Table(
    "floor_looked_up",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(80), nullable=False),
)
written = Table(
    "floor_written",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("looked_up_id", Integer, nullable=False, index=True),
    Column("note", String(200), nullable=False),
)


def prepare(engine: Engine) -> None:
    """Create the two tables and fill the looked-up one (idempotent)."""
    _metadata.create_all(engine)
    with engine.begin() as connection:
        if connection.execute(select(looked_up.c.id).limit(1)).first() is None:
            connection.execute(insert(looked_up), [{"id": i, "name": f"row {i}"} for i in range(1, ROWS + 1)])


class Note(BaseModel):
    looked_up_id: int
    note: str


class Stored(BaseModel):
    id: int
    status: str


async def _session(request: Request) -> AsyncIterator[Session]:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(_session)]
Statements = Annotated[int, Query(ge=1, le=50)]


def create_app(url: str) -> FastAPI:
    app = FastAPI(title="bench floor")
    app.state.engine = make_engine(url)
    by_id = select(looked_up.c.name).where(looked_up.c.id == bindparam("row_id"))

    @app.get("/floor/nothing")
    def nothing() -> Stored:
        return Stored(id=0, status="nothing stored")

    @app.post("/floor/sqlalchemy")
    def through_sqlalchemy(body: Note, session: SessionDep, n: Statements = 1) -> Stored:
        """``n - 1`` primary-key lookups and one INSERT … RETURNING through the session, then commit."""
        for _ in range(n - 1):
            session.execute(by_id, {"row_id": body.looked_up_id}).all()
        stored = session.execute(
            insert(written).returning(written.c.id), {"looked_up_id": body.looked_up_id, "note": body.note}
        ).scalar_one()
        session.commit()
        return Stored(id=stored, status="created")

    @app.post("/floor/driver")
    def through_driver(body: Note, session: SessionDep, n: Statements = 1) -> Stored:
        """The same statements on the session's psycopg cursor: what SQLAlchemy itself costs."""
        raw = session.connection().connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            for _ in range(n - 1):
                cursor.execute("SELECT name FROM floor_looked_up WHERE id = %s", (body.looked_up_id,))
                cursor.fetchall()
            cursor.execute(
                "INSERT INTO floor_written (looked_up_id, note) VALUES (%s, %s) RETURNING id",
                (body.looked_up_id, body.note),
            )
            row = cursor.fetchone()
        finally:
            cursor.close()
        session.commit()
        assert row is not None
        return Stored(id=int(row[0]), status="created")

    return app


def app_from_environment() -> FastAPI:
    return create_app(os.environ["FLOOR_DATABASE_URL"])
