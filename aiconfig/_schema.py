"""The typed config hierarchy.

Every model is frozen (assignment raises) and forbids unknown keys. Collections are tuples and
read-only mappings, so a loaded config cannot be changed in place: forks make new objects.
Defaults come from the System 0 seed (capture at 30 fps of the "League of Legends" window,
H.264, webcam 640x480 off, system audio 44.1 kHz stereo off) and the harness contract
(vLLM sidecar at http://127.0.0.1:8000).
"""

from __future__ import annotations

import functools
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    SecretBytes,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from ._actions import (
    LEAGUE_KEY_VOCABULARY,
    InputActionMap,
    InputKey,
    check_action_map,
    resolve_action_map,
)
from ._keypath import KeyPath, Parts
from ._network import is_loopback_host
from ._provenance import Provenance

__all__ = [
    "SCHEMA_VERSION",
    "AIConfig",
    "AlertConfig",
    "AudioConfig",
    "CaptureConfig",
    "DatasetConfig",
    "FieldStep",
    "FrozenModel",
    "GameStateConfig",
    "InferenceConfig",
    "InputConfig",
    "MetaConfig",
    "ModelConfig",
    "MonitoringConfig",
    "OptimizerConfig",
    "TrainingConfig",
    "VLLMConfig",
    "WebcamConfig",
    "is_secret_field",
    "is_secret_path",
    "path_exists",
    "unwrap",
    "walk_schema",
]

SCHEMA_VERSION: Literal[1] = 1


def _freeze_mapping(value: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


FrozenFloatMap = Annotated[
    dict[str, Annotated[float, Field(gt=0)]],
    AfterValidator(_freeze_mapping),
    PlainSerializer(dict, return_type=dict),
]
FrozenStrMap = Annotated[
    dict[str, str],
    AfterValidator(_freeze_mapping),
    PlainSerializer(dict, return_type=dict),
]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]
Resolution = Annotated[tuple[PositiveInt, PositiveInt], Field(description="[width, height]")]
HttpUrl = Annotated[str, Field(pattern=r"^https?://[^\s/:]+(:\d{1,5})?(/\S*)?$")]


def _check_port(url: str | None) -> str | None:
    if url is None:
        return None
    m = re.match(r"^https?://[^\s/:]+:(\d+)", url)
    if m and not 0 < int(m.group(1)) < 65536:
        raise ValueError(f"port {m.group(1)} is outside 1-65535")
    return url


Url = Annotated[HttpUrl, AfterValidator(_check_port)]


class FrozenModel(BaseModel):
    """Base of every config model: immutable, unknown keys refused, defaults validated."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class MetaConfig(FrozenModel):
    """Identity and trust metadata; all of it is inside the signed bytes."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]
    version: Annotated[int, Field(ge=1, strict=True)]
    schema_version: Literal[1] = SCHEMA_VERSION
    expires: datetime | None = None
    locked: tuple[str, ...] = ()
    emergency: tuple[str, ...] = Field(
        default=(),
        description="paths an on-call principal may override for at most 24 h with a signed "
        "emergency override (aiconfig emergency); a section covers its keys",
    )
    description: str = ""

    @field_validator("expires", mode="before")
    @classmethod
    def _date_to_datetime(cls, v: Any) -> Any:
        if isinstance(v, date) and not isinstance(v, datetime):
            return datetime.combine(v, time.min, tzinfo=UTC)
        return v

    @field_validator("expires")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            return v.replace(tzinfo=UTC)
        return v


