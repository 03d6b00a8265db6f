"""A bounded load test on a real PostgreSQL server: 20 annotators label at once
through the served studio's API; nothing fails, is lost or is duplicated.
(`python -m bench.load` runs the same for 2 minutes and prints the figures.)"""

import pytest

from bench.load import run_load

pytestmark = pytest.mark.e2e


def test_twenty_annotators_at_once_lose_and_duplicate_nothing(postgres_server):
    import sqlalchemy as sa

    admin = sa.create_engine(postgres_server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql("DROP DATABASE IF EXISTS load_test")
        connection.exec_driver_sql("CREATE DATABASE load_test")
    admin.dispose()
    report = run_load(postgres_server.database_url("load_test"), annotators=20, seconds=15)
    print("\n".join(report.lines()))
    assert report.errors == ()
    assert report.labels_acknowledged >= report.annotators
    assert report.labels_stored == report.labels_acknowledged == report.rows
    assert report.duplicate_current == 0
