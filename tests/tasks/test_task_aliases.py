import pytest

from mmxfer.config import load_profile
from mmxfer.errors import UnknownNameError
from mmxfer.train.run import parse_intermediate


def test_starter_profile_maps_paper_names_to_offline_tasks():
    starter = load_profile("starter")
    assert parse_intermediate("vqa", starter) == ("starter-vqa",)
    assert parse_intermediate("caption,vqa-text", starter) == (
        "starter-caption",
        "starter-vqa-text",
    )
    assert parse_intermediate("none", starter) == ()


def test_paper_profile_keeps_the_real_datasets():
    large = load_profile("xlmr-large")
    assert parse_intermediate("vqa", large) == ("vqa",)
    assert parse_intermediate("mnli,squad", large) == ("mnli", "squad")


def test_unknown_task_still_suggests():
    with pytest.raises(UnknownNameError, match="did you mean"):
        parse_intermediate("vqaa", load_profile("starter"))
