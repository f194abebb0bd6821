"""OpenTelemetry: a run's spans and metrics with the SDK's in-memory exporters, and the CLI exporting
over OTLP/HTTP to a local receiver (protobuf decoded with opentelemetry-proto)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

import flowlang
from conftest import run_cli
from fakeapi import FakeApi

SECRET = 'tok"en\\é' + "k" * 510

FLOW = """
flow "otel"
use api = http(base_url: env.API, auth: api_key("key", secret.KEY, in: "query"), rate_limit: "20/second", retry: 3)
for each n in [1, 2, 3]
  call api.get('/items/{n}', n: n) as item
  emit item.n
end
call api.get("/flaky") as flaky
"""


def serve_items(api: FakeApi) -> None:
    calls = {"flaky": 0}

    def flaky(req: Any) -> tuple[int, dict[str, str], Any]:
        calls["flaky"] += 1
        return (503, {"Retry-After": "0"}, {"error": "busy"}) if calls["flaky"] == 1 else (200, {}, {"ok": True})

    api.route("GET", r"/items/\d+", lambda req: (200, {}, {"n": int(req.path.rsplit("/", 1)[1])}))
    api.route("GET", "/flaky", flaky)


def test_spans_and_metrics_of_a_run(tmp_path: Path) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from flowlang.telemetry.otel import Telemetry

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    telemetry = Telemetry(tracer_provider, MeterProvider(metric_readers=[reader]))
    flow = flowlang.compile(FLOW, base_dir=tmp_path)
    with FakeApi() as api:
        serve_items(api)
        result = flow.run(env={"API": api.url, "KEY": SECRET}, observer=telemetry.observer())
    assert result.ok, result.error
    finished = spans.get_finished_spans()
    run_span = next(s for s in finished if s.name == "flowlang run otel")
    gets = [s for s in finished if s.name == "GET"]
    assert len(gets) == 5  # three items, the 503 and its retry
    iterations = [s for s in finished if s.name == "iteration n in [1, 2, 3] #1"]
    assert sorted(s.attributes["flowlang.iteration"] for s in iterations) == [0, 1, 2]
    assert all(s.parent is not None and s.parent.span_id == run_span.context.span_id for s in iterations)
    iteration_ids = {s.context.span_id for s in iterations}
    in_loop = [s for s in gets if "/items/" in s.attributes["url.full"]]
    assert len(in_loop) == 3 and all(s.parent is not None and s.parent.span_id in iteration_ids for s in in_loop)
    after_loop = [s for s in gets if "/flaky" in s.attributes["url.full"]]
    assert len(after_loop) == 2
    assert all(s.parent is not None and s.parent.span_id == run_span.context.span_id for s in after_loop)
    assert sorted(s.attributes["http.response.status_code"] for s in gets) == [200, 200, 200, 200, 503]
    assert all(s.attributes["server.address"] == "127.0.0.1" for s in gets)
    assert run_span.attributes["flowlang.records.read"] == result.stats.read
    assert all(SECRET not in str(s.attributes) and "key=***" in s.attributes["url.full"] for s in gets)
    metrics = {m.name: m for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
               for m in sm.metrics}
    records = {p.attributes["flowlang.outcome"]: p.value for p in metrics["flowlang.records"].data.data_points}
    assert records == {"read": result.stats.read, "emitted": 3}
    assert sum(p.value for p in metrics["flowlang.request.retries"].data.data_points) == 1
    assert sum(p.count for p in metrics["flowlang.request.duration"].data.data_points) == 5
    assert sum(p.count for p in metrics["flowlang.rate_limit.wait"].data.data_points) >= 1  # 20/second paces them
    runs = metrics["flowlang.runs"].data.data_points
    assert [(p.attributes["flowlang.status"], p.value) for p in runs] == [("ok", 1)]


class OtlpReceiver(BaseHTTPRequestHandler):
    """A local OTLP/HTTP collector: keeps each protobuf export request by path."""

    received: ClassVar[dict[str, list[bytes]]] = {}

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.setdefault(self.path, []).append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    OtlpReceiver.received = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), OtlpReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_cli_exports_over_otlp_http(tmp_path: Path, collector: str) -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    (tmp_path / "f.flow").write_text(FLOW)
    with FakeApi() as api:
        serve_items(api)
        proc = run_cli("run", "f.flow", cwd=tmp_path, env={"API": api.url, "KEY": SECRET,
                                                          "OTEL_EXPORTER_OTLP_ENDPOINT": collector,
                                                          "OTEL_SERVICE_NAME": "nightly-sync"})
    assert proc.returncode == 0, proc.stderr
    traces = [ExportTraceServiceRequest.FromString(b) for b in OtlpReceiver.received["/v1/traces"]]
    names = [s.name for t in traces for rs in t.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert names.count("GET") == 5 and "flowlang run otel" in names
    services = {a.value.string_value for t in traces for rs in t.resource_spans for a in rs.resource.attributes
                if a.key == "service.name"}
    assert services == {"nightly-sync"}
    metrics = [ExportMetricsServiceRequest.FromString(b) for b in OtlpReceiver.received["/v1/metrics"]]
    metric_names = {m.name for r in metrics for rm in r.resource_metrics for sm in rm.scope_metrics
                    for m in sm.metrics}
    assert {"flowlang.records", "flowlang.runs", "flowlang.request.duration"} <= metric_names
    for body in OtlpReceiver.received["/v1/traces"] + OtlpReceiver.received["/v1/metrics"]:
        assert SECRET.encode() not in body and SECRET[:20].encode() not in body


def test_no_export_without_the_environment_asking(tmp_path: Path) -> None:
    from flowlang.telemetry.otel import from_environment

    assert from_environment({}) is None
    assert from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"}) is None


SEND_FLOW = """
flow "otel sends"
use api = http(base_url: env.API, auth: bearer(secret.KEY))
use out = file(path: "out.jsonl")
for each n in [1, 2, 3, 4, 5, 6]
  if n <= 3
    send {n: n} to api.post("/one")
  else
    send {n: n} to out batch 2
  end
