import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuner.data import MAX_DEFINITION_BYTES, MAX_GRID_POINTS, MAX_UNITS, MIN_UNITS
from tuner.errors import TunerError
from tuner.study import (
    BUILTIN_STUDIES_DIR,
    StudyDefinition,
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
    definitions = {
        name: definition
        for name, definition in load_definitions(BUILTIN_STUDIES_DIR).items()
        if definition.in_all
    }
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


# --- Hostile and careless definitions: one TunerError naming the file, never anything else.

GRID_OF_10_POWER_9 = "[grid]\n" + "".join(f"l{i} = {list(range(1, 11))}\n" for i in range(1, 10))


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (GRID_OF_10_POWER_9, "grid", f"1000000000 points; at most {MAX_GRID_POINTS}"),
        ("[grid]\nl1 = [64, 65537]\n", "grid.l1", f"{MIN_UNITS}..{MAX_UNITS}"),
        ("[grid]\nl1 = [99999999999999999999999]\n", "grid.l1", f"{MIN_UNITS}..{MAX_UNITS}"),
        (VALID + "[protocol]\nlearning_rate = nan\n", "protocol.learning_rate", "finite"),
        (VALID + "[protocol]\nlearning_rate = inf\n", "protocol.learning_rate", "finite"),
        (VALID + "[protocol]\nlearning_rate = -inf\n", "protocol.learning_rate", "finite"),
        (VALID.replace("dropout = 0.3", "dropout = nan"), "model.dropout", "finite"),
        ("grid = 5\n", "grid", "must be a table"),
        ("grid = 'l1'\n", "grid", "must be a table"),
        ('[grid]\n"l1\\n" = [8]\n', "grid.l1\\n", "l1, l2"),
        ('[grid]\n"\\u001b[31ml1" = [8]\n', "grid.\\x1b[31ml1", "l1, l2"),
        ("[grid]\nl1 = [8, 8]\n", "grid.l1", "duplicate"),
    ],
)
def test_out_of_bounds_or_non_finite_values_are_refused(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TunerError) as error:
        load_definition(path)
    message = str(error.value)
    assert str(path) in message
    assert f"'{key}'" in message
    assert reason in message


def test_grid_at_the_limit_is_accepted(tmp_path: Path) -> None:
    # 10 * 100 * 100 = MAX_GRID_POINTS exactly.
    text = f"[grid]\nl1 = {list(range(1, 11))}\nl2 = {list(range(1, 101))}\n"
    text += f"l3 = {list(range(MAX_UNITS - 99, MAX_UNITS + 1))}\n"
    assert load_definition(write(tmp_path, text)).grid_size == MAX_GRID_POINTS == 100_000


def test_non_utf8_file_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.toml"
    path.write_bytes('description = "café"\n[grid]\nl1 = [8]\n'.encode("latin-1"))
    with pytest.raises(TunerError) as error:
        load_definition(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "UTF-8" in message and "\n" not in message


def test_oversized_or_deeply_nested_files_are_refused(tmp_path: Path) -> None:
    big = write(tmp_path, VALID + "#" * MAX_DEFINITION_BYTES, "big.toml")
    with pytest.raises(TunerError, match=f"at most {MAX_DEFINITION_BYTES} bytes") as error:
        load_definition(big)
    assert str(big) in str(error.value)
    deep = write(tmp_path, "x = " + "[" * 50_000 + "]" * 50_000 + "\n" + VALID, "deep.toml")
    with pytest.raises(TunerError, match="nested too deeply") as error:
        load_definition(deep)
    assert str(deep) in str(error.value)


def test_a_folder_named_like_a_definition_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "odd.toml").mkdir()
    with pytest.raises(TunerError, match=r"odd\.toml: not a regular file"):
        load_definition(tmp_path / "odd.toml")


