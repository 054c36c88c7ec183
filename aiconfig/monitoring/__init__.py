"""OpenTelemetry set-up for aiconfig jobs (the only place that touches the SDK)."""
