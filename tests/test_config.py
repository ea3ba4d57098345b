from dataclasses import dataclass, field
from typing import Literal

import pytest

from rnnkit.config import choice_fields, load_config, parse_set_arguments, read_config, save_config
from rnnkit.errors import UserError


@dataclass
class Example:
    kind: Literal["rnn", "lstm", "gru"] = "lstm"
    units: int = 64
    dropout_rate: float = 0.1
    bidirectional: bool = False
    name: str = "x"
    max_length: int | None = None
    layers: list[int] = field(default_factory=lambda: [1, 2])


def test_defaults_yaml_then_set(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("units: 32\nkind: gru\n")
    config = load_config(Example, path, ["units=16", "bidirectional=true", "max_length=none",
                                         "layers=3,4"])
    assert config == Example(kind="gru", units=16, bidirectional=True, layers=[3, 4])


def test_unknown_key_names_allowed_keys():
    with pytest.raises(UserError, match="Unknown config key 'unit'.*units"):
        load_config(Example, None, ["unit=3"])


@pytest.mark.parametrize("pair,match", [
    ("units=abc", "`units` must be int. Received: units='abc'"),
    ("kind=xyz", "`kind` must be one of"),
    ("bidirectional=maybe", "`bidirectional` must be true or false"),
    ("dropout_rate=", "`dropout_rate` must be float"),
])
def test_bad_values_are_named(pair, match):
    with pytest.raises(UserError, match=match):
        load_config(Example, None, [pair])


def test_set_requires_key_value():
    with pytest.raises(UserError, match="key=value"):
        parse_set_arguments(["units"])


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_config(Example, tmp_path / "missing.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="mapping"):
        load_config(Example, path)


def test_save_and_read_round_trip(tmp_path):
    config = Example(kind="rnn", units=8, max_length=12)
    save_config(config, tmp_path / "config.json")
    assert read_config(Example, tmp_path / "config.json") == config


# Each app config's choice fields draw on the kit's registries: a value the kit cannot build is
# never offered (and `rnnkit <app> train --help` lists exactly these).
_REGISTRY_FIELDS = {"kind": "recurrent", "rnn_kind": "recurrent", "attention": "attention",
                    "tokenizer": "tokenizer", "source_tokenizer": "tokenizer",
                    "target_tokenizer": "tokenizer"}


def test_app_config_choices_come_from_the_kit_registries():
    from rnnkit.layers.recurrent import RECURRENT_KINDS
    from rnnkit.layers.seq2seq import ATTENTION_KINDS
    from rnnkit.task import available_tasks
    from rnnkit.text.tokenizer import KINDS

    registries = {"recurrent": set(RECURRENT_KINDS), "attention": set(ATTENTION_KINDS),
                  "tokenizer": set(KINDS)}
    checked = 0
    for name, task in available_tasks().items():
        for key, values in choice_fields(task.config_class).items():
            if key in _REGISTRY_FIELDS:
                assert set(values) <= registries[_REGISTRY_FIELDS[key]], (name, key, values)
                checked += 1
    assert checked >= 10  # 5 recurrent kinds, 2 attentions, 3 tokenizer fields


def test_train_help_lists_config_choices(capsys):
    from rnnkit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["sentiment", "train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "kind: lstm | gru | rnn (default lstm)" in out
    assert "pooling: last | max | mean | attention (default max)" in out
