"""`mmxfer train --target flores200-translate`: two SixT stages on the pair, beam search for every language,
predictions in their own task folder, chrF++ and spBLEU rows, resumable, re-scored per track."""

from __future__ import annotations

import json

import pytest
import sacrebleu
import yaml

from mmxfer.cli import main
from mmxfer.runs.store import Run, iter_runs
from mmxfer.testing.flores import write_all
from mmxfer.train import translation

RECIPE = [
    "trunk.name=tiny",
    "trunk.freeze_embeddings=false",
    "translation.decoder_layers=1",
    "translation.num_beams=2",
    "translation.stage1.batch_size=8",
    "translation.stage1.max_steps=4",
    "translation.stage1.checkpoint_every=2",
    "translation.stage2.batch_size=8",
    "translation.stage2.max_steps=2",
    "translation.generate_batch_size=8",
    "translation.max_len_a=0.5",
    "translation.max_len_b=2",
]


class Stop(Exception):
    pass


@pytest.fixture()
def flores_data(tmp_path, monkeypatch):
    monkeypatch.setenv("MMXFER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MMXFER_FLORES200_SPM", raising=False)
    monkeypatch.setattr("mmxfer.metrics.generation.default_spm_path", lambda: tmp_path / "no-spm")
    return write_all(tmp_path / "data")


def _argv(data, runs, *extra):
    argv = [
        "train",
        "--intermediate",
        "none",
        "--target",
        "flores200-translate",
        "--data-dir",
        str(data),
        "--runs-dir",
        str(runs),
        "--languages",
        "deu_Latn,fra,swh_Latn",
    ]
    for item in RECIPE:
        argv += ["--set", item]
    return argv + list(extra)