def _loads_or_refuses(path: Path) -> None:
    """The property: a definition loads, or is refused with a TunerError naming its file."""
    try:
        definition = load_definition(path)
    except TunerError as error:
        assert str(path) in str(error)
        assert "\n" not in str(error).replace(str(path), "")
        return
    assert 1 <= definition.grid_size <= MAX_GRID_POINTS
    assert all(MIN_UNITS <= u <= MAX_UNITS for units in definition.grid.values() for u in units)
    assert (
        math.isfinite(definition.protocol.learning_rate) and definition.protocol.learning_rate > 0
    )
    assert 0 <= definition.dropout < 1


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_any_bytes_load_or_are_refused_with_the_file_named(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_bytes(content)
    _loads_or_refuses(path)


TOML_SCALAR = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=8),
)


def toml_value(value: object) -> str:
    """A TOML rendering of a scalar, a list or a table (inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else {math.inf: "inf", -math.inf: "-inf"}.get(value, repr(value))
        )
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(
                f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}" for k, v in value.items()
            )
            + "}"
        )
    return str(value)


TOML_VALUE = st.recursive(
    TOML_SCALAR,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def mostly_valid(draw: st.DrawFn, valid: st.SearchStrategy, wrong: st.SearchStrategy) -> object:
    """Usually a valid value, sometimes a wrong one: a document goes wrong in few places, so
    the checks after the first one are reached too."""
    return draw(wrong) if draw(st.integers(0, 3)) == 0 else draw(valid)


UNIT = mostly_valid(
    st.integers(MIN_UNITS, 64) | st.integers(MAX_UNITS - 2, MAX_UNITS + 2),
    st.integers() | TOML_SCALAR,
)


@st.composite
def grid_tables(draw: st.DrawFn) -> dict[str, object]:
    n_layers = draw(st.integers(1, 9))
    keys = [f"l{i}" for i in range(1, n_layers + 1)]
    if draw(st.integers(0, 5)) == 0:
        keys[draw(st.integers(0, n_layers - 1))] = draw(
            st.sampled_from(["l0", "l01", "L1", "l1\n", "l99"]) | st.text(max_size=4)
        )
    return {
        key: draw(mostly_valid(st.lists(UNIT, min_size=1, max_size=12), TOML_VALUE)) for key in keys
    }


DOCUMENT = st.fixed_dictionaries(
    {},
    optional={
        "description": mostly_valid(st.text(max_size=20), TOML_VALUE),
        "model": mostly_valid(
            st.fixed_dictionaries(
                {},
                optional={
                    "batch_norm": mostly_valid(st.booleans(), TOML_SCALAR),
                    "dropout": mostly_valid(st.floats(0, 0.99), TOML_SCALAR),
                },
            ),
            TOML_VALUE,
        ),
        "grid": mostly_valid(grid_tables(), TOML_VALUE),
        "protocol": mostly_valid(
            st.fixed_dictionaries(
                {},
                optional={
                    "epochs": mostly_valid(st.integers(1, 50), TOML_SCALAR),
                    "batch_size": mostly_valid(st.integers(1, 512), TOML_SCALAR),
                    "folds": mostly_valid(st.integers(2, 10), TOML_SCALAR),
                    "optimizer": mostly_valid(st.sampled_from(["adam", "sgd"]), TOML_SCALAR),
                    "learning_rate": mostly_valid(st.floats(1e-6, 1.0), TOML_SCALAR),
                },
            ),
            TOML_VALUE,
        ),
        "extra": TOML_VALUE,
    },
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(DOCUMENT)
def test_structured_but_wrong_definitions_load_or_are_refused(
    tmp_path: Path, document: dict
) -> None:
    path = tmp_path / "structured.toml"
    path.write_text(
        "".join(
            f"{json.dumps(key, ensure_ascii=False)} = {toml_value(value)}\n"
            for key, value in document.items()
        )
    )
    _loads_or_refuses(path)


def test_a_definition_that_is_not_a_regular_file_is_refused_without_blocking(
    tmp_path: Path,
) -> None:
    import os

    os.mkfifo(tmp_path / "blocked.toml")
    with pytest.raises(TunerError, match=r"blocked.toml: not a regular file"):
        load_definitions(tmp_path)


AXES_TEXT = """
[model]
batch_norm = true

