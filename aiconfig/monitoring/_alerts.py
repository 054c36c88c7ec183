"""Latency alerting with per-model thresholds and dampening.

A call whose latency is above its model's threshold (``monitoring.latency_thresholds_ms``; the
key ``"*"`` is the default for models not listed) is a *breach*. Breaches pass a dampener: at
most ``alert.max_alerts`` alerts per model in any sliding ``alert.window_s`` window. So a storm
of N breaches yields at most ``max_alerts * ceil(duration / window_s)`` alerts; the rest are
counted as suppressed, and the next alert that does fire says how many were suppressed before it.

An alert is emitted four ways:

* an OpenTelemetry log record (event ``aiconfig.alert``, severity WARN) and a stdlib ``logging``
  warning on the ``aiconfig.alerts`` logger;
* a span event ``aiconfig.alert`` on the span of the call that breached;
* the counter ``aiconfig.alerts`` (``state`` = ``emitted`` or ``suppressed``), so a dashboard sees
  the storm's true size even though few alerts fire;
* an optional JSON POST to ``alert.webhook_url`` on a background thread (never blocking the
  call). With ``AP_NO_NETWORK=1`` a non-loopback webhook is refused and counted, not sent.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry._logs import SeverityNumber

from aiconfig import AlertConfig
from aiconfig._network import is_loopback_url, is_offline

__all__ = ["Alert", "AlertManager"]

_log = logging.getLogger("aiconfig.alerts")


def _shown(url: str) -> str:
    """A webhook URL for a log line: scheme and host only (the path is the bearer secret)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<webhook>"
    return f"{parts.scheme}://{host}{port}/<redacted>"


@dataclass(frozen=True)
class Alert:
    """One emitted latency alert."""

    model: str
    latency_ms: float
    threshold_ms: float
    window_s: float
    suppressed_before: int
    wall_time: float

    def message(self) -> str:
        text = (
            f"latency breach: model '{self.model}' took {self.latency_ms:.1f} ms "
            f"(threshold {self.threshold_ms:g} ms)"
        )
        if self.suppressed_before:
            text += f"; {self.suppressed_before} earlier breaches were suppressed"
        return text


