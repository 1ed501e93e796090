#!/usr/bin/env python3
"""A small HTTP/3 client for imagegate's tests, independent of the server's
own stack (aioquic for QUIC, TLS and HTTP/3).

Sends one request and prints one JSON object on stdout:
  {"status": 200, "headers": {...}, "body": "...", "alpn": "h3"}
or, when no answer arrives (handshake refused, connection closed, timeout):
  {"error": "...", "stage": "connect" | "request"}
and exits 1 in that case, 0 when any HTTP status was received.

  h3_client.py --addr 127.0.0.1:8443 --ca ca.pem --path /imagepolicy \
      --body-file review.json [--cert client.pem --key client.key]
"""

import argparse
import asyncio
import json
import ssl
import sys

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated


class Exchange:
    """What came back on one request stream."""

    def __init__(self, loop):
        self.status = None
        self.headers = {}
        self.body = bytearray()
        self.done = loop.create_future()

    def finish(self, error=None):
        if not self.done.done():
            if error is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(error)


class Http3Client(QuicConnectionProtocol):
    """Routes HTTP/3 events to the exchange of their stream."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.exchanges = {}

    def quic_event_received(self, event):
        if isinstance(event, ConnectionTerminated):
            for exchange in self.exchanges.values():
                exchange.finish(
                    ConnectionError(
                        f"connection closed: code {event.error_code:#x} "
                        f"{event.reason_phrase!r}"
                    )
                )
            return
        for h3_event in self.h3.handle_event(event):
            exchange = self.exchanges.get(getattr(h3_event, "stream_id", None))
            if exchange is None:
                continue
            if isinstance(h3_event, HeadersReceived):
                for name, value in h3_event.headers:
                    if name == b":status":
                        exchange.status = int(value)
                    else:
                        exchange.headers[name.decode()] = value.decode()
            elif isinstance(h3_event, DataReceived):
                exchange.body.extend(h3_event.data)
            if getattr(h3_event, "stream_ended", False):
                exchange.finish()

    async def request(self, method, authority, path, headers, body, body_delay):
        stream_id = self._quic.get_next_available_stream_id()
        exchange = Exchange(self._loop)
        self.exchanges[stream_id] = exchange
        head = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", authority.encode()),
            (b":path", path.encode()),
        ] + [(k.encode(), v.encode()) for k, v in headers]
        if body is None:
            self.h3.send_headers(stream_id, head, end_stream=True)
            self.transmit()
        else:
            head.append((b"content-length", str(len(body)).encode()))
            self.h3.send_headers(stream_id, head, end_stream=False)
            self.transmit()
            if body_delay > 0:
                # The headers are out; the body follows later (drain tests).
                await asyncio.sleep(body_delay)
            self.h3.send_data(stream_id, body, end_stream=True)
            self.transmit()
        await exchange.done
        return exchange


def peer_fingerprint(client):
    """SHA-256 of the server's leaf certificate (DER), hex; None if unknown."""
    try:
        from cryptography.hazmat.primitives import hashes

        cert = client._quic.tls._peer_certificate
        return cert.fingerprint(hashes.SHA256()).hex() if cert is not None else None
    except Exception:
        return None


async def run(args):
    host, _, port = args.addr.rpartition(":")
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN)
    config.server_name = args.server_name
    config.load_verify_locations(args.ca)
    config.verify_mode = ssl.CERT_REQUIRED
    config.idle_timeout = args.timeout
    if args.cert:
        config.load_cert_chain(args.cert, args.key)
    body = None
    if args.body_file:
        with open(args.body_file, "rb") as f:
            body = f.read()
    elif args.body is not None:
        body = args.body.encode()
    headers = []
    if body is not None and args.content_type:
        headers.append(("content-type", args.content_type))
    stage = "connect"
    try:
        async with connect(
            host,
            int(port),
            configuration=config,
            create_protocol=Http3Client,
            wait_connected=True,
        ) as client:
            stage = "request"
            results = []
            for _ in range(args.repeat):
                exchange = await client.request(
                    args.method or ("POST" if body is not None else "GET"),
                    f"{args.server_name}:{port}",
                    args.path,
                    headers,
                    body,
                    args.body_delay,
                )
                results.append(exchange)
            last = results[-1]
            return {
                "peer_cert_sha256": peer_fingerprint(client),
                "status": last.status,
                "statuses": [r.status for r in results],
                "headers": last.headers,
                "body": last.body.decode("utf-8", "replace"),
                "alpn": client._quic.tls.alpn_negotiated,
            }
    except Exception as e:  # every failure is reported, not raised
        return {"error": f"{type(e).__name__}: {e}", "stage": stage}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", required=True, help="HOST:PORT of the UDP listener")
    parser.add_argument("--server-name", default="localhost", help="TLS server name")
    parser.add_argument("--ca", required=True, help="PEM CA bundle to verify the server")
    parser.add_argument("--cert", help="PEM client certificate (mTLS)")
    parser.add_argument("--key", help="PEM client key (mTLS)")
    parser.add_argument("--method", help="default: POST with a body, else GET")
    parser.add_argument("--path", default="/healthz")
    parser.add_argument("--body-file", help="request body from this file")
    parser.add_argument("--body", help="request body text")
    parser.add_argument("--content-type", default="application/json")
    parser.add_argument("--body-delay", type=float, default=0.0,
                        help="seconds between the headers and the body")
    parser.add_argument("--repeat", type=int, default=1,
                        help="requests sent one after another on one connection")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds")
    args = parser.parse_args()

    async def bounded():
        try:
            return await asyncio.wait_for(run(args), args.timeout)
        except asyncio.TimeoutError:
            return {"error": f"no answer within {args.timeout}s", "stage": "timeout"}

    result = asyncio.run(bounded())
    print(json.dumps(result))
    sys.exit(1 if "error" in result else 0)


if __name__ == "__main__":
    main()
