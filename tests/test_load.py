"""A bounded load test on a real PostgreSQL server: 20 annotators label (and
undo) at once through the served studio's API; nothing fails, is lost or is
duplicated. (`python -m bench.load --annotators 100 --seconds 300` runs the
full figure.) The audit itself is checked on made-up rows first: it must see
a lost label, an unacknowledged row and a wrong current label."""

import pytest

from bench.load import Client, Row, audit, run_load


def _client() -> Client:
    client = Client("ann", 0)
    client.acknowledged = [1, 2, 4]  # 2 corrected 1; 4 labelled item 11, then undone
    client.undone = {4: None}
    client.current = {10: 2}
    return client


def _rows() -> list[Row]:
    return [Row(1, "ann", 10, None, False), Row(2, "ann", 10, 1, False),
            Row(4, "ann", 11, None, False), Row(5, "ann", 11, 4, True)]


def test_the_audit_passes_a_store_that_matches_the_answers():
    assert audit([_client()], _rows()).ok


def test_the_audit_sees_lost_extra_and_wrong_current_labels():
    rows = _rows()
    lost = audit([_client()], [r for r in rows if r.id != 2])
    assert lost.lost == (2,) and lost.wrong_current == ("ann/item 10",)
    extra = audit([_client()], [*rows, Row(6, "ann", 10, 2, False)])
    assert extra.unacknowledged == (6,) and extra.wrong_current == ("ann/item 10",)
    twice = _client()
    twice.acknowledged.append(1)
    assert audit([twice], rows).duplicated == (1,)


@pytest.mark.e2e
def test_twenty_annotators_at_once_lose_and_duplicate_nothing(postgres_server):
    import sqlalchemy as sa

    admin = sa.create_engine(postgres_server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql("DROP DATABASE IF EXISTS load_test")
        connection.exec_driver_sql("CREATE DATABASE load_test")
    admin.dispose()
    # 60 items: the queue runs dry, so corrections are exercised too
    report = run_load(postgres_server.database_url("load_test"), annotators=20, seconds=15,
                      items=60, undo_every=4)
    print("\n".join(report.lines()))
    assert report.errors == ()
    assert report.labels_acknowledged >= report.annotators
    assert report.undos >= 5  # every 4th label, staggered: 5 clients undo their first
    assert report.audit.ok, report.audit
    assert report.audit.stored >= report.labels_acknowledged
