"""Why the local endpoint uses a proxy rather than handing its port over with SO_REUSEPORT.

With SO_REUSEPORT the new server could bind the same port beside the old one, and the old one
would then close its socket. But the kernel spreads incoming connections over both sockets, and
connections already accepted by the kernel into the *old* socket's backlog, which no process
will ever ``accept()``, are reset when it closes: clients fail during every roll. This test
shows that on this kernel, so the design decision stays justified by evidence.
"""

from __future__ import annotations

import socket

import pytest


def _listener(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT here")
def test_so_reuseport_handover_resets_connections_waiting_in_the_old_backlog():
    old = _listener()
    port = old.getsockname()[1]
    new = _listener(port)
    clients = [socket.create_connection(("127.0.0.1", port), timeout=2) for _ in range(40)]
    old.close()  # the old server stops listening before accepting what was queued for it

    new.setblocking(False)
    accepted = []
    while True:
        try:
            accepted.append(new.accept()[0])
        except BlockingIOError:
            break
    reset = 0
    for client in clients:
        try:
            client.sendall(b"GET /ping HTTP/1.1\r\n\r\n")
            client.setblocking(False)  # with a timeout set, recv would first wait for data
            if client.recv(1, socket.MSG_PEEK) == b"":
                reset += 1
        except BlockingIOError:
            pass  # connected and waiting for an answer: this one survived
        except (ConnectionResetError, BrokenPipeError):
            reset += 1
    for sock in (*clients, *accepted, new):
        sock.close()

    assert len(accepted) < len(clients)
    assert reset == len(clients) - len(accepted) > 0, (
        "every connection left in the old backlog was lost"
    )