class AlertManager:
    """Checks latencies against thresholds and emits dampened alerts.

    Use an instance as the inference latency observer: ``model.add_observer(alerts)``.
    Thread-safe. ``close`` waits for webhook deliveries in flight (bounded by their timeout).
    """

    def __init__(
        self,
        thresholds_ms: Mapping[str, float],
        cfg: AlertConfig,
        *,
        meter_provider: metrics.MeterProvider | None = None,
        logger_provider: _logs.LoggerProvider | None = None,
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
        webhook_timeout_s: float = 2.0,
    ) -> None:
        self.thresholds_ms = dict(thresholds_ms)
        self.cfg = cfg
        self._clock = clock
        self._environ = environ
        self._webhook_timeout_s = webhook_timeout_s
        self._lock = threading.Lock()
        self._recent: dict[str, deque[float]] = {}
        self._suppressed: dict[str, int] = {}
        self._threads: list[threading.Thread] = []
        self.emitted: list[Alert] = []
        self.emergencies: list[dict[str, Any]] = []
        self.suppressed_total = 0
        self.webhook_results: list[str] = []
        meter = metrics.get_meter("aiconfig.monitoring", meter_provider=meter_provider)
        self._m_alerts = meter.create_counter(
            "aiconfig.alerts", unit="{alert}", description="Latency breaches, emitted or suppressed"
        )
        self._m_webhook = meter.create_counter(
            "aiconfig.alerts.webhook", unit="{request}", description="Alert webhook deliveries"
        )
        self._otel_log = _logs.get_logger("aiconfig.alerts", logger_provider=logger_provider)

    def threshold_for(self, model: str) -> float | None:
        return self.thresholds_ms.get(model, self.thresholds_ms.get("*"))

    def __call__(
        self, model: str, latency_ms: float, ok: bool, span: trace.Span | None = None
    ) -> None:
        """The :data:`aiconfig.inference.LatencyObserver` hook."""
        self.observe(model, latency_ms, span)

    def observe(
        self, model: str, latency_ms: float, span: trace.Span | None = None
    ) -> Alert | None:
        """Record one latency; returns the alert if one was emitted (None if none or damped).

        The alert's span event goes on ``span`` (the call's span), else on the current span.
        """
        threshold = self.threshold_for(model)
        if threshold is None or latency_ms <= threshold or not self.cfg.enabled:
            return None
        now = self._clock()
        with self._lock:
            recent = self._recent.setdefault(model, deque())
            while recent and now - recent[0] >= self.cfg.window_s:
                recent.popleft()
            if len(recent) >= self.cfg.max_alerts:
                self._suppressed[model] = self._suppressed.get(model, 0) + 1
                self.suppressed_total += 1
                alert = None
            else:
                recent.append(now)
                alert = Alert(
                    model,
                    latency_ms,
                    threshold,
                    self.cfg.window_s,
                    self._suppressed.pop(model, 0),
                    time.time(),
                )
                self.emitted.append(alert)
        state = "suppressed" if alert is None else "emitted"
        self._m_alerts.add(1, {"aiconfig.model": model, "state": state})
        if alert is not None:
            self._emit(alert, span or trace.get_current_span())
        return alert

    def emergency_override(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Alert that the run's config carries active emergency overrides (never dampened).

        ``records`` are ``cfg.provenance.emergency``; :func:`setup_for_run` calls this once,
        so the core need not know about monitoring. Emitted as the log event
        ``aiconfig.alert`` (``aiconfig.alert.kind`` = ``emergency_override``), a warning on
        the ``aiconfig.alerts`` logger, the ``aiconfig.alerts`` counter and the webhook.
        """
        for record in records:
            overrides = dict(record.get("overrides", {}))
            message = (
                f"emergency override active: {json.dumps(overrides, default=str)} on "
                f"{record.get('base')} (reason: {record.get('reason')}; expires "
                f"{record.get('expires')}; signed by {', '.join(record.get('signers', []))})"
            )
            attrs: dict[str, Any] = {
                "aiconfig.alert.kind": "emergency_override",
                "aiconfig.emergency.file": str(record.get("file")),
                "aiconfig.emergency.reason": str(record.get("reason")),
                "aiconfig.emergency.expires": str(record.get("expires")),
                "aiconfig.emergency.paths": sorted(overrides),
                "aiconfig.emergency.signers": list(record.get("signers", [])),
            }
            _log.warning(message)
            self._otel_log.emit(
                body=message,
                severity_number=SeverityNumber.WARN,
                severity_text="WARN",
                attributes=attrs,
                event_name="aiconfig.alert",
            )
            self._m_alerts.add(1, {"aiconfig.alert.kind": "emergency_override", "state": "emitted"})
            self.emergencies.append(dict(record))
            if self.cfg.webhook_url:
                body = {"type": "aiconfig.emergency_override", **dict(record)}
                self._post_json(self.cfg.webhook_url, body)

    def _emit(self, alert: Alert, span: trace.Span) -> None:
        attrs: dict[str, Any] = {
            "aiconfig.model": alert.model,
            "aiconfig.alert.latency_ms": alert.latency_ms,
            "aiconfig.alert.threshold_ms": alert.threshold_ms,
            "aiconfig.alert.suppressed_before": alert.suppressed_before,
        }
        message = alert.message()
        _log.warning(message)
        self._otel_log.emit(
            body=message,
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            attributes=attrs,
            event_name="aiconfig.alert",
        )
        span.add_event("aiconfig.alert", attrs)
        if self.cfg.webhook_url:
            self._post(self.cfg.webhook_url, alert)

    def _post(self, url: str, alert: Alert) -> None:
        self._post_json(url, {"type": "aiconfig.latency_breach", **asdict(alert)})

    def _post_json(self, url: str, payload: Mapping[str, Any]) -> None:
        if is_offline(self._environ) and not is_loopback_url(url):
            self._webhook_done("refused_offline")
            _log.warning("offline mode (AP_NO_NETWORK=1): alert webhook %s not called", _shown(url))
            return
        body = json.dumps(payload, default=str).encode()
        thread = threading.Thread(
            target=self._deliver, args=(url, body), name="aiconfig-alert-webhook", daemon=True
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _deliver(self, url: str, body: bytes) -> None:
        # stdlib on purpose: one small POST on a background thread needs no async client, and
        # alerting must keep working with only the monitoring extra installed.
        req = urllib.request.Request(  # noqa: S310 - URL is an http(s) Url validated by the schema
            url, data=body, headers={"content-type": "application/json"}, method="POST"
        )
        # No proxies: HTTP(S)_PROXY must not reroute (or leak) an alert meant for a local hook.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=self._webhook_timeout_s) as resp:
                result = "sent" if 200 <= resp.status < 300 else f"http_{resp.status}"
        except OSError as exc:
            result = "failed"
            _log.warning("alert webhook %s failed: %s", _shown(url), str(exc).replace(url, "<url>"))
        self._webhook_done(result)

    def _webhook_done(self, result: str) -> None:
        with self._lock:
            self.webhook_results.append(result)
        self._m_webhook.add(1, {"result": result})

    def close(self, timeout_s: float | None = None) -> None:
        """Wait for webhook deliveries in flight. Safe to call twice."""
        with self._lock:
            threads, self._threads = self._threads, []
        for t in threads:
            t.join(timeout_s if timeout_s is not None else self._webhook_timeout_s + 1.0)