end
"""


def test_spans_per_send_and_sampled_iterations(tmp_path: Path) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from flowlang.telemetry.otel import Telemetry

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    # every iteration up to 2, then one in 3: iterations 0, 1, 3 get spans
    telemetry = Telemetry(tracer_provider, MeterProvider(metric_readers=[reader]),
                          {"FLOWLANG_OTEL_ITERATIONS": "2", "FLOWLANG_OTEL_ITERATION_EVERY": "3"})
    flow = flowlang.compile(SEND_FLOW, base_dir=tmp_path)

    def one(req: Any) -> tuple[int, dict[str, str], Any]:
        n = req.body["n"]
        return (422, {}, {"error": "no"}) if n == 2 else (201, {}, {"id": n})

    with FakeApi() as api:
        api.route("POST", "/one", one)
        result = flow.run(env={"API": api.url, "KEY": SECRET}, observer=telemetry.observer())
        assert api.count("POST", "/one") == 3
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 3
    assert result.stats.sent == 5 and result.stats.failed == 1
    finished = spans.get_finished_spans()
    iterations = sorted((s for s in finished if s.name.startswith("iteration ")),
                        key=lambda s: s.attributes["flowlang.iteration"])
    assert [s.attributes["flowlang.iteration"] for s in iterations] == [0, 1, 3]
    sends = [s for s in finished if s.name.startswith("send ")]
    index_of = {i.context.span_id: i.attributes["flowlang.iteration"] for i in iterations}
    ok_by_iteration = {index_of[s.parent.span_id]: s.attributes["flowlang.ok"] for s in sends
                       if s.name == "send api.post" and s.parent is not None and s.parent.span_id in index_of}
    assert ok_by_iteration == {0: True, 1: False}  # n = 1 sent, n = 2 refused, each under its iteration
    assert len([s for s in sends if s.name == "send api.post"]) == 3
    assert len([s for s in sends if s.name.startswith("send out.")]) == 2  # batches of 2 and of 1
    assert all(SECRET not in str(s.attributes) for s in finished)
    metrics = {m.name: m for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
               for m in sm.metrics}
    by_ok = {ok: sum(p.value for p in metrics["flowlang.sends"].data.data_points if p.attributes["flowlang.ok"] is ok)
             for ok in (True, False)}
    assert by_ok == {True: 2 + 2, False: 1}  # two single sends and two batches went through