[grid]
l1 = [64, 32]
l2 = [16]
learning_rate = [0.001, 0.01]
dropout = [0.0, 0.5]
optimizer = ["adam", "sgd"]
"""


def test_grid_axes_multiply_the_grid_and_fix_each_points_settings(tmp_path: Path) -> None:
    definition = load_definition(write(tmp_path, AXES_TEXT))
    assert definition.grid == {"l1": (64, 32), "l2": (16,)}
    assert definition.axes == {
        "learning_rate": (0.001, 0.01),
        "dropout": (0.0, 0.5),
        "optimizer": ("adam", "sgd"),
    }
    assert definition.grid_size == 2 * 1 * 2 * 2 * 2
    params = {"l1": 32, "l2": 16, "learning_rate": 0.01, "dropout": 0.5, "optimizer": "sgd"}
    point = definition.at(params)
    assert point.axes == {} and point.batch_norm and point.dropout == 0.5
    assert point.protocol.learning_rate == 0.01 and point.protocol.optimizer == "sgd"
    assert point.protocol.epochs == definition.protocol.epochs
    # Learning rate and dropout are per-point data in one packed model; the optimizer
    # changes the step, so it splits the grid into groups.
    assert definition.step_group(params) == ("sgd",)
    assert definition.point_label(params) == (
        "l1=32 l2=16 dropout=0.5 learning_rate=0.01 optimizer=sgd"
    )
    assert definition.values_of("dropout") == (0.0, 0.5)
    assert definition.values_of("batch_norm") == (True,)


def test_a_definition_with_axes_survives_its_stored_record(tmp_path: Path) -> None:
    definition = load_definition(write(tmp_path, AXES_TEXT, "axes.toml"))
    again = StudyDefinition.from_dict(definition.to_dict())
    assert again == definition
    assert again.fingerprint() == definition.fingerprint()


def test_definitions_without_axes_store_exactly_the_keys_they_always_had() -> None:
    """Stored studies keep their fingerprint: new settings at their defaults are left out."""
    for definition in load_definitions(BUILTIN_STUDIES_DIR).values():
        if definition.axes:
            continue
        record = definition.to_dict()
        assert set(record) == {"name", "description", "grid", "batch_norm", "dropout", "protocol"}
        assert set(record["protocol"]) == {
            "epochs",
            "batch_size",
            "folds",
            "optimizer",
            "learning_rate",
        }


@pytest.mark.parametrize(
    ("grid", "key", "reason"),
    [
        ("learning_rate = [0.001, -1.0]", "grid.learning_rate", "positive"),
        ("learning_rate = []", "grid.learning_rate", "non-empty list"),
        ("learning_rate = 0.01", "grid.learning_rate", "non-empty list"),
        ("dropout = [0.2, 1.0]", "grid.dropout", "[0, 1)"),
        ("dropout = [0.2, 0.2]", "grid.dropout", "duplicate"),
        ("batch_norm = [true, 'no']", "grid.batch_norm", "bool"),
        ("activation = ['relu', 'swishy']", "grid.activation", "one of"),
        ("optimizer = ['adam', 'adagrad2']", "grid.optimizer", "one of"),
        ("batch_size = [60, 0]", "grid.batch_size", "positive"),
        ("epochs = [2, 2.5]", "grid.epochs", "integer"),
        ("weight_decay = [-0.1]", "grid.weight_decay", "zero or positive"),
        ("folds = [3, 5]", "grid.folds", "l1, l2"),
        ("momentum = [0.9]", "grid.momentum", "other axes: batch_norm, dropout"),
    ],
)
def test_a_bad_axis_names_file_key_and_reason(
    tmp_path: Path, grid: str, key: str, reason: str
) -> None:
    path = write(tmp_path, f"[grid]\nl1 = [8]\n{grid}\n")
    with pytest.raises(TunerError) as error:
        load_definition(path)
    message = str(error.value)
    assert str(path) in message and f"'{key}'" in message and reason in message


def test_an_axis_also_fixed_in_its_table_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "[model]\ndropout = 0.5\n[grid]\nl1 = [8]\ndropout = [0.0, 0.5]\n")
    with pytest.raises(TunerError, match=r"'grid.dropout': also set in \[model\]"):
        load_definition(path)


def test_the_axes_multiply_into_the_grid_point_limit(tmp_path: Path) -> None:
    values = ", ".join(str(8 + i) for i in range(100))
    rates = ", ".join(str((i + 1) / 1000) for i in range(MAX_GRID_POINTS // 100**2 + 1))
    path = write(tmp_path, f"[grid]\nl1 = [{values}]\nl2 = [{values}]\nlearning_rate = [{rates}]")
    with pytest.raises(TunerError, match="MAX_GRID_POINTS"):
        load_definition(path)


def test_the_ablation_study_is_the_three_2layer_variants_in_one_grid() -> None:
    definitions = load_definitions(BUILTIN_STUDIES_DIR)
    ablation = definitions["2layer-ablation"]
    assert not ablation.in_all and ablation not in select(definitions, ["all"])
    assert ablation.grid_size == 36
    assert ablation.grid == definitions["2layer"].grid
    assert ablation.axes == {"batch_norm": (True, False), "dropout": (0.0, 0.5)}
    # Each seed 2layer variant is one (batch_norm, dropout) corner of the ablation.
    for name in ("2layer", "2layer-no-dropout", "2layer-no-bn"):
        seed = definitions[name]
        point = ablation.at({"batch_norm": seed.batch_norm, "dropout": seed.dropout})
        assert (point.batch_norm, point.dropout, point.protocol) == (
            seed.batch_norm,
            seed.dropout,
            seed.protocol,
        )


def test_the_dataclass_defaults_are_the_settings_declarations() -> None:
    """SETTINGS is the one declaration; the dataclasses' defaults must say the same."""
    from dataclasses import fields

    from tuner.study import SETTINGS, StudyDefinition, TrainingProtocol

    protocol = TrainingProtocol()
    for name, setting in SETTINGS.items():
        if setting.table == "protocol":
            assert getattr(protocol, name) == setting.default, name
    model_defaults = {f.name: f.default for f in fields(StudyDefinition)}
    assert model_defaults["activation"] == SETTINGS["activation"].default


def test_readme_lists_every_grid_axis_with_its_declared_example() -> None:
    from tuner.study import AXES, SETTINGS

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for name in AXES:
        assert f"\n{name} = {SETTINGS[name].example}\n" in readme, name


def test_a_stored_point_without_an_axis_is_refused_in_one_line(tmp_path: Path) -> None:
    definition = load_definition(write(tmp_path, AXES_TEXT, "axes.toml"))
    with pytest.raises(TunerError, match="lack the grid axis optimizer") as error:
        definition.at({"l1": 32, "l2": 16, "learning_rate": 0.01, "dropout": 0.5})
    assert "\n" not in str(error.value)


def test_a_point_trains_its_own_epochs_only_on_an_epochs_axis(tmp_path: Path) -> None:
    axis = load_definition(write(tmp_path, "[grid]\nl1 = [8]\nepochs = [2, 5]\n", "e.toml"))
    assert axis.epochs_at({"l1": 8, "epochs": 5}, study_epochs=20) == 5
    plain = load_definition(write(tmp_path, "[grid]\nl1 = [8]\n", "p.toml"))
    assert plain.epochs_at({"l1": 8}, study_epochs=3) == 3
