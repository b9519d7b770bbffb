import pytest

from mmxfer.testing.synthetic import SynthArm, SynthTask, make_study

ARMS = [
    SynthArm("baseline", (), "none"),
    SynthArm("mnli", ("mnli",), "text", 2.0),
    SynthArm("vqa", ("vqa",), "image-text", 5.0),
]
TASKS = [
    SynthTask("xnli", "classification", ("en", "de", "sw"), 200),
    SynthTask("tatoeba", "retrieval", ("deu", "kaz"), 100),
]


@pytest.fixture(scope="session")
def study_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    make_study(root, ARMS, TASKS, [1, 2, 3], lang_effects={"vqa": {"kaz": 4.0}})
    return root


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / "synth.yaml"
    path.write_text("name: synth\ntasks:\n  - task: xnli\n  - task: tatoeba\n", encoding="utf-8")
    return path
