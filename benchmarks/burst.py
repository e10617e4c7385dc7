"""A burst of simultaneous uploads measured on raw sockets (used by the service and reliability
benchmarks).

Requests are encoded before the clock starts, every connection is opened and accepted first,
then all requests are written at the same instant; each latency is the time from writing a
request to reading its whole response. So the figure is the server's, not a Python HTTP
client's: an ``httpx.AsyncClient`` encoding 50 multipart bodies in the measuring process adds
its own CPU time to every latency.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx


def raw_request(url: str, path: str, files: dict[str, Any], data: dict[str, str]) -> bytes:
    """A complete HTTP/1.1 request (multipart encoded by httpx), ready to write to a socket."""
    request = httpx.Request("POST", url + path, files=files, data=data)
    body = request.read()
    host = url.split("//", 1)[1]
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: {request.headers['content-type']}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def _exchange(
    host: str, port: int, raw: bytes, start: asyncio.Event
) -> tuple[float, int, bytes]:
    """Connect, wait for the common start, send ``raw``: (seconds to the whole response, status,
    body)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        await start.wait()
        started = time.perf_counter()
        writer.write(raw)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length)
        return time.perf_counter() - started, int(head.split(b" ", 2)[1]), body
    finally:
        writer.close()


async def _burst(url: str, raws: list[bytes]) -> list[tuple[float, int, bytes]]:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    start = asyncio.Event()
    tasks = [asyncio.create_task(_exchange(host, int(port), raw, start)) for raw in raws]
    await asyncio.sleep(0.5)  # every connection open and accepted
    start.set()
    return list(await asyncio.gather(*tasks))


def burst(url: str, raws: list[bytes]) -> list[tuple[float, int, bytes]]:
    """Write every request in ``raws`` at the same instant: ``(seconds, status, body)`` each."""
    return asyncio.run(_burst(url, raws))
