"""`--traces`: the zone processes export their spans by OTLP/HTTP, as to a collector, to a receiver in the bench
process that counts them (by service and start time) and drops them: what exporting costs the zone is then in its
CPU figures, and how many spans it made in the spans figures."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import AsyncIterator

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

TRACED_SUFFIX = "_traced"  # of the name of a result measured with traces exported
# How long a service holds finished spans before exporting them (the SDK's default, set explicitly for the zone's
# processes): what has not arrived this long after a window ended is still to come.
EXPORT_DELAY_MS = 5_000
_ANSWER = ExportTraceServiceResponse().SerializeToString()


class TraceReceiver:
    """POST /v1/traces (OTLP/HTTP, protobuf): the start time of every span received, by service."""

    def __init__(self) -> None:
        self.port = 0
        self._connections: set[asyncio.StreamWriter] = set()
        self._starts: dict[str, list[int]] = defaultdict(list)  # service name -> span start times (Unix ns)

    @property
    def endpoint(self) -> str:
        """As OTEL_EXPORTER_OTLP_ENDPOINT names a collector: the exporter adds /v1/traces."""
        return f"http://127.0.0.1:{self.port}"

    def started_between(self, start_ns: int, end_ns: int) -> dict[str, int]:
        """Spans started in [start_ns, end_ns], by service."""
        counts = {}
        for service, starts in self._starts.items():
            starts.sort()  # exports arrive per service in the order spans ended, not started
            counts[service] = bisect_right(starts, end_ns) - bisect_left(starts, start_ns)
        return counts

    async def settled(self) -> None:
        """Every span that ended until now has arrived (a service exports what it holds after EXPORT_DELAY_MS)."""
        await asyncio.sleep(EXPORT_DELAY_MS / 1000 + 1)

    def _received(self, body: bytes) -> None:
        for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
            service = next((attribute.value.string_value for attribute in resource_spans.resource.attributes
                            if attribute.key == "service.name"), "unknown")
            self._starts[service] += [span.start_time_unix_nano for scope in resource_spans.scope_spans
                                      for span in scope.spans]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """HTTP/1.1 as the exporter speaks it (requests: keep-alive, a Content-Length body); nothing more."""
        self._connections.add(writer)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                method, path, _ = head[0].split(" ", 2)
                headers = {name.strip().lower(): value.strip()
                           for name, _, value in (line.partition(":") for line in head[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                if method == "POST" and path == "/v1/traces":
                    self._received(gzip.decompress(body) if headers.get("content-encoding") == "gzip" else body)
                    status, answer = "200 OK", _ANSWER
                else:
                    status, answer = "404 Not Found", b""
                writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\n"
                             f"Content-Length: {len(answer)}\r\n\r\n".encode() + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the exporter closed its connection (its process stopped)
        finally:
            self._connections.discard(writer)
            writer.close()

    async def close(self) -> None:
        """No more requests; the connections still open (exporters keep theirs) end as at their end of file."""
        for writer in list(self._connections):
            writer.close()
        while self._connections:
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def trace_receiver() -> AsyncIterator[TraceReceiver]:
    receiver = TraceReceiver()
    server = await asyncio.start_server(receiver._serve, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()
        await receiver.close()
