"""What a run tells monitoring: a Prometheus text file at the end of a cron run (`--metrics-file`)
and, with the `otel` extra, OpenTelemetry traces and metrics exported over OTLP/HTTP."""
