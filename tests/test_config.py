import dataclasses

import pytest

from mmxfer import config
from mmxfer.config import ExperimentConfig, PhaseConfig, StudyConfig
from mmxfer.errors import ConfigError


def write(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_profiles_load():
    for name in ("starter", "xlmr-base", "xlmr-large"):
        profile = config.load_profile(name)
        assert profile.name == name
    large = config.load_profile("xlmr-large")
    assert large.trunk.name == "xlm-roberta-large"
    assert large.target.lr == pytest.approx(1e-5)
    assert large.phase_for_target("pawsx").epochs == 5
    assert large.phase_for_target("xquad").max_length == 384
    assert large.phase_for_target("xnli").epochs == 2


def test_overrides_are_typed(tmp_path):
    path = write(tmp_path, "trunk: {name: xlm-roberta-base}\n")
    cfg = config.load(
        ExperimentConfig,
        path,
        [
            "target.lr=2e-5",
            "target.batch_size=8",
            "trunk.freeze_embeddings=true",
            "vision.num_tokens=null",
            "precision=fp16",
        ],
    )
    assert cfg.target.lr == pytest.approx(2e-5) and isinstance(cfg.target.lr, float)
    assert cfg.target.batch_size == 8
    assert cfg.trunk.freeze_embeddings is True
    assert cfg.vision.num_tokens is None
    assert cfg.precision == "fp16"
    assert cfg.trunk.name == "xlm-roberta-base"


def test_configs_are_frozen():
    cfg = ExperimentConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3  # type: ignore[misc]


def test_unknown_key_names_key_and_suggests(tmp_path):
    path = write(tmp_path, "target:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError) as info:
        config.load(ExperimentConfig, path)
    msg = str(info.value)
    assert "target.lrr" in msg and "did you mean lr" in msg and str(path) in msg


def test_bad_literal_lists_allowed_values():
    with pytest.raises(ConfigError) as info:
        config.load(ExperimentConfig, None, ["precision=bf61"])
    msg = str(info.value)
    assert "precision" in msg and "'bf61'" in msg and "'bf16'" in msg and "did you mean bf16" in msg


def test_bad_type_names_key_value_and_type():
    with pytest.raises(ConfigError, match=r"target\.batch_size: expected an integer, got 'many'"):
        config.load(ExperimentConfig, None, ["target.batch_size=many"])
    with pytest.raises(ConfigError, match=r"trunk\.freeze_embeddings: expected true or false"):
        config.load(ExperimentConfig, None, ["trunk.freeze_embeddings=3"])


def test_invalid_yaml_reports_line(tmp_path):
    path = write(tmp_path, "trunk:\n  name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"invalid YAML \(line"):
        config.load(ExperimentConfig, path)


def test_missing_file_and_unknown_profile():
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(ExperimentConfig, "/nonexistent/x.yaml")
    with pytest.raises(ConfigError, match="did you mean xlmr-large"):
        config.load_profile("xlmr-lage")


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        config.apply_overrides({}, ["target.lr"])
    with pytest.raises(ConfigError, match="empty key"):
        config.apply_overrides({}, ["a..b=1"])


def test_study_tuples_and_required_name(tmp_path):
    path = write(
        tmp_path,
        "name: s\narms:\n  - {name: base}\n  - {name: vqa, intermediate: [vqa]}\nseeds: [1, 2, 3]\n",
    )
    study = config.load(StudyConfig, path, ["targets=xnli,pawsx"])
    assert study.seeds == (1, 2, 3)
    assert study.targets == ("xnli", "pawsx")
    assert study.arms[1].intermediate == ("vqa",)
    with pytest.raises(ConfigError, match="missing required key"):
        config.from_dict(StudyConfig, {"arms": []})


def test_config_hash_is_stable_and_sensitive():
    a = PhaseConfig()
    assert config.config_hash(a) == config.config_hash(PhaseConfig())
    assert config.config_hash(a) != config.config_hash(PhaseConfig(lr=2e-5))


def test_to_dict_round_trip():
    cfg = config.load_profile("xlmr-large")
    again = config.from_dict(ExperimentConfig, config.to_dict(cfg))
    assert again == cfg


def test_unquoted_no_is_the_precision_no_in_overrides_and_files(tmp_path):
    from mmxfer.config import ExperimentConfig, load, load_profile

    assert load_profile("starter", ["precision=no"]).precision == "no"
    path = tmp_path / "p.yaml"
    path.write_text("precision: no\n")
    assert load(ExperimentConfig, path).precision == "no"


def _laughs(levels: int) -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    names = "abcdefghij"
    for i in range(1, levels):
        lines.append(f"{names[i]}: &{names[i]} [" + ", ".join([f"*{names[i - 1]}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_once(tmp_path):
    import time

    path = tmp_path / "bomb.yaml"
    path.write_text(_laughs(9))  # 9^9 = 387 million strings once expanded
    start = time.perf_counter()
    with pytest.raises(
        ConfigError, match="more than 100,000 values once its YAML aliases are expanded"
    ):
        config.read_yaml(path)
    assert time.perf_counter() - start < 5


def test_aliases_are_counted_once_per_use():
    # 9^5 = 59,049 strings plus their lists: below the limit; one level more passes it
    assert len(config.load_yaml(_laughs(5), "x")["e"]) == 9
    with pytest.raises(ConfigError, match="100,000"):
        config.load_yaml(_laughs(6), "x")


def test_size_depth_and_cycles_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="bytes of YAML, more than the 1,048,576"):
        config.load_yaml("a: " + "x" * config.YAML_MAX_BYTES, "big.yaml")
    with pytest.raises(ConfigError, match="nested too deeply"):
        config.load_yaml("[" * 5000 + "]" * 5000, "deep.yaml")
    with pytest.raises(
        ConfigError, match=r"trunk\.name: a YAML alias refers to the value that contains it"
    ):
        config.load_yaml("trunk: &t {name: *t}\n", "loop.yaml")


def test_shipped_configs_are_far_below_the_limits():
    import yaml

    for path in sorted(config.CONFIG_ROOT.glob("*/*.yaml")):
        text = path.read_text(encoding="utf-8")
        node = yaml.SafeLoader(text).get_single_node()
        assert len(text.encode()) < config.YAML_MAX_BYTES // 100
        assert (
            node is None
            or config._expanded_values(node, str(path), {}, set(), ())
            < config.YAML_MAX_VALUES // 100
        )
