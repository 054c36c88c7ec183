"""load(): interpolation, explained validation errors, immutability, provenance."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from aiconfig import AIConfig, ConfigFileError, ConfigValidationError, InterpolationError, load
from tests.conftest import MINIMAL, Writer


def _load(path: Path, **env: str) -> AIConfig:
    return load(path, allow_unsigned=True, env=env)


def test_minimal_config_gets_seed_defaults(write_config: Writer) -> None:
    cfg = _load(write_config(MINIMAL))
    assert cfg.capture.fps == 30
    assert cfg.capture.window_title == "League of Legends"
    assert cfg.capture.codec == "h264"
    assert cfg.capture.webcam.enabled is False
    assert cfg.capture.webcam.resolution == (640, 480)
    assert (cfg.capture.audio.sample_rate, cfg.capture.audio.channels) == (44100, 2)
    assert cfg.capture.audio.enabled is False
    assert cfg.inference.vllm.base_url == "http://127.0.0.1:8000"
    assert cfg.inference.backend == "torch"


def test_env_interpolation_is_typed_by_schema_and_sourced(write_config: Writer) -> None:
    text = MINIMAL + (
        "training:\n  batch_size: ${oc.env:BS,32}\n  lr: ${oc.env:LR}\n"
        "  dataset:\n    sessions_dir: ${oc.env:ROOT,/data}/sessions\n"
    )
    cfg = _load(write_config(text), BS="128", LR="1e-3")
    assert cfg.training.batch_size == 128
    assert cfg.training.lr == pytest.approx(1e-3)
    assert cfg.training.dataset.sessions_dir == "/data/sessions"
    prov = cfg.provenance
    assert prov.sources["training.batch_size"] == "env:BS"
    assert prov.sources["training.dataset.sessions_dir"] == "default of env:ROOT"
    assert prov.env_vars == {"BS": "128", "LR": "1e-3", "ROOT": None}


def test_env_values_are_never_reinterpolated(write_config: Writer) -> None:
    cfg = _load(
        write_config(
            MINIMAL
            + "meta_desc: 0\n".replace("meta_desc: 0\n", "")
            + "model:\n  name: ${oc.env:EVIL}\n"
        ),
        EVIL="${oc.env:HOME}",
    )
    assert cfg.model.name == "${oc.env:HOME}"


def test_all_missing_env_vars_reported_at_once(write_config: Writer) -> None:
    text = MINIMAL + "training:\n  lr: ${oc.env:NO_LR}\n  epochs: ${oc.env:NO_EPOCHS}\n"
    with pytest.raises(InterpolationError) as info:
        _load(write_config(text))
    msgs = [p.render() for p in info.value.problems]
    assert len(msgs) == 2
    assert "NO_LR is not set" in msgs[0] and ":5:" in msgs[0]
    assert "NO_EPOCHS" in msgs[1] and "training.epochs" in msgs[1]


def test_other_resolvers_are_refused(write_config: Writer) -> None:
    with pytest.raises(InterpolationError, match=r"resolver 'oc\.decode' is not allowed"):
        _load(write_config(MINIMAL + "model:\n  name: ${oc.decode:'1'}\n"))


def test_node_references_resolve(write_config: Writer) -> None:
    text = MINIMAL + "model:\n  name: m-${training.scheduler}\ntraining:\n  scheduler: linear\n"
    assert _load(write_config(text)).model.name == "m-linear"


def test_every_validation_error_at_once_with_line_path_expected_got_source(
    write_config: Writer,
) -> None:
    text = (
        "meta:\n  name: demo\n  version: 1\n"  # 1-3
        "trainig:\n  lr: 1\n"  # 4-5
        "capture:\n  fps: 0\n  window_title: no\n"  # 6-8
        "inference:\n  max_concurrency: ${oc.env:CONC}\n"  # 9-10
        "monitoring:\n  sample_ratio: 1.5\n"  # 11-12
    )
    with pytest.raises(ConfigValidationError) as info:
        _load(write_config(text), CONC="many")
    problems = {p.path: p for p in info.value.problems}
    assert set(problems) == {
        "trainig",
        "capture.fps",
        "capture.window_title",
        "inference.max_concurrency",
        "monitoring.sample_ratio",
    }
    assert problems["trainig"].line == 4
    assert problems["trainig"].hint == "did you mean 'training'?"
    assert problems["capture.fps"].line == 7
    assert problems["capture.fps"].expected == "greater than 0"
    assert problems["capture.fps"].got == "0"
    assert problems["capture.window_title"].hint == 'quote it: "no"'
    assert problems["inference.max_concurrency"].source == "env:CONC"
    assert problems["inference.max_concurrency"].got == "<not shown: from the environment>"
    assert problems["monitoring.sample_ratio"].line == 12
    for p in info.value.problems:
        assert "\n" not in p.render()


def test_nested_typo_gets_did_you_mean(write_config: Writer) -> None:
    with pytest.raises(ConfigValidationError, match="did you mean 'optimizer'"):
        _load(write_config(MINIMAL + "training:\n  optimzer:\n    lr: 1\n"))


def test_secrets_are_never_echoed(write_config: Writer) -> None:
    text = MINIMAL + (
        "monitoring:\n  otlp_token: [hunter2]\n"
        "inference:\n  vllm:\n    api_key: ${oc.env:KEY}\n    max_tokens: -1\n"
    )
    with pytest.raises(ConfigValidationError) as info:
        _load(write_config(text), KEY="sk-live-supersecret")
    rendered = str(info.value)
    assert "monitoring.otlp_token" in rendered
    assert "hunter2" not in rendered
    assert "supersecret" not in rendered
    cfg = _load(
        write_config(MINIMAL + "inference:\n  vllm:\n    api_key: ${oc.env:KEY}\n"),
        KEY="sk-live-supersecret",
    )
    assert "supersecret" not in repr(cfg)
    assert "supersecret" not in str(cfg.model_dump(mode="json"))
    assert cfg.provenance.to_dict()["env_vars"]["KEY"] == "<redacted>"


def test_config_is_immutable(write_config: Writer) -> None:
    cfg = _load(write_config(MINIMAL + "monitoring:\n  latency_thresholds_ms: {m: 5}\n"))
    with pytest.raises(ValidationError, match="frozen"):
        cfg.training.lr = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.monitoring.latency_thresholds_ms["m"] = 1.0
    with pytest.raises(AttributeError):
        cfg.model.action_space.append("x")  # type: ignore[attr-defined]


def test_provenance_digest_and_template(write_config: Writer) -> None:
    import hashlib

    path = write_config(MINIMAL)
    cfg = _load(path)
    assert cfg.provenance.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert cfg.provenance.template == MINIMAL
    assert cfg.provenance.signed is False


def test_locked_paths_must_exist(write_config: Writer) -> None:
    with pytest.raises(ConfigValidationError, match=r"capture\.fsp"):
        _load(write_config("meta:\n  name: d\n  version: 1\n  locked: [capture.fsp]\n"))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("meta:\n  name: d\n  version: '2'\n", "meta.version"),
        ("meta:\n  name: 'bad name!'\n  version: 1\n", "meta.name"),
        ("meta:\n  name: d\n", "meta.version: required key is missing"),
        ("model: {}\n", "meta: required key is missing"),
        (MINIMAL + "inference:\n  vllm:\n    base_url: http://127.0.0.1:70000\n", "port 70000"),
        (MINIMAL + "inference:\n  backend: onnx\n", "'torch' or 'vllm'"),
        (MINIMAL + "training:\n  epochs: 1.5\n", "training.epochs"),
        (MINIMAL + "capture:\n  webcam:\n    resolution: [640]\n", "capture.webcam.resolution"),
        (MINIMAL + "model:\n  dropout: 2\n", "less than or equal to 1"),
    ],
)
def test_wrong_values(write_config: Writer, text: str, needle: str) -> None:
    with pytest.raises(ConfigValidationError) as info:
        _load(write_config(text))
    assert needle in str(info.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="no such file"):
        load(tmp_path / "nope.yaml", allow_unsigned=True)
    with pytest.raises(ConfigFileError, match="is a directory"):
        load(tmp_path, allow_unsigned=True)


def test_load_is_deterministic(write_config: Writer) -> None:
    path = write_config((Path(__file__).parents[2] / "experiments/baseline.yaml").read_text())
    first = _load(path).model_dump(mode="json")
    assert all(_load(path).model_dump(mode="json") == first for _ in range(5))
