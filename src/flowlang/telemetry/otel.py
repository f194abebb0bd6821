"""OpenTelemetry for runs (`pip install 'flowlang[otel]'`): a trace per run with a span per HTTP
attempt, per send and per sampled loop iteration; metrics for records, request latency, retries and
rate-limit waits. Exported over OTLP/HTTP when the standard OpenTelemetry environment asks for it
(OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / _METRICS_ENDPOINT; OTEL_SDK_DISABLED,
OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and OTEL_TRACES_SAMPLER are honoured by the SDK).

Iterations are sampled so a 100,000-record run does not make 100,000 spans: every iteration up to
FLOWLANG_OTEL_ITERATIONS (default 1,000) per run, then one in FLOWLANG_OTEL_ITERATION_EVERY (100)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any
from urllib.parse import urlsplit

from flowlang.runtime.observe import RunObserver

log = logging.getLogger("flowlang.telemetry")


def _ns(monotonic_seconds: float, anchor: tuple[float, int]) -> int:
    """A monotonic reading as wall-clock nanoseconds (spans need wall time; durations need monotonic)."""
    mono0, wall0 = anchor
    return wall0 + int((monotonic_seconds - mono0) * 1e9)


class Telemetry:
    """The providers one process shares; `observer()` gives one run its own observer."""

    def __init__(self, tracer_provider: Any, meter_provider: Any, env: Mapping[str, str] | None = None) -> None:
        from flowlang import __version__

        env = os.environ if env is None else env
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.tracer = tracer_provider.get_tracer("flowlang", __version__)
        meter = meter_provider.get_meter("flowlang", __version__)
        self.records = meter.create_counter("flowlang.records", "{record}", "Records by what happened to them")
        self.runs = meter.create_counter("flowlang.runs", "{run}", "Runs by final status")
        self.latency = meter.create_histogram("flowlang.request.duration", "s", "HTTP attempt duration")
        self.retries = meter.create_counter("flowlang.request.retries", "{retry}", "Pauses before another attempt")
        self.waits = meter.create_histogram("flowlang.rate_limit.wait", "s", "Time a request waited for its slot")
        self.sends = meter.create_counter("flowlang.sends", "{send}", "Records written, by outcome")
        self.iterations_in_full = int(env.get("FLOWLANG_OTEL_ITERATIONS", "1000"))
        self.iteration_every = max(1, int(env.get("FLOWLANG_OTEL_ITERATION_EVERY", "100")))

    def observer(self) -> OtelRunObserver:
        return OtelRunObserver(self)

    def shutdown(self) -> None:
        """Export what is pending and stop (end of a CLI run)."""
        for provider in (self.tracer_provider, self.meter_provider):
            try:
                provider.force_flush()
                provider.shutdown()
            except Exception as e:  # an unreachable collector must not fail the run
                log.warning(f"telemetry export failed: {type(e).__name__}")


class OtelRunObserver(RunObserver):
    """The events of one run as spans (children of the run's span) and metrics."""

    active = True

    def __init__(self, telemetry: Telemetry) -> None:
        self.t = telemetry
        self.anchor = (time.monotonic(), time.time_ns())
        self.flow = ""
        self.span: Any = None
        self.context: Any = None
        self.token: Any = None

    def _attrs(self, **extra: Any) -> dict[str, Any]:
        return {"flowlang.flow": self.flow, **{k: v for k, v in extra.items() if v is not None}}

    def run_started(self, flow: str, job_id: int | None, kind: str) -> None:
        from opentelemetry import context, trace

        self.flow = flow
        self.span = self.t.tracer.start_span(f"flowlang run {flow}", kind=trace.SpanKind.INTERNAL,
                                             attributes=self._attrs(**{"flowlang.job_id": job_id,
                                                                       "flowlang.job_kind": kind}))
        self.context = trace.set_span_in_context(self.span)
        self.token = context.attach(self.context)

    def run_finished(self, status: str, stats: Any, error: str | None) -> None:
        from opentelemetry import context
        from opentelemetry.trace import Status, StatusCode

        for outcome in ("read", "sent", "failed", "skipped", "emitted"):
            count = int(getattr(stats, outcome))
            if count:
                self.t.records.add(count, {"flowlang.flow": self.flow, "flowlang.outcome": outcome})
        self.t.runs.add(1, {"flowlang.flow": self.flow, "flowlang.status": status})
        if self.span is None:
            return
        self.span.set_attributes({"flowlang.status": status, "flowlang.records.read": int(stats.read),
                                  "flowlang.records.failed": int(stats.failed),
                                  "flowlang.records.sent": int(stats.sent)})
        if status == "failed":
            self.span.set_status(Status(StatusCode.ERROR, error or "failed"))
        self.span.end()
        if self.token is not None:
            try:
                context.detach(self.token)
            except ValueError:  # finished in another context than it started (a cancelled task)
                pass
            self.token = None

    def request(self, connection: str, method: str, url: str, status: int | None, seconds: float,
                error: str | None = None) -> None:
        from opentelemetry.trace import Status, StatusCode

        end = time.monotonic()
        parts = urlsplit(url)
        attrs = self._attrs(**{"http.request.method": method, "server.address": parts.hostname,
                               "url.full": url, "http.response.status_code": status,
                               "flowlang.connection": connection, "error.type": error})
        span = self.t.tracer.start_span(f"{method}", attributes=attrs, start_time=_ns(end - seconds, self.anchor))
        if status is None or status >= 500:
            span.set_status(Status(StatusCode.ERROR, error or str(status)))
        span.end(end_time=_ns(end, self.anchor))
        self.t.latency.record(seconds, {"flowlang.connection": connection, "http.request.method": method,
                                        "http.response.status_code": status or 0})

    def retry(self, connection: str, method: str, url: str, delay: float, why: str) -> None:
        self.t.retries.add(1, {"flowlang.connection": connection, "http.request.method": method})
        from opentelemetry import trace

        trace.get_current_span().add_event("retry", {"flowlang.connection": connection, "delay_s": delay,
                                                     "reason": why})

    def rate_limited(self, connection: str, seconds: float) -> None:
        self.t.waits.record(seconds, {"flowlang.connection": connection})

    def iteration(self, loop: str, index: int) -> AbstractContextManager[Any]:
        if index >= self.t.iterations_in_full and index % self.t.iteration_every:
            return nullcontext()
        return self._iteration_span(loop, index)

    @contextmanager
    def _iteration_span(self, loop: str, index: int) -> Iterator[Any]:
        from opentelemetry.trace import Status, StatusCode

        with self.t.tracer.start_as_current_span(f"iteration {loop}", attributes=self._attrs(
                **{"flowlang.loop": loop, "flowlang.iteration": index}), record_exception=False,
                set_status_on_exception=False) as span:
            try:
                yield span
            except BaseException as e:
                span.set_status(Status(StatusCode.ERROR, type(e).__name__))
                raise

    def send(self, connection: str, operation: str, ok: bool, seconds: float) -> None:
        self.t.sends.add(1, {"flowlang.connection": connection, "flowlang.operation": operation,
                             "flowlang.ok": ok})
        end = time.monotonic()
        span = self.t.tracer.start_span(f"send {connection}.{operation}", attributes=self._attrs(
            **{"flowlang.connection": connection, "flowlang.operation": operation, "flowlang.ok": ok}),
            start_time=_ns(end - seconds, self.anchor))
        span.end(end_time=_ns(end, self.anchor))


def wanted(env: Mapping[str, str]) -> bool:
    """Whether the OpenTelemetry environment asks for export."""
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return any(env.get(k) for k in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                                     "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))


def from_environment(env: Mapping[str, str] | None = None) -> Telemetry | None:
    """OTLP/HTTP exporters as the OpenTelemetry environment variables configure them, or None when
    export is not asked for. Without the `otel` extra, a warning says what to install."""
    env = os.environ if env is None else env
    if not wanted(env):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed: "
                    "pip install 'flowlang[otel]'")
        return None
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "flowlang")})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=60_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    return Telemetry(tracer_provider, meter_provider, env)
