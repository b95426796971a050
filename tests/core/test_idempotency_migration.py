"""Upgrading deletes the answers kept in the clear before, leaving no copy in the data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

PHONE = "13577779999"


@pytest.mark.django_db(transaction=True)
def test_the_upgrade_deletes_clear_answers_and_leaves_no_copy() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("core", "0001_initial")])
    try:
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":  # as SQLite is built by default (Debian's turns it on)
                cursor.execute("PRAGMA secure_delete = OFF")
            cursor.execute(
                "INSERT INTO core_idempotencyrecord (scope, key, fingerprint, state, response_status, response_body,"
                " response_content_type, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, CURRENT_TIMESTAMP)",
                ["h:x", "k", "f", "done", 201, f'{{"phone": "+86{PHONE}"}}'.encode() * 2000, "application/json"])
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    from memberhub.core.models import IdempotencyRecord

    assert not IdempotencyRecord.objects.exists()
    if connection.vendor == "sqlite":  # PostgreSQL keeps its files outside the data dir
        connection.close()  # as the migrate command ends
        data_dir = Path(os.environ["MEMBERHUB_DATA_DIR"])
        files = [p for p in data_dir.rglob("*") if p.is_file()]
        assert any(p.name.endswith(".sqlite3") for p in files)
        assert [p.name for p in files if PHONE.encode() in p.read_bytes()] == []
