"""A pooled PostgreSQL connection the server has closed is replaced at checkout, without
a round trip for healthy ones (the pool looks at the socket instead of pinging)."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from secops.db.session import dispose_engines, get_engine
from tests.conftest import PG_ADMIN_URL

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("platform_env", ["postgresql"], indirect=True)
def test_a_connection_the_server_closed_is_replaced_at_checkout(platform_env):
    dispose_engines()
    engine = get_engine()
    backend = sa.text("SELECT pg_backend_pid()")
    with engine.connect() as conn:
        first = conn.execute(backend).scalar_one()
    with engine.connect() as conn:  # healthy: the same connection again
        assert conn.execute(backend).scalar_one() == first
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"),
                                {"pid": first}).scalar_one()
            deadline = time.monotonic() + 10
            while conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                               {"pid": first}).scalar_one():
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        admin.dispose()
    assert engine.pool.checkedin() == 1  # the dead connection is still pooled
    with engine.connect() as conn:  # without the check this fails: the server is gone
        second = conn.execute(backend).scalar_one()
    assert second != first
    with engine.connect() as conn:
        assert conn.execute(backend).scalar_one() == second


@pytest.mark.parametrize("platform_env", ["postgresql"], indirect=True)
def test_checkout_sends_nothing_to_the_server(platform_env):
    """Checking out a pooled connection runs no statement: the server's record of the
    connection's last statement (pg_stat_activity) is still the test's own after
    twenty checkouts."""
    dispose_engines()
    engine = get_engine()
    marker = "SELECT 'the last statement' AS marker"
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        conn.exec_driver_sql(marker)
    for _ in range(20):
        with engine.connect():
            pass
    assert engine.pool.checkedin() == 1
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            last = conn.execute(sa.text("SELECT query FROM pg_stat_activity WHERE pid = :pid"),
                                {"pid": pid}).scalar_one()
    finally:
        admin.dispose()
    assert last == marker
