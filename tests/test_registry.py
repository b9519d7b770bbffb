import pytest

from mmxfer.errors import UnknownNameError
from mmxfer.registry import Registry


def make() -> Registry[int]:
    reg: Registry[int] = Registry("widget")
    reg.add(1, "alpha", "a")

    @reg.register("beta", "b", "bee")
    def _beta():  # decorated objects are stored as-is
        return 2

    return reg


def test_lookup_by_name_and_alias():
    reg = make()
    assert reg.get("alpha") == 1
    assert reg.get("a") == 1
    assert reg.get("bee")() == 2
    assert reg.canonical("b") == "beta"
    assert reg.names() == ["alpha", "beta"]
    assert reg.aliases_of("beta") == ["b", "bee"]
    assert "a" in reg and "zzz" not in reg


def test_case_insensitive_fallback():
    assert make().get("ALPHA") == 1


def test_duplicate_name_or_alias_is_an_error():
    reg = make()
    with pytest.raises(ValueError, match="registered twice"):
        reg.add(3, "alpha")
    with pytest.raises(ValueError, match="registered twice"):
        reg.add(3, "gamma", "b")


def test_unknown_name_suggests_close_names():
    with pytest.raises(UnknownNameError) as info:
        make().get("alpah")
    message = str(info.value)
    assert "unknown widget 'alpah'" in message
    assert "did you mean alpha" in message
    assert "mmxfer ls widgets" in message


def test_unknown_name_without_close_match_has_no_suggestion():
    with pytest.raises(UnknownNameError) as info:
        make().get("qqqqqq")
    assert "did you mean" not in str(info.value)


def test_a_positive_control_is_known_by_its_task_specs():
    from mmxfer import catalog

    assert catalog.is_control(["starter-pivot-bitext"]) and catalog.is_control(["bitext-control"])
    assert not catalog.is_control(["starter-vqa-text"]) and not catalog.is_control([])
    # a mix is not a control
    assert not catalog.is_control(["starter-pivot-bitext", "starter-vqa-text"])
    # compared with the baseline as a text arm
    assert catalog.modality_of(["starter-pivot-bitext"]) == "text"