def test_translation_run_resumes_and_keeps_its_own_track(
    flores_data, tmp_path, monkeypatch, capsys
):
    runs = tmp_path / "runs"
    real = translation.generate_hypotheses
    translated: list[str] = []
    crash = [True]

    def flaky(accelerator, model, data, tokenizer, **kw):
        if data.spec.name == "flores200-translate":
            translated.append(data.raw["source"][0])
            if len(translated) == 2 and crash:
                crash.clear()
                raise Stop("killed while translating the second language")
        return real(accelerator, model, data, tokenizer, **kw)

    monkeypatch.setattr(translation, "generate_hypotheses", flaky)
    with pytest.raises(Stop):
        main(_argv(flores_data, runs))
    run = next(iter_runs(runs, finished_only=False))
    assert not run.is_done()
    assert (
        translation.stage_file(run.path, 1).is_file()
        and translation.stage_file(run.path, 2).is_file()
    )
    assert run.predictions_path("flores200-translate", "devtest", "deu_Latn").is_file()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished stage was trained again")

    monkeypatch.setattr(translation, "train_phase", no_training)
    translated.clear()
    assert main(_argv(flores_data, runs, "--resume")) == 0
    assert len(translated) == 2  # fra and swh; deu's predictions were kept
    assert "stage 1: finished before" in capsys.readouterr().out

    run = Run(run.path)
    assert run.is_done() and not (run.path / "checkpoints").exists()
    config = yaml.safe_load(run.config_path.read_text())
    assert (
        config["languages"] == ["deu_Latn", "fra", "swh_Latn"]
        and config["target"] == "flores200-translate"
    )
    assert config["profile"]["translation"]["decoder_layers"] == 1
    files = sorted(p.relative_to(run.path).as_posix() for p in run.predictions_dir.rglob("*.jsonl"))
    assert files == [
        f"predictions/flores200-translate/devtest-{lang}.jsonl"
        for lang in ("deu_Latn", "fra_Latn", "swh_Latn")
    ]
    rows = run.read_predictions("flores200-translate", "devtest", "fra_Latn")
    refs = (
        (flores_data / "flores200_dataset" / "devtest" / "eng_Latn.devtest")
        .read_text()
        .splitlines()
    )
    assert [r["gold"] for r in rows] == refs and all(set(r) == {"id", "pred", "gold"} for r in rows)
    metrics = run.metrics()
    by = {(m["metric"], m["lang"]): m for m in metrics}
    assert set(by) == {
        (m, lang) for m in ("chrf_pp", "spbleu") for lang in ("deu_Latn", "fra_Latn", "swh_Latn")
    }
    chrf = by[("chrf_pp", "fra_Latn")]["score"]
    expected = sacrebleu.corpus_chrf(
        [r["pred"] for r in rows], [[r["gold"] for r in rows]], word_order=2
    ).score
    assert chrf == pytest.approx(expected)
    assert by[("spbleu", "fra_Latn")]["score"] is None
    assert "needs the flores200 SPM model" in by[("spbleu", "fra_Latn")]["missing"]
    recipe = json.loads((run.path / "translation.json").read_text())
    assert recipe["train_task"] == "wmt14-de-en" and recipe["languages"] == [
        "deu_Latn",
        "fra_Latn",
        "swh_Latn",
    ]
    assert recipe["stages"]["1"]["encoder_frozen"] and not recipe["stages"]["2"]["encoder_frozen"]
    assert (
        recipe["stages"]["1"]["trainable_parameters"]
        < recipe["stages"]["2"]["trainable_parameters"]
    )
    log = [json.loads(x) for x in run.train_log_path.read_text().splitlines()]
    assert {r["phase"] for r in log} == {
        "phase3:flores200-translate:stage1",
        "phase3:flores200-translate:stage2",
    }

    # re-scoring scores each file with its own track's metrics (never as xSIM)
    capsys.readouterr()
    assert main(["evaluate", "--rescore", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "xsim" not in out and "missing: spBLEU needs the flores200 SPM model" in out
    rescored = {(m["metric"], m["lang"]): m["score"] for m in Run(run.path).metrics()}
    assert rescored[("chrf_pp", "fra_Latn")] == pytest.approx(chrf)


def test_a_subset_without_the_targets_languages_fails_before_training(
    flores_data, tmp_path, capsys
):
    argv = _argv(flores_data, tmp_path / "runs")
    argv[argv.index("--languages") + 1] = "eng_Latn,klingon"
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "none of the languages eng_Latn, klingon is a language of flores200-translate" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_generation_sharded_over_two_processes_equals_one(tmp_path, monkeypatch):
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    if shutil.which("torchrun") is None:
        pytest.skip("torchrun is not installed")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "ACCELERATE_USE_CPU": "true",
        "MMXFER_CACHE": str(tmp_path / "cache"),
    }
    worker = Path(__file__).with_name("ddp_translation_worker.py")
    results = {}
    for n in (1, 2):
        out = tmp_path / f"n{n}"
        out.mkdir()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nproc_per_node",
                str(n),
                "--standalone",
                str(worker),
                str(out),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[n] = [json.loads((out / f"rank{k}.json").read_text()) for k in range(n)]
    one = results[1][0]["hyps"]
    assert sorted(one, key=int) == [
        str(i) for i in range(7)
    ]  # every example once: the padding was dropped
    assert results[2][0]["world"] == 2 and results[2][0]["hyps"] == results[2][1]["hyps"] == one


def test_the_translation_recipe_is_part_of_translation_runs_only():
    from mmxfer.config import TranslationConfig, load_profile, to_dict
    from mmxfer.train.run import run_config

    starter = load_profile("starter")
    # to_dict omits nothing
    assert starter.translation == TranslationConfig() and "translation" in to_dict(starter)
    assert "translation" not in run_config(starter, (), "xnli", 1, "s")["profile"]
    large = load_profile("xlmr-large")
    assert (
        large.translation.decoder_layers,
        large.translation.decoder_init,
        large.translation.num_beams,
    ) == (12, "random", 5)
    assert (
        large.translation.stage1.lr,
        large.translation.stage1.max_steps,
        large.translation.stage2.lr,
        large.translation.stage2.max_steps,
    ) == (5e-4, 200000, 1e-4, 30000)  # SixT's scripts/run.sh
    assert "translation" not in run_config(large, (), "xnli", 1, "s")["profile"]
    full = run_config(starter, (), "flores200-translate", 1, "s")["profile"]["translation"]
    # defaults included: they make the run
    assert full["decoder_layers"] == 2 and full["stage1"]["lr"] == 5e-4
    other = load_profile("starter", ["translation.num_beams=4"])
    assert run_config(other, (), "flores200-translate", 1, "s") != run_config(
        starter, (), "flores200-translate", 1, "s"
    )


def test_test_and_dev_decoding_settings_betas_and_resdrop_reach_the_search(
    flores_data, tmp_path, monkeypatch
):
    """SixT: test decoding with beam search and fairseq's (max_len_a, max_len_b) on sources up to their own limit,
    the validation bound only for dev selection, Adam betas (0.9, 0.98), ResDrop from stage 2 on."""
    from mmxfer.models.seq2seq import Seq2Seq
    from mmxfer.train import loop

    calls: list[dict] = []
    real_generate = Seq2Seq.generate

    def spy(self, input_ids, attention_mask=None, **kw):
        calls.append(
            {
                "beams": kw["num_beams"],
                "bounds": kw["bounds"].tolist(),
                "lengths": attention_mask.sum(1).tolist(),
                "resdrop": [o.active for o in self.resdrop],
            }
        )
        return real_generate(self, input_ids, attention_mask, **kw)

    betas: list[tuple] = []
    real_optimizer = loop.make_optimizer

    def optimizer_spy(model, phase):
        opt = real_optimizer(model, phase)
        betas.append(tuple(opt.param_groups[0]["betas"]))
        return opt

    monkeypatch.setattr(Seq2Seq, "generate", spy)
    monkeypatch.setattr(loop, "make_optimizer", optimizer_spy)
    extra = [
        "translation.max_len_a=0",
        "translation.max_len_b=7",
        "translation.dev_max_len_a=1.0",
        "translation.dev_max_len_b=3",
        "translation.stage1.max_length=14",
        "translation.test_max_length=32",
        "translation.stage1.adam_betas=[0.9,0.98]",
        "translation.stage2.adam_betas=[0.9,0.98]",
        "translation.resdrop_layer=1",
        "translation.stage1.eval_every=2",
        "translation.stage2.eval_every=1",
    ]
    argv = _argv(flores_data, tmp_path / "runs")
    for item in extra:
        argv += ["--set", item]
    assert main(argv) == 0
    assert betas == [(0.9, 0.98), (0.9, 0.98)]  # both stages
    dev = [c for c in calls if c["beams"] == 1]
    test = [c for c in calls if c["beams"] == 2]
    assert dev and test and len(dev) + len(test) == len(calls)
    for c in dev:  # dev selection: the validation bound int(1.0 * length + 3), per sentence
        assert c["bounds"] == [int(1.0 * n + 3) for n in c["lengths"]] and max(c["lengths"]) <= 14
    for c in test:  # test: int(0 * length + 7) for every sentence, sources past the training length
        assert c["bounds"] == [7] * len(c["lengths"]) and c["resdrop"] == [True]
    assert max(n for c in test for n in c["lengths"]) > 14
    # stage 1's dev passes run the pretrained encoder, stage 2's and the test run ResDrop
    assert [c["resdrop"] for c in dev] == sorted((c["resdrop"] for c in dev), key=lambda r: r[0])
    assert {tuple(c["resdrop"]) for c in dev} == {(False,), (True,)}
    run = next(iter_runs(tmp_path / "runs"))
    recipe = json.loads((run.path / "translation.json").read_text())
    assert recipe["generation"]["source_max_length"] == 32 and recipe["resdrop_layer"] == 1
    assert recipe["generation"]["dev"] == {"num_beams": 1, "max_len_a": 1.0, "max_len_b": 3}