class ModelConfig(FrozenModel):
    """The policy network that maps frames and inputs to actions."""

    name: str = "lol-bc-policy"
    architecture: Literal["cnn_lstm", "transformer", "resnet_mlp"] = "transformer"
    checkpoint: str | None = None
    input_resolution: Resolution = (256, 144)
    frame_stack: Annotated[int, Field(ge=1, le=64)] = 4
    hidden_size: Annotated[int, Field(ge=8, le=65536)] = 512
    num_layers: Annotated[int, Field(ge=1, le=512)] = 6
    num_heads: Annotated[int, Field(ge=1, le=256)] = 8
    dropout: Probability = 0.1
    action_space: tuple[str, ...] = ("move", "attack", "q", "w", "e", "r", "d", "f")
    key_vocabulary: tuple[InputKey, ...] = LEAGUE_KEY_VOCABULARY
    action_map: InputActionMap | None = None
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"

    @field_validator("action_space")
    @classmethod
    def _unique_actions(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        dup = sorted({a for a in v if v.count(a) > 1})
        if dup:
            raise ValueError(f"action names must be unique; {', '.join(dup)} repeated")
        return v

    @field_validator("key_vocabulary")
    @classmethod
    def _unique_keys(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        dup = sorted({k for k in v if v.count(k) > 1})
        if dup:
            raise ValueError(f"keys must be unique; {', '.join(dup)} repeated")
        return v

    @field_validator("action_map")
    @classmethod
    def _actions_known(cls, v: Mapping[str, str] | None, info: ValidationInfo) -> Any:
        space = info.data.get("action_space")
        if space is None:  # action_space itself is invalid and reported
            return v
        return check_action_map(v, tuple(space))

    def resolved_action_map(self) -> Mapping[str, str]:
        """Input name -> action name: ``action_map``, or the League default restricted to
        ``action_space`` when it is not set."""
        return resolve_action_map(self.action_map, self.action_space)


class OptimizerConfig(FrozenModel):
    name: Literal["adamw", "adam", "sgd"] = "adamw"
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.01
    betas: tuple[Probability, Probability] = (0.9, 0.999)
    momentum: Probability = 0.9
    eps: Annotated[float, Field(gt=0.0)] = 1e-8


class DatasetConfig(FrozenModel):
    sessions_dir: str = "./sessions"
    train_split: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.9
    shuffle: bool = True
    num_workers: Annotated[int, Field(ge=0, le=256)] = 4
    min_session_s: Annotated[float, Field(ge=0.0)] = 10.0


class TrainingConfig(FrozenModel):
    seed: Annotated[int, Field(ge=0)] = 0
    epochs: PositiveInt = 10
    batch_size: PositiveInt = 64
    lr: Annotated[float, Field(gt=0.0, le=10.0)] = 3e-4
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_steps: Annotated[int, Field(ge=0)] = 500
    max_steps: PositiveInt | None = None
    gradient_clip: Annotated[float, Field(gt=0.0)] | None = 1.0
    label_smoothing: Probability = 0.0
    mixed_precision: bool = False
    deterministic: bool = True
    checkpoint_dir: str = "./checkpoints"
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)


class VLLMConfig(FrozenModel):
    """Client settings for the external vLLM sidecar (never launched by aiconfig)."""

    base_url: Url = "http://127.0.0.1:8000"
    model: str = "Qwen/Qwen2.5-0.5B-Instruct"
    api_key: SecretStr | None = None
    max_tokens: PositiveInt = 256
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 0.0
    connect_timeout_s: Annotated[float, Field(gt=0.0)] = 2.0
    retries_on_busy: Annotated[int, Field(ge=0, le=20)] = 2


class InferenceConfig(FrozenModel):
    """Every call has an explicit budget; overload is refused, not queued forever."""

    backend: Literal["torch", "vllm"] = "torch"
    latency_budget_ms: Annotated[float, Field(gt=0.0, le=600_000)] = 50.0
    max_concurrency: Annotated[int, Field(ge=1, le=4096)] = 4
    max_queue: Annotated[int, Field(ge=0, le=100_000)] = 16
    max_batch_size: Annotated[
        int,
        Field(
            ge=1,
            le=4096,
            description="rows of one forward pass; above 1, concurrent Torch calls are batched",
        ),
    ] = 1
    batch_window_ms: Annotated[
        float,
        Field(
            ge=0.0,
            le=60_000,
            description="how long a batch may wait for more calls after the oldest arrived "
            "(never past the most urgent call's budget); 0 batches what has already arrived",
        ),
    ] = 0.0
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    compile: bool = False
    seed: Annotated[int, Field(ge=0)] = 0
    vllm: VLLMConfig = Field(default_factory=VLLMConfig)


class AlertConfig(FrozenModel):
    """Alert dampening: at most ``max_alerts`` per ``window_s`` per model."""

    enabled: bool = True
    window_s: Annotated[float, Field(gt=0.0)] = 60.0
    max_alerts: PositiveInt = 3
    # A Slack/Teams webhook URL is a bearer secret: marked, so it is never echoed or shown.
    webhook_url: Url | None = Field(default=None, json_schema_extra={"secret": True})


class MonitoringConfig(FrozenModel):
    enabled: bool = True
    service_name: str = "aiconfig"
    exporters: tuple[Literal["console", "otlp", "jsonl"], ...] = ("jsonl",)
    otlp_endpoint: Url = "http://127.0.0.1:4318"
    otlp_token: SecretStr | None = None
    jsonl_path: str = "telemetry.jsonl"
    sample_ratio: Probability = 1.0
    latency_thresholds_ms: FrozenFloatMap = Field(default_factory=dict)
    resource_attributes: FrozenStrMap = Field(default_factory=dict)
    alert: AlertConfig = Field(default_factory=AlertConfig)


class WebcamConfig(FrozenModel):
    enabled: bool = False
    device: Annotated[int, Field(ge=0)] | str = 0
    resolution: Resolution = (640, 480)
    fps: Annotated[int, Field(gt=0, le=120)] = 30


class AudioConfig(FrozenModel):
    """System audio only (monitor/loopback devices); never a microphone."""

    enabled: bool = False
    sample_rate: Literal[44100, 48000] = 44100
    channels: Annotated[int, Field(ge=1, le=2)] = 2
    device: str | None = None


class InputConfig(FrozenModel):
    enabled: bool = True
    mouse_moves: bool = True
    focus_only: bool = True


class StorageConfig(FrozenModel):
    """Where a session's bytes go: the free-space margin checked before recording starts, and
    how often the growing files are forced to disk (the most a power cut can cost)."""

    # Refuse to start with less free space than this many minutes of recording (the estimate
    # from resolution, fps, audio and webcam); 0 disables the refusal (a warning remains).
    min_free_minutes: Annotated[float, Field(ge=0.0)] = 5.0
    # fsync the video fragments, the event journal and the audio at least this often; 0 leaves
    # flushing to the operating system (a power cut may then cost about 30 s).
    fsync_interval_s: Annotated[float, Field(ge=0.0, le=60.0)] = 1.0


class GameStateConfig(FrozenModel):
    """League of Legends' Live Client Data API, polled while a game window is recorded."""

    enabled: bool = True
    url: str = "https://127.0.0.1:2999/liveclientdata/"
    poll_hz: Annotated[float, Field(gt=0.0, le=30.0)] = 2.0
    # PEM file of the CA that signs the game's certificate; None: the bundled Riot root.
    ca_file: str | None = None
    # The name the game's certificate is issued to, checked instead of the URL's host (TLS is
    # always verified; this only says which name to expect). None: the URL's host.
    server_name: Annotated[str, Field(min_length=1)] | None = None
    timeout_s: Annotated[float, Field(gt=0.0, le=10.0)] = 1.0

    @field_validator("url")
    @classmethod
    def _loopback_https(cls, value: str) -> str:
        from urllib.parse import urlsplit

        host = urlsplit(value).hostname or ""
        if not value.startswith("https://") or not is_loopback_host(host):
            raise ValueError(
                "must be an https:// URL on the loopback interface (127.0.0.1, localhost or "
                "[::1]): the game serves its state on this machine only"
            )
        return value if value.endswith("/") else value + "/"


class CaptureConfig(FrozenModel):
    fps: Annotated[int, Field(gt=0, le=240)] = 30
    duration_s: Annotated[float, Field(gt=0.0)] | None = None
    window_title: Annotated[str, Field(min_length=1)] = "League of Legends"
    allow_any: bool = False
    codec: Literal["h264"] = "h264"
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"] = "superfast"
    crf: Annotated[int, Field(ge=0, le=51)] = 23
    keyframe_interval_s: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    resolution: Resolution = (1920, 1080)
    output_dir: str = "./sessions"
    webcam: WebcamConfig = Field(default_factory=WebcamConfig)
    audio: AudioConfig = Field(default_factory=AudioConfig)
    input: InputConfig = Field(default_factory=InputConfig)
    game_state: GameStateConfig = Field(default_factory=GameStateConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)


class AIConfig(FrozenModel):
    """One experiment: model, training, inference, monitoring and capture settings."""

    meta: MetaConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    capture: CaptureConfig = Field(default_factory=CaptureConfig)

    _provenance: Any = PrivateAttr(default=None)

    @property
    def provenance(self) -> Provenance:
        """Where this config came from (file digest, signers, env vars, value sources)."""
        if self._provenance is None:
            return Provenance(path="<memory>", sha256="", signed=False)
        return self._provenance  # type: ignore[no-any-return]

    def with_provenance(self, provenance: Provenance) -> AIConfig:
        """A copy of this config carrying ``provenance`` (the config itself is unchanged)."""
        clone = self.model_copy()
        object.__setattr__(clone, "__pydantic_private__", {"_provenance": provenance})
        return clone

    @model_validator(mode="after")
    def _locked_paths_exist(self) -> AIConfig:
        for dotted in self.meta.locked:
            if not path_exists(type(self), dotted):
                raise ValueError(f"meta.locked names '{dotted}', which is not a config path")
        for dotted in self.meta.emergency:
            if dotted.split(".", 1)[0] == "meta" or not path_exists(type(self), dotted):
                raise ValueError(f"meta.emergency names '{dotted}', which is not a config path")
        return self


def unwrap(annotation: Any) -> Any:
    """Strip ``Annotated[...]`` and ``Optional[...]`` down to the underlying type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation


@dataclass(frozen=True)
class FieldStep:
    """One part of a key path, looked up in the config model that holds it."""

    path: KeyPath  # the path up to and including this part
    model: type[BaseModel]  # the model the part was looked up in
    field: FieldInfo | None  # None: the part is not a field of ``model``

    @property
    def annotation(self) -> Any:
        """The field's full annotation, constraints included."""
        return self.field.rebuild_annotation() if self.field is not None else None

    @property
    def submodel(self) -> type[BaseModel] | None:
        """The config model this field holds (a section), or None for a value."""
        inner = unwrap(self.field.annotation) if self.field is not None else None
        return inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None


def walk_schema(path: Parts, root: type[BaseModel] | None = None) -> Iterator[FieldStep]:
    """The schema walker: one step per part of ``path`` while it stays inside the models.

    Stops after a part that is not a field (``step.field is None``) or that holds a value
    rather than a section; a consumer compares the number of steps with ``len(path)``.
    """
    model: type[BaseModel] = root or AIConfig
    for i, part in enumerate(path):
        field = model.model_fields.get(part) if isinstance(part, str) else None
        step = FieldStep(KeyPath(path[: i + 1]), model, field)
        yield step
        sub = step.submodel
        if sub is None:
            return
        model = sub


def is_secret_field(field: FieldInfo) -> bool:
    """True when the schema marks ``field`` secret: typed ``SecretStr``/``SecretBytes`` (also
    inside ``Optional``/``Annotated``), or declared with ``json_schema_extra={"secret": True}``."""
    extra = field.json_schema_extra
    if isinstance(extra, dict) and extra.get("secret") is True:
        return True
    return _has_secret_type(field.annotation)


def _has_secret_type(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, SecretStr | SecretBytes):
        return True
    return any(_has_secret_type(arg) for arg in typing.get_args(annotation))


def is_secret_path(path: Parts, root: type[BaseModel] | None = None) -> bool:
    """True when ``path`` names a secret field of ``root`` (default :class:`AIConfig`) or lies
    inside one. The schema decides, never the key's name: ``inference.vllm.api_key`` is a
    ``SecretStr``, ``inference.vllm.max_tokens`` an int. Unknown paths are not secret."""
    for step in walk_schema(path, root):
        if step.field is None:
            return False
        if is_secret_field(step.field):
            return True
    return False


@functools.lru_cache(maxsize=1024)
def path_exists(model: type[BaseModel], dotted: str) -> bool:
    """True when ``dotted`` names a field (or a sub-model) of ``model`` (the schema is fixed)."""
    try:
        path = KeyPath.parse(dotted)
    except ValueError:
        return False
    steps = list(walk_schema(path, model))
    return len(steps) == len(path) and steps[-1].field is not None
