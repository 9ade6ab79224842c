"""The conftest guard: tests cannot reach the network, loopback still works."""

from __future__ import annotations

import socket
import threading
import urllib.request

import pytest

from tests.conftest import NetworkBlocked


def test_external_connections_are_blocked() -> None:
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("93.184.216.34", 80), timeout=1)
    with pytest.raises(NetworkBlocked):
        socket.getaddrinfo("example.com", 443)
    with pytest.raises((NetworkBlocked, OSError)):
        urllib.request.urlopen("https://api.openai.com/v1/models", timeout=1)


def test_loopback_is_allowed() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted: list[bool] = []
    t = threading.Thread(target=lambda: accepted.append(bool(server.accept())))
    t.start()
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    t.join(2)
    server.close()
    assert accepted == [True]
