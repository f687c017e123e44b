"""What the hook-script tests share: running a script's main() as the hook would, and a local HTTP(S)
server in a thread for the probes that speak HTTP (nginx's health URL, a registry's /v2/)."""

from __future__ import annotations

import contextlib
import http.server
import ssl
import threading
from collections.abc import Callable, Iterator

import pytest


def run_main(main: Callable[[], None], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The exit code, stdout and stderr of `main()`, which exits 1 through hooklib.fail on failure."""
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@contextlib.contextmanager
def serve(handler: type[http.server.BaseHTTPRequestHandler], context: ssl.SSLContext | None) -> Iterator[int]:
    """Serves `handler` on 127.0.0.1 (over TLS with `context`) inside the block; gives the port."""
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    if context:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
