"""The ``OTEL_*`` environment variables, read as the OpenTelemetry SDK specification says.

The config's ``monitoring`` section decides *what* is emitted (which exporters, which signals,
the sampling ratio, the experiment's resource attributes); the environment says *where it goes*
and what the deployment calls the service, exactly as every OpenTelemetry SDK and collector
deployment expects:

============================================  ===============================================
variable                                      effect
============================================  ===============================================
``OTEL_SDK_DISABLED=true``                    no-op providers for every signal
``OTEL_EXPORTER_OTLP_ENDPOINT``               base URL; ``/v1/traces`` etc. are appended
``OTEL_EXPORTER_OTLP_{SIGNAL}_ENDPOINT``      that signal's URL, used as is (wins)
``OTEL_EXPORTER_OTLP_HEADERS``                ``k=v,k2=v2`` (W3C baggage format, URL-decoded)
``OTEL_EXPORTER_OTLP_{SIGNAL}_HEADERS``       that signal's headers (replace the generic ones)
``OTEL_EXPORTER_OTLP_TIMEOUT`` (+ per signal)  export timeout in milliseconds
``OTEL_EXPORTER_OTLP_PROTOCOL`` (+ signal)    only ``http/protobuf`` is supported
``OTEL_SERVICE_NAME``                         ``service.name`` (wins over everything)
``OTEL_RESOURCE_ATTRIBUTES``                  ``k=v,...`` resource attributes (URL-decoded)
``OTEL_TRACES_SAMPLER`` / ``_ARG``            the sampler (wins over ``sample_ratio``)
============================================  ===============================================

``{SIGNAL}`` is ``TRACES``, ``METRICS`` or ``LOGS``. As the specification requires, an empty
value is the same as unset, and a value that cannot be used (an unknown sampler, a ratio out of
range, a URL without a scheme, an unsupported protocol) is ignored with a warning naming the
variable -- logged on the ``aiconfig.monitoring`` logger and kept in :attr:`OTelEnv.warnings`,
so it lands in the run manifest too. Header values are secrets: :meth:`OTelEnv.record` keeps
their names only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from opentelemetry.util.re import parse_env_headers

__all__ = ["SIGNALS", "OTelEnv", "SamplerSpec", "read_otel_env"]

Signal = Literal["traces", "metrics", "logs"]
SIGNALS: tuple[Signal, ...] = ("traces", "metrics", "logs")

_log = logging.getLogger("aiconfig.monitoring")

_SAMPLERS = frozenset(
    {
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    }
)
_UNSUPPORTED_SAMPLERS = frozenset({"jaeger_remote", "parentbased_jaeger_remote", "xray"})
_HEADER_VARS = (
    "OTEL_EXPORTER_OTLP_HEADERS",
    *(f"OTEL_EXPORTER_OTLP_{s.upper()}_HEADERS" for s in SIGNALS),
)


@dataclass(frozen=True)
class SamplerSpec:
    """``OTEL_TRACES_SAMPLER`` (and its ratio argument, for the ratio samplers)."""

    name: str
    ratio: float | None = None

    def describe(self) -> str:
        return self.name if self.ratio is None else f"{self.name}({self.ratio:g})"


@dataclass(frozen=True)
class OTelEnv:
    """What the ``OTEL_*`` variables said, resolved; empty when none is set."""

    sdk_disabled: bool = False
    service_name: str | None = None
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    endpoints: Mapping[str, str] = field(default_factory=dict)  # signal -> full URL
    endpoint_vars: Mapping[str, str] = field(default_factory=dict)  # signal -> variable
    headers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # signal -> headers
    timeouts_s: Mapping[str, float] = field(default_factory=dict)  # signal -> seconds
    sampler: SamplerSpec | None = None
    variables: Mapping[str, str] = field(default_factory=dict)  # every OTEL_* seen (raw)
    warnings: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        """JSON-safe record for the run manifest and provenance: secrets redacted."""
        shown: dict[str, str] = {}
        for name, value in sorted(self.variables.items()):
            if name in _HEADER_VARS:
                keys = sorted(parse_env_headers(value, liberal=True))
                shown[name] = ",".join(f"{k}=<redacted>" for k in keys)
            else:
                shown[name] = value
        effective: dict[str, Any] = {"sdk_disabled": self.sdk_disabled}
        if self.service_name:
            effective["service.name"] = self.service_name
        if self.resource_attributes:
            effective["resource_attributes"] = dict(self.resource_attributes)
        if self.endpoints:
            effective["endpoints"] = dict(self.endpoints)
        if self.headers:
            effective["headers"] = {s: sorted(h) for s, h in self.headers.items()}
        if self.timeouts_s:
            effective["timeouts_s"] = dict(self.timeouts_s)
        if self.sampler is not None:
            effective["sampler"] = self.sampler.describe()
        return {"variables": shown, "effective": effective, "warnings": list(self.warnings)}


def _get(env: Mapping[str, str], name: str) -> str | None:
    """The variable's value, stripped; None when unset or empty (the spec: the same thing)."""
    value = env.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _endpoint(value: str, var: str, warnings: list[str]) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        warnings.append(
            f"{var}={value!r} ignored: not an http(s) URL; set it like http://collector:4318"
        )
        return None
    return value


