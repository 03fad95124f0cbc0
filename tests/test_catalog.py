"""Package metadata is cached per process and dropped when Postgres says it changed."""

from __future__ import annotations

import asyncio

import psycopg2

from tests.support.client import ViewerClient


async def _channel_names(server, package_id):
    client = await ViewerClient.connect(server.ws_url(package_id))
    try:
        await client.send({"montage": "NOT_MONTAGED"})
        return [d["name"] for d in (await client.receive_json())["channelDetails"]]
    finally:
        client.close()


async def test_cached_package_is_invalidated_by_notify(database, tmp_path, shared_eeg):
    from tests.conftest import make_settings
    from tests.support.server import start_server

    settings = make_settings(database, (tmp_path / "b").as_uri() + "/")
    async with start_server(settings) as server:
        await asyncio.wait_for(server.services.packages.listening.wait(), 10)
        package = await server.ingest(shared_eeg)
        assert (await _channel_names(server, package.package_id))[0] == "Fp1"
        admin = psycopg2.connect(
            host=database["host"], port=database["port"], dbname=database["database"], user="postgres"
        )
        admin.autocommit = True
        try:
            with admin.cursor() as cursor:
                cursor.execute(
                    "UPDATE timeseries.channels SET name = 'Fp1-renamed' WHERE id = %s",
                    (package.channels[0].id,),
                )
            # Without a notification the cached copy is served (no Postgres round trip per viewer) ...
            assert (await _channel_names(server, package.package_id))[0] == "Fp1"
            with admin.cursor() as cursor:
                cursor.execute("SELECT pg_notify('streaming_packages', %s)", (package.package_id,))
            for _ in range(100):  # ... and a notification drops it
                if (await _channel_names(server, package.package_id))[0] == "Fp1-renamed":
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the notification did not invalidate the cached package")
        finally:
            admin.close()


async def test_ingest_notifies(database, tmp_path, shared_eeg):
    from tests.conftest import make_settings
    from tests.support.server import start_server

    settings = make_settings(database, (tmp_path / "b").as_uri() + "/")
    async with start_server(settings) as server:
        await asyncio.wait_for(server.services.packages.listening.wait(), 10)
        listener = psycopg2.connect(
            host=database["host"], port=database["port"], dbname=database["database"], user="postgres"
        )
        listener.autocommit = True
        try:
            with listener.cursor() as cursor:
                cursor.execute("LISTEN streaming_packages")
            package = await server.ingest(shared_eeg)
            for _ in range(200):  # delivery after commit is asynchronous
                listener.poll()
                if listener.notifies:
                    break
                await asyncio.sleep(0.01)
            assert [n.payload for n in listener.notifies] == [package.package_id]
        finally:
            listener.close()
