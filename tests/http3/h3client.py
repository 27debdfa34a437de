"""An HTTP/3 client on aioquic (Debian's python3-aioquic) that sends several GET requests, one
after the other, each on its own stream of ONE QUIC connection, and prints the responses as
JSON: {"handshakes": 1, "responses": [{"status": 200, "body": "<base64>"}, ...]} (the
handshakes the connection completed: 1).

    python3 -m tests.http3.h3client --port P [--host H] [--cert BUNDLE --key KEY] PATH...

Used instead of curl where a test needs several requests on one QUIC connection: Debian 13's
curl (8.14.1, on OpenSSL's QUIC client) now and then never sends its HTTP/3 control and QPACK
streams, so a second request that refers to its QPACK dynamic table waits at the server for
table entries that never come (curl issue 21463). aioquic sends its QPACK encoder stream before
the request that needs it.

Exit status 0 when every request got a complete response, 1 otherwise (with the reason on
stderr); the caller's timeout ends a hung run."""

import argparse
import asyncio
import base64
import json
import ssl
import sys

from aioquic.asyncio import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._h3 = H3Connection(self._quic)
        self._pending = {}  # stream id -> {"status", "body", "done" future}
        self.handshakes = 0

    def quic_event_received(self, event):
        if isinstance(event, HandshakeCompleted):
            self.handshakes += 1
        if isinstance(event, ConnectionTerminated):
            for p in self._pending.values():
                if not p["done"].done():
                    p["done"].set_exception(ConnectionError(
                        "connection closed: error %s, %r" % (event.error_code, event.reason_phrase)))
            return
        for ev in self._h3.handle_event(event):
            p = self._pending.get(getattr(ev, "stream_id", None))
            if p is None:
                continue
            if isinstance(ev, HeadersReceived):
                for name, value in ev.headers:
                    if name == b":status":
                        p["status"] = int(value)
            elif isinstance(ev, DataReceived):
                p["body"] += ev.data
            if ev.stream_ended and not p["done"].done():
                p["done"].set_result(None)

    async def get(self, authority, path):
        stream_id = self._quic.get_next_available_stream_id()
        p = {"status": None, "body": b"", "done": asyncio.get_running_loop().create_future()}
        self._pending[stream_id] = p
        self._h3.send_headers(stream_id, [
            (b":method", b"GET"), (b":scheme", b"https"), (b":authority", authority.encode()),
            (b":path", path.encode()), (b"user-agent", b"resty-client-tls-tests aioquic"),
        ], end_stream=True)
        self.transmit()
        await p["done"]
        return {"status": p["status"], "body": base64.b64encode(p["body"]).decode()}


async def main(args):
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, verify_mode=ssl.CERT_NONE,
                               server_name=args.host)
    if args.cert:
        config.load_cert_chain(args.cert, args.key)  # the leaf, then the intermediates
    authority = "%s:%d" % (args.host, args.port)
    async with connect("127.0.0.1", args.port, configuration=config, create_protocol=Client) as client:
        responses = [await client.get(authority, path) for path in args.paths]
        handshakes = client.handshakes
    return {"handshakes": handshakes, "responses": responses}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("paths", nargs="+")
    try:
        print(json.dumps(asyncio.run(main(ap.parse_args()))))
    except Exception as e:  # noqa: BLE001 - the reason, for the test's failure message
        print("h3client: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