def read_otel_env(env: Mapping[str, str]) -> OTelEnv:
    """Read and resolve every ``OTEL_*`` variable aiconfig honours (see the module docstring)."""
    warnings: list[str] = []
    variables = {k: v for k, v in env.items() if k.startswith("OTEL_") and v.strip()}

    disabled_raw = _get(env, "OTEL_SDK_DISABLED")
    sdk_disabled = disabled_raw is not None and disabled_raw.lower() == "true"
    if disabled_raw is not None and disabled_raw.lower() not in ("true", "false"):
        warnings.append(f"OTEL_SDK_DISABLED={disabled_raw!r} read as false: use true or false")

    endpoints: dict[str, str] = {}
    endpoint_vars: dict[str, str] = {}
    base_var = "OTEL_EXPORTER_OTLP_ENDPOINT"
    base = _get(env, base_var)
    if base is not None:
        base = _endpoint(base, base_var, warnings)
    headers: dict[str, dict[str, str]] = {}
    generic_headers = _get(env, "OTEL_EXPORTER_OTLP_HEADERS")
    timeouts: dict[str, float] = {}
    for signal in SIGNALS:
        sig_var = f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
        own = _get(env, sig_var)
        url = _endpoint(own, sig_var, warnings) if own is not None else None
        if url is not None:
            endpoints[signal], endpoint_vars[signal] = url, sig_var
        elif base is not None:
            endpoints[signal] = f"{base.rstrip('/')}/v1/{signal}"
            endpoint_vars[signal] = base_var
        raw_headers = _get(env, f"OTEL_EXPORTER_OTLP_{signal.upper()}_HEADERS") or generic_headers
        if raw_headers is not None:
            headers[signal] = dict(parse_env_headers(raw_headers, liberal=True))
        for var in (f"OTEL_EXPORTER_OTLP_{signal.upper()}_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
            raw = _get(env, var)
            if raw is None:
                continue
            try:
                ms = float(raw)
            except ValueError:
                ms = -1.0
            if not math.isfinite(ms) or ms < 0:
                warnings.append(f"{var}={raw!r} ignored: a timeout in milliseconds, e.g. 10000")
                continue
            timeouts[signal] = ms / 1000.0
            break
        for var in (f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
            raw = _get(env, var)
            if raw is None:
                continue
            if raw != "http/protobuf":
                warnings.append(
                    f"{var}={raw!r} ignored: aiconfig exports OTLP over HTTP (http/protobuf) "
                    "only; point the endpoint at the collector's HTTP port (4318)"
                )
            break
    warnings[:] = list(dict.fromkeys(warnings))  # a generic variable is read once per signal

    resource: dict[str, str] = {}
    raw_resource = _get(env, "OTEL_RESOURCE_ATTRIBUTES")
    if raw_resource is not None:
        for item in raw_resource.split(","):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                warnings.append(
                    f"OTEL_RESOURCE_ATTRIBUTES: {item.strip()!r} ignored: not a key=value pair"
                )
                continue
            resource[key.strip()] = unquote(value.strip())

    return OTelEnv(
        sdk_disabled=sdk_disabled,
        service_name=_get(env, "OTEL_SERVICE_NAME") or resource.get("service.name"),
        resource_attributes=resource,
        endpoints=endpoints,
        endpoint_vars=endpoint_vars,
        headers=headers,
        timeouts_s=timeouts,
        sampler=_sampler_spec(env, warnings),
        variables=variables,
        warnings=tuple(warnings),
    )


def _sampler_spec(env: Mapping[str, str], warnings: list[str]) -> SamplerSpec | None:
    name = _get(env, "OTEL_TRACES_SAMPLER")
    arg = _get(env, "OTEL_TRACES_SAMPLER_ARG")
    if name is None:
        if arg is not None:
            warnings.append(
                "OTEL_TRACES_SAMPLER_ARG ignored: it only applies with OTEL_TRACES_SAMPLER="
                "traceidratio or parentbased_traceidratio"
            )
        return None
    name = name.lower()
    if name in _UNSUPPORTED_SAMPLERS or name not in _SAMPLERS:
        why = "not supported here" if name in _UNSUPPORTED_SAMPLERS else "unknown"
        warnings.append(
            f"OTEL_TRACES_SAMPLER={name!r} ignored ({why}); monitoring.sample_ratio applies. "
            f"Use one of: {', '.join(sorted(_SAMPLERS))}"
        )
        return None
    if not name.endswith("traceidratio"):
        return SamplerSpec(name)
    ratio = 1.0  # the specification's default when the argument is unset or invalid
    if arg is not None:
        try:
            value = float(arg)
        except ValueError:
            value = math.nan
        if 0.0 <= value <= 1.0:
            ratio = value
        else:
            warnings.append(
                f"OTEL_TRACES_SAMPLER_ARG={arg!r} ignored: a probability in [0, 1]; using 1.0"
            )
    return SamplerSpec(name, ratio)


def log_warnings(found: OTelEnv) -> None:
    for text in found.warnings:
        _log.warning("%s", text)
