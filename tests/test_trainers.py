"""Trainers as config + trainer pairs: one config kind, the command line derived
from it (each default lives once), one checkpoint hash, one precision rule, one
output-directory rule. No model is loaded here: the trainers are replaced where a
command would start one."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path
from types import SimpleNamespace

import click
import pytest
import typer
from pydantic import BaseModel, ValidationError
from typer.testing import CliRunner

from cli import app
from core.config import Settings
from core.errors import InputError
from core.files import checkpoint_sha256
from core.training.meta_rm import MetaTrainConfig
from core.training.outputs import new_output_dir, output_dir
from core.training.precision import training_precision
from core.training.rft_data import RFTConfig
from core.training.rft_trainer import RFTTrainConfig
from core.training.rl import RLConfig

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [RFTConfig, RFTTrainConfig, MetaTrainConfig, RLConfig]
# (command, its config, {option parameter: config field} where the names differ,
#  config fields the command sets another way)
COMMANDS = [
    (("rft", "export"), RFTConfig, {"validation": "validation_fraction"}, set()),
    (("rft", "train"), RFTTrainConfig, {"hinted": "include_hinted"}, set()),
    (("meta", "train"), MetaTrainConfig, {}, set()),
    (("rl", "train"), RLConfig, {}, {"reply_prefix"}),  # from --prefill/--no-prefill
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.__name__)
def test_every_trainer_config_is_the_same_kind(config: type[BaseModel]):
    assert config.model_config.get("frozen") is True
    assert config.model_config.get("extra") == "forbid"
    undescribed = [n for n, f in config.model_fields.items() if not f.description]
    assert undescribed == []
    made = config()
    with pytest.raises(ValidationError):
        config(no_such_field=1)
    with pytest.raises(ValidationError):
        made.seed = 3  # type: ignore[misc]


def command(path: tuple[str, ...]) -> click.Command:
    group = typer.main.get_command(app)
    for name in path:
        group = group.commands[name]  # type: ignore[attr-defined]
    return group


@pytest.mark.parametrize(("path", "config", "renamed", "elsewhere"), COMMANDS,
                         ids=lambda v: " ".join(v) if isinstance(v, tuple) else None)
def test_cli_options_take_default_and_help_from_the_config(path, config, renamed, elsewhere):
    """Every config field is an option whose own default is None ("not given": the
    config's default applies), whose help is the field's description and whose
    shown default is the config's. A default written again in the CLI fails here."""
    params = {p.name: p for p in command(path).params}
    covered = set()
    for name, param in params.items():
        field = renamed.get(name, name)
        if field not in config.model_fields:
            continue
        covered.add(field)
        info = config.model_fields[field]
        assert param.default is None, f"--{name}: the default belongs in {config.__name__}"
        assert param.help == info.description
        expected = info.default if not isinstance(info.default, str) else repr(info.default)
        assert param.show_default == (False if info.default is None else str(expected))
    assert covered | elsewhere == set(config.model_fields)


def test_help_shows_the_configs_defaults():
    output = CliRunner().invoke(app, ["meta", "train", "--help"], terminal_width=200).output
    assert "[default: (2e-05)]" in output and "[default: (1024)]" in output
    output = CliRunner().invoke(app, ["rl", "train", "--help"], terminal_width=200).output
    assert "[default: (0.08)]" in output and "[default: (512)]" in output


@pytest.fixture
def env(tmp_path):
    return {"GRM_STUDIO_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}",
            "GRM_STUDIO_DATA_DIR": str(tmp_path / "data")}


def test_a_command_without_options_trains_with_the_configs_defaults(monkeypatch, env):
    import core.training
    import core.training.meta_rm
    import core.training.rl

    seen: dict[str, object] = {}

    def meta(engine, settings, config, **kw):
        seen["meta"], seen["meta_kw"] = config, kw
        raise InputError("stop here")

    def rl(engine, settings, config, **kw):
        seen["rl"], seen["rl_kw"] = config, kw
        raise InputError("stop here")

    def rft(engine, export, config, settings, **kw):
        seen["rft"] = config
        raise InputError("stop here")

    monkeypatch.setattr(core.training.meta_rm, "train_meta_rm", meta)
    monkeypatch.setattr(core.training.rl, "train_rl", rl)
    monkeypatch.setattr(core.training, "train_rft", rft)
    monkeypatch.setattr(core.training, "find_export", lambda *a: SimpleNamespace(ref="x:v1",
                                                                                 path="x"))
    runner = CliRunner()
    for args in (["meta", "train"], ["rl", "train", "--dataset", "toy"], ["rft", "train", "x"]):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 2 and "stop here" in result.output, result.output
    assert seen["meta"] == MetaTrainConfig()
    assert seen["rl"] == RLConfig()  # the embedded judge: replies start with the prefix
    assert seen["rft"] == RFTTrainConfig()
    assert seen["meta_kw"]["out_dir"] is None and seen["rl_kw"]["out_dir"] is None

    result = runner.invoke(app, ["meta", "train", "--epochs", "3", "--trainable-layers", "2"],
                           env=env)
    assert seen["meta"] == MetaTrainConfig(epochs=3, trainable_layers=2)
    result = runner.invoke(app, ["rl", "train", "--dataset", "toy", "--no-prefill"], env=env)
    assert seen["rl"] == RLConfig(reply_prefix="")
    result = runner.invoke(app, ["rft", "train", "x", "--lora", "--no-hinted"], env=env)
    assert seen["rft"] == RFTTrainConfig(lora=True, include_hinted=False)


def test_a_bad_option_is_one_line_naming_the_field(env):
    result = CliRunner().invoke(app, ["meta", "train", "--epochs", "0"], env=env)
    assert result.exit_code == 2
    assert "invalid option: epochs: Input should be greater than or equal to 1" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(app, ["rl", "train", "--dataset", "x", "--num-generations", "1"],
                                env=env)
    assert result.exit_code == 2 and "invalid option: num_generations" in result.output


# --- one output-directory rule ----------------------------------------------------------
def test_the_output_directory_rule(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    assert output_dir(settings, "rft", "a") == (tmp_path / "data" / "judges" / "a").resolve()
    assert output_dir(settings, "rl", "b") == (tmp_path / "data" / "judges" / "b").resolve()
    assert output_dir(settings, "meta-rm", "c") == (
        tmp_path / "data" / "meta-models" / "c").resolve()
    for bad in ("", ".", "..", "a/b", "../up", "a\\b"):
        with pytest.raises(InputError, match="cannot name a checkpoint"):
            output_dir(settings, "rft", bad)
    assert new_output_dir(settings, "meta-rm", "c") == output_dir(settings, "meta-rm", "c")
    (tmp_path / "data" / "meta-models" / "c").mkdir(parents=True)
    with pytest.raises(InputError, match="c exists already; choose another name"):
        new_output_dir(settings, "meta-rm", "c")
    given = tmp_path / "elsewhere"
    assert new_output_dir(settings, "rl", "ignored", given) == given.resolve()
    given.mkdir()
    with pytest.raises(InputError, match="already exists"):
        new_output_dir(settings, "rl", "ignored", given)


def test_meta_train_without_out_uses_the_rule_and_leaves_nothing_on_failure(env, tmp_path):
    result = CliRunner().invoke(app, ["meta", "train", "--dataset", "toy"], env=env)
    assert result.exit_code == 2 and "judge more labelled items" in result.output
    assert not (tmp_path / "data" / "meta-models").exists()
    (tmp_path / "data" / "meta-models" / "meta-toy").mkdir(parents=True)
    result = CliRunner().invoke(app, ["meta", "train", "--dataset", "toy"], env=env)
    assert result.exit_code == 2 and "meta-toy exists already; choose another name" in result.output


# --- one checkpoint hash ----------------------------------------------------------------
def test_the_checkpoint_hash_covers_every_file_by_name_and_content(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "sub" / "tok.json").write_bytes(b"{}")
    expected = hashlib.sha256(b"model.safetensors\0weights" + b"sub/tok.json\0{}").hexdigest()
    assert checkpoint_sha256(tmp_path) == expected
    (tmp_path / "TRAINING.json").write_text("records the hash")
    assert checkpoint_sha256(tmp_path, exclude={"TRAINING.json"}) == expected
    assert checkpoint_sha256(tmp_path) != expected


# --- one precision rule ------------------------------------------------------------------
def test_one_precision_rule(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    import core.backends.dtype as dtypes

    monkeypatch.setattr(dtypes, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    for dtype in ("auto", "float32", "float16"):
        cpu = training_precision(Settings(device="cpu", dtype=dtype))
        assert (cpu.device, cpu.use_cpu, cpu.bf16) == ("cpu", True, False)
    assert training_precision(Settings(device="cpu", dtype="bfloat16")).bf16  # asked for
    monkeypatch.setattr(dtypes, "cpu_flags", lambda: frozenset({"avx512f", "amx_bf16"}))
    assert training_precision(Settings(device="cpu", dtype="auto")).bf16  # native bf16
    assert not training_precision(Settings(device="cpu", dtype="float32")).bf16
    assert training_precision(Settings(device="cuda", dtype="auto")).bf16
    assert training_precision(Settings(device="cuda", dtype="bfloat16")).bf16
    assert not training_precision(Settings(device="cuda", dtype="float32")).bf16
    assert not training_precision(Settings(device="cuda", dtype="float16")).bf16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert not training_precision(Settings(device="cuda", dtype="auto")).bf16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    missing = training_precision(Settings(device="cuda", dtype="float32"))
    assert (missing.device, missing.use_cpu, missing.bf16) == ("cpu", True, False)


TRAINERS = ["rft_trainer.py", "meta_rm.py", "rl.py"]


@pytest.mark.parametrize("module", TRAINERS)
def test_every_trainer_uses_the_shared_rules(module):
    """Each trainer imports the one hash, precision and output rule, and decides
    none of them itself."""
    source = (ROOT / "core" / "training" / module).read_text()
    names = {alias.name for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert {"checkpoint_sha256", "training_precision", "new_output_dir"} <= names
    for own_rule in ("hashlib", "is_bf16_supported", "settings.dtype", "settings.data_dir"):
        assert own_rule not in source, f"{module} decides '{own_rule}' itself"
