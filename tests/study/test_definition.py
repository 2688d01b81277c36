from pathlib import Path

import pytest

from tuner.errors import TunerError
from tuner.study import (
    BUILTIN_STUDIES_DIR,
    load_definition,
    load_definitions,
    select,
)

SPEC_GRIDS = {
    "2layer": (9, True, 0.5),
    "2layer-no-dropout": (9, True, 0.0),
    "2layer-no-bn": (9, False, 0.5),
    "3layer": (18, True, 0.5),
    "3layer-no-dropout": (18, True, 0.0),
    "3layer-no-bn": (18, False, 0.5),
    "5layer": (32, True, 0.5),
}


def test_builtin_studies_match_the_spec() -> None:
    definitions = load_definitions(BUILTIN_STUDIES_DIR)
    assert set(definitions) == set(SPEC_GRIDS)
    for name, (points, batch_norm, dropout) in SPEC_GRIDS.items():
        definition = definitions[name]
        assert definition.grid_size == points
        assert definition.batch_norm is batch_norm
        assert definition.dropout == dropout
        protocol = definition.protocol
        assert (protocol.epochs, protocol.batch_size, protocol.folds) == (20, 120, 3)
        assert (protocol.optimizer, protocol.learning_rate) == ("adam", 0.001)
    assert definitions["5layer"].grid == {
        "l1": (328, 512),
        "l2": (128, 256),
        "l3": (64, 96),
        "l4": (16, 32),
        "l5": (4, 8),
    }
    assert sum(d.grid_size for d in definitions.values()) == 113


def write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


VALID = """
[model]
batch_norm = false
dropout = 0.3
[grid]
l1 = [64, 32]
"""


def test_user_variant_is_named_after_its_file(tmp_path: Path) -> None:
    definition = load_definition(write(tmp_path, VALID, "wide.toml"))
    assert definition.name == "wide"
    assert definition.grid == {"l1": (64, 32)}
    assert definition.regularisation == "Dropout only"
    assert definition.protocol.epochs == 20


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("colour = 1\n" + VALID, "colour", "unknown key"),
        (
            VALID.replace("dropout = 0.3", "dropout = 0.3\nbatchnorm = true"),
            "model.batchnorm",
            "unknown key",
        ),
        ("[grid]\n", "grid", "empty grid"),
        ("[grid]\nl1 = []\n", "grid.l1", "non-empty list"),
        ("[grid]\nl1 = [64, 0]\n", "grid.l1", "positive integers"),
        ("[grid]\nl1 = [64, -3]\n", "grid.l1", "positive integers"),
        ("[grid]\nl1 = [64, 2.5]\n", "grid.l1", "positive integers"),
        ("[grid]\nl1 = [8]\nl3 = [8]\n", "grid", "without gaps"),
        ("[grid]\nwidth = [8]\n", "grid.width", "l1, l2"),
        (VALID + "[protocol]\nepochs = 'ten'\n", "protocol.epochs", "integer"),
        (VALID + "[protocol]\nepochs = true\n", "protocol.epochs", "integer"),
        (VALID + "[protocol]\nepochs = 0\n", "protocol.epochs", "positive"),
        (VALID + "[protocol]\nfolds = 1\n", "protocol.folds", "at least 2"),
        (VALID + "[protocol]\noptimizer = 'adagrad2'\n", "protocol.optimizer", "one of"),
        (VALID.replace("dropout = 0.3", "dropout = 1.5"), "model.dropout", "[0, 1)"),
        (VALID.replace("batch_norm = false", "batch_norm = 'yes'"), "model.batch_norm", "bool"),
    ],
)
def test_malformed_file_names_file_key_and_reason(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TunerError) as error:
        load_definition(path)
    message = str(error.value)
    assert str(path) in message
    assert f"'{key}'" in message
    assert reason in message


def test_invalid_toml_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[grid\nl1 = [1]")
    with pytest.raises(TunerError, match="not valid TOML"):
        load_definition(path)


def test_select_lists_known_variants_for_an_unknown_one() -> None:
    definitions = load_definitions(BUILTIN_STUDIES_DIR)
    with pytest.raises(TunerError) as error:
        select(definitions, ["nope"])
    assert "unknown variant 'nope'" in str(error.value)
    assert "2layer-no-bn" in str(error.value) and "5layer" in str(error.value)
    assert len(select(definitions, ["all"])) == 7
    assert [d.name for d in select(definitions, ["5layer", "2layer", "5layer"])] == [
        "5layer",
        "2layer",
    ]


def test_fingerprint_ignores_description_but_not_grid(tmp_path: Path) -> None:
    base = load_definition(write(tmp_path, VALID, "a.toml"))
    described = load_definition(write(tmp_path, 'description = "x"\n' + VALID, "a2.toml"))
    widened = load_definition(write(tmp_path, VALID.replace("[64, 32]", "[64, 32, 16]"), "a.toml"))
    assert base.fingerprint() == described.fingerprint()
    assert base.fingerprint() != widened.fingerprint()
    assert type(base).from_dict(base.to_dict()) == base
