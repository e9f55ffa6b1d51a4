"""The PostgreSQL store survives its server connections being killed, and fails clearly when down."""

from __future__ import annotations

import socket
import uuid
from urllib.parse import urlsplit, urlunsplit

import attrs
import psycopg2
import pytest
import pytest_twisted

from synctv.core.errors import Unavailable
from synctv.core.models import User
from synctv.store import open_store, parse_database_url

pytestmark = pytest.mark.postgres

NO_HANG_S = 20  # a generous bound: a call on a dead connection must fail, not wait forever


def terminate_backends(url) -> int:
    """pg_terminate_backend every other session on the store's database; the count killed."""
    conn = psycopg2.connect(url.dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return int(cur.fetchone()[0])
    finally:
        conn.close()


async def bounded(d):
    from twisted.internet import reactor

    return await d.addTimeout(NO_HANG_S, reactor)


@pytest_twisted.ensureDeferred
async def test_store_recovers_after_its_backends_are_terminated(postgres_server_url):
    """After pg_terminate_backend, a call fails with Unavailable or succeeds (never hangs), and once
    the pool has reconnected calls succeed again and writes persist."""
    store = await open_store(postgres_server_url)
    try:
        before = await store.count_users()
        name = f"reborn-{uuid.uuid4().hex}"
        assert terminate_backends(postgres_server_url) >= 3
        try:
            await bounded(store.count_users())
        except Unavailable:
            pass
        recovered = False
        for _ in range(10):  # each failure marks one more dead connection; the pool has 3
            await bounded(store.when_connected())
            try:
                await bounded(store.create_user(User(name, name, "user", "h", created_at=1)))
            except Unavailable:
                continue
            recovered = True
            break
        assert recovered
        assert await store.count_users() == before + 1
        assert (await store.get_user(name)).name == name
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_idle_connections_notice_termination_and_reconnect(postgres_server_url):
    """Connections killed while idle are noticed without a query and replaced; then every call works."""
    store = await open_store(postgres_server_url)
    try:
        await store.count_users()
        terminate_backends(postgres_server_url)
        for _ in range(10):
            await bounded(store.when_connected())
            try:
                results = [await bounded(store.count_users()) for _ in range(6)]
            except Unavailable:
                continue
            break
        assert results == [results[0]] * 6
    finally:
        await store.close()


class RestartableServer:
    """A TCP proxy in front of PostgreSQL: ``stop`` drops every connection and refuses new ones
    (the server going down), ``start`` listens again on the same port (the server coming back)."""

    def __init__(self, target_port: int) -> None:
        from twisted.protocols.portforward import ProxyFactory, ProxyServer

        connections = self.connections = set()

        class Server(ProxyServer):
            def connectionMade(self) -> None:
                connections.add(self)
                super().connectionMade()

            def connectionLost(self, reason) -> None:
                connections.discard(self)
                super().connectionLost(reason)

        self.factory = ProxyFactory("127.0.0.1", target_port)
        self.factory.protocol = Server
        self.port_number = 0
        self.listening = None

    def start(self) -> None:
        from twisted.internet import reactor

        self.listening = reactor.listenTCP(self.port_number, self.factory, interface="127.0.0.1")
        self.port_number = self.listening.getHost().port

    async def stop(self) -> None:
        await self.listening.stopListening()
        for server in list(self.connections):
            server.transport.abortConnection()


@pytest_twisted.ensureDeferred
async def test_store_recovers_when_the_server_restarts(postgres_server_url):
    """While the server is down calls fail fast with Unavailable; after it is back they succeed."""
    target = urlsplit(postgres_server_url.dsn)
    server = RestartableServer(target.port or 5432)
    server.start()
    userinfo = target.netloc.rsplit("@", 1)[0] + "@" if "@" in target.netloc else ""
    proxied = attrs.evolve(
        postgres_server_url,
        dsn=urlunsplit(target._replace(netloc=f"{userinfo}127.0.0.1:{server.port_number}")),
    )
    store = await open_store(proxied)
    try:
        before = await store.count_users()
        await server.stop()
        for _ in range(3):  # down: whether the connection is known dead yet or not, no hang
            with pytest.raises(Unavailable):
                await bounded(store.count_users())
        server.start()
        await bounded(store.when_connected())
        assert await bounded(store.count_users()) == before
    finally:
        await store.close()
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_open_store_on_an_unreachable_server_is_unavailable():
    """Opening a store on a server that refuses connections fails at once with a clear message."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = parse_database_url(f"postgresql://postgres:s3cret@127.0.0.1:{port}/x")
    with pytest.raises(Unavailable) as caught:
        await bounded(open_store(url))
    assert (
        caught.value.message
        == f"cannot connect to postgresql://postgres@127.0.0.1:{port}/x: connection refused"
    )
