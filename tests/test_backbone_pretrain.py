"""The demo backbone: its pretraining steps, its export format, and the shipped weights."""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from apt_uss.data import synthetic
from apt_uss.errors import AptUssError
from apt_uss.models.backbone import load_backbone
from apt_uss.models.checkpoints import export_backbone, is_computed
from apt_uss.models.choice import PACKAGED_WEIGHTS, WEIGHTS_DIR
from apt_uss.models.pretrain import loud_crops, seen_class_recipe, seen_corpus
from apt_uss.steps.backbone import SEEN_CLASSES

ROOT = Path(__file__).resolve().parents[1]


def test_exported_backbone_reloads_to_identical_outputs_without_stored_kernels(tmp_path):
    src = load_backbone("tiny", init_seed=3)
    export_backbone(src.sed, src.separator, tmp_path / "b.pt")
    stored = torch.load(tmp_path / "b.pt", weights_only=True)
    assert stored and not any(is_computed(k) for k in stored)
    assert any(k.startswith("at_model.") for k in stored)  # the SED rides along, as in ZS-ASP's checkpoint
    back = load_backbone("tiny", separator_checkpoint_uri=str(tmp_path / "b.pt"), init_seed=99)
    # Every tensor, the recomputed STFT and mel kernels included, comes back bit for bit: the same
    # model, whatever kernels the CPU runs it with (so no tolerance is needed below either).
    for part in ("sed", "separator"):
        want, got = getattr(src, part).state_dict(), getattr(back, part).state_dict()
        assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want), part
    wav = torch.randn(2, 16000) * 0.1
    with torch.inference_mode():
        q_src, q_back = src.sed(wav)["latent_output"], back.sed(wav)["latent_output"]
        assert torch.equal(q_back, q_src)
        assert torch.equal(back.separator(wav, q_src)["wav"], src.separator(wav, q_src)["wav"])


def test_seen_corpus_has_the_asked_shape_and_labels():
    clips, labels = seen_corpus(3, 2, seed=0)
    assert clips.shape == (6, int(synthetic.SAMPLE_RATE * synthetic.CLIP_SECONDS)) and list(labels) == [0, 0, 1, 1, 2, 2]


SHIPPED_CARD = json.loads((WEIGHTS_DIR / PACKAGED_WEIGHTS["demo"]).with_suffix(".json").read_text())


def test_the_shipped_backbone_was_pretrained_on_the_real_corpus_seen_classes():
    assert SHIPPED_CARD["corpus"] == "debian_sounds" and len(SHIPPED_CARD["corpus_sha256"]) == 64
    assert SHIPPED_CARD["seen_classes"] == SEEN_CLASSES


# 7919 was the synthetic seen corpus's namespace word: with seed lists padded by zeros it once made evaluation
# class 0 seen class 0 (apt_uss/data/streams.py).
@pytest.mark.parametrize("dataset_seed", [*range(0, 40), 42, 1234, 7919, 7920, 2**31 - 1])
def test_no_evaluation_class_is_a_synthetic_seen_class(dataset_seed):
    """A user evaluates on classes the backbone never heard (as ESC-50 was unseen by AudioSet): with
    `--corpus synthetic` no evaluation recipe of any class index may equal a seen one. Whole recipes are
    compared, so the test fails exactly when two classes are the same sound, which only a shared stream does."""
    seen = [seen_class_recipe(SHIPPED_CARD["seed"], c) for c in range(SEEN_CLASSES)]
    evaluated = [synthetic.class_recipe(dataset_seed, t) for t in range(synthetic.MAX_CLASSES)]
    shared = [t for t, recipe in enumerate(evaluated) if recipe in seen]
    assert not shared, f"dataset seed {dataset_seed}: evaluation classes {shared} are seen classes"


@pytest.mark.slow
def test_backbone_pipeline_trains_and_installs_a_checkpoint_with_its_card(tmp_path):
    env = dict(os.environ, APT_USS_HOME=str(tmp_path / "state"))
    args = ["--config", "tiny", "--corpus", "synthetic", "--n-classes", "4", "--clips-per-class", "6",
            "--val-clips", "2",
            "--sed-steps", "2", "--separator-steps", "2", "--separator-compiled", "false",
            "--separator-query", "class_mean", "--install-to", str(tmp_path / "weights")]
    result = subprocess.run([sys.executable, "-m", "pipelines.run_backbone", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "weights" / "tiny.json").read_text())["separator_query"] == "class_mean"
    checkpoint = tmp_path / "weights" / "tiny.pt"
    card = json.loads((tmp_path / "weights" / "tiny.json").read_text())
    assert card["sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert card["command"].startswith("python -m pipelines.run_backbone --config tiny")
    assert card["separator_steps"] == 2 and card["sed_steps"] == 2 and card["seen_classes"] == 4
    assert card["corpus"] == "synthetic"
    assert card["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and card["cpu_model"]
    for key in ("sed_val_accuracy", "val_sdr_own_query", "val_sdr_class_mean_query", "val_sdr_mixture"):
        assert np.isfinite(card[key])
    model = load_backbone("tiny", separator_checkpoint_uri=f"{checkpoint}#sha256={card['sha256']}")
    assert not any(p.requires_grad for p in model.parameters())


def test_shipped_demo_backbone_matches_its_card():
    path = WEIGHTS_DIR / PACKAGED_WEIGHTS["demo"]
    card = json.loads(path.with_suffix(".json").read_text())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == card["sha256"]
    assert path.stat().st_size <= 20 * 10**6  # the limit for a committed checkpoint
    assert card["config"] == "demo" and card["command"]
    model = load_backbone("demo")  # the default backbone loads its weights with no URI given
    stored = torch.load(path, weights_only=True)
    key = "encoder_block1.conv_block.conv1.weight"
    assert torch.equal(model.separator.state_dict()[key], stored[key])


def test_an_unknown_separator_query_stops_before_any_training(tmp_path):
    env = dict(os.environ, APT_USS_HOME=str(tmp_path / "state"))
    result = subprocess.run([sys.executable, "-m", "pipelines.run_backbone", "--separator-query", "mean",
                             "--install-to", str(tmp_path / "weights")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "separator_query 'mean' is unknown: known are own, other_clip, class_mean" in result.stderr
    assert not (tmp_path / "state" / "kfp-outputs").exists()  # no pipeline task ran


@pytest.mark.parametrize("bad, message", [
    ({"separator_query": "mean"}, "separator_query 'mean' is unknown: known are own, other_clip, class_mean"),
    ({"separator_loss": "sdr"}, "separator_loss 'sdr' is unknown: known are l1, snr"),
    ({"separator_augment": "pitch"}, "separator_augment 'pitch' is unknown: known are none, speed"),
    ({"separator_augment": "speed", "separator_query": "class_mean"},
     "separator_augment 'speed' needs separator_query 'own'"),
    ({"corpus": "esc50"}, "corpus='esc50' is unknown"),
    ({"val_clips": 0}, "val_clips=0 is not valid"),
    ({"n_classes": 1000}, "n_classes=1000 is more than the 128 outputs of the 'demo' SED head"),
    ({"separator_lr": -1.0}, "separator_lr=-1.0 is not valid"),
    ({"sed_steps": 2.5}, "sed_steps=2.5 is not valid"),
    ({"config": "huge"}, "backbone='huge' is unknown"),
])
def test_the_recipe_check_names_the_bad_parameter(bad, message):
    from apt_uss.errors import AptUssError
    from apt_uss.steps.backbone import check_backbone_recipe

    check_backbone_recipe()  # the shipped recipe passes
    with pytest.raises(AptUssError, match=re.escape(message)):
        check_backbone_recipe(**bad)


def test_the_compiled_backbone_pipeline_checks_its_recipe_before_the_sed_trains(tmp_path):
    from pipelines.backbone_pipeline import backbone_pipeline
    from tests.pipeline_ir import dag_tasks

    tasks = dag_tasks(backbone_pipeline, tmp_path)
    assert "dependentTasks" not in tasks["check-backbone-recipe"]
    assert "check-backbone-recipe" in tasks["pretrain-sed"]["dependentTasks"]
    assert {"separator_query", "separator_loss", "separator_augment", "val_clips", "config"} <= set(
        tasks["check-backbone-recipe"]["inputs"]["parameters"])
    assert {"loss", "augment"} <= set(tasks["pretrain-separator"]["inputs"]["parameters"])  # a UI rerun can change them


def test_backbone_pipeline_failure_is_one_error_line_and_installs_nothing(tmp_path):
    env = dict(os.environ, APT_USS_HOME=str(tmp_path / "state"))
    # Passes the recipe check; fails in the SED task, which reads the corpus.
    args = ["--config", "tiny", "--corpus", "debian_sounds", "--corpus-uri", str(tmp_path / "no-such-corpus.tar.gz"),
            "--n-classes", "4", "--clips-per-class", "6", "--val-clips", "1",
            "--install-to", str(tmp_path / "weights")]
    result = subprocess.run([sys.executable, "-m", "pipelines.run_backbone", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: pretraining failed:") and "Traceback" not in last
    # The failed task's log (on stdout, as kfp.local prints it) names what was missing.
    assert "no-such-corpus.tar.gz' does not exist or is not a file" in result.stdout
    assert not (tmp_path / "weights").exists()


def test_pipeline_boolean_flags_read_true_and_false_and_refuse_other_words(capsys):
    import argparse

    from pipelines.backbone_pipeline import backbone_pipeline
    from pipelines.local_cli import add_signature_flags

    parser = argparse.ArgumentParser()
    add_signature_flags(parser, backbone_pipeline)
    assert parser.parse_args([]).separator_compiled is True
    assert parser.parse_args(["--separator-compiled", "false"]).separator_compiled is False
    assert parser.parse_args(["--separator-compiled", "True"]).separator_compiled is True
    with pytest.raises(SystemExit):
        parser.parse_args(["--separator-compiled", "maybe"])
    assert "separator_compiled must be true or false, got 'maybe'" in capsys.readouterr().err


@pytest.mark.slow
def test_compiled_separator_training_updates_the_separator_itself():
    """The shipped recipe trains under torch.compile: the steps must land in the module that gets exported."""
    from apt_uss.models.backbone import seeded_backbone
    from apt_uss.models.config import get_config
    from apt_uss.models.pretrain import train_separator

    model = seeded_backbone(get_config("tiny"), 0)
    clips, labels = seen_corpus(3, 2)
    before = {k: v.clone() for k, v in model.separator.state_dict().items()}
    losses = train_separator(model.separator, model.sed, clips, labels, steps=3, batch_size=2, compiled=True)
    assert len(losses) == 3 and np.all(np.isfinite(losses))
    after = model.separator.state_dict()
    assert set(after) == set(before)  # no "_orig_mod." prefixes: the export sees the plain module
    assert not torch.equal(after["encoder_block1.conv_block.conv1.weight"],
                           before["encoder_block1.conv_block.conv1.weight"])


def test_the_other_clip_query_comes_from_another_recording_of_the_target_class():
    from apt_uss.models.pretrain import other_clip_crops

    rng = np.random.default_rng(0)
    # each clip a constant level of its own: which clip a crop came from reads off its value
    clips = np.repeat(np.arange(1, 8, dtype=np.float32)[:, None], 100, axis=1)
    labels = np.array([0, 0, 0, 1, 1, 2, 3])  # class 2 and 3 have one clip each
    first = np.array([0, 1, 3, 4, 5, 6] * 20)
    crops = other_clip_crops(clips, labels, first, rng, crop=10)
    source = crops[:, 0].astype(int) - 1
    assert np.all(labels[source] == labels[first])                    # the same class
    assert np.all((source != first) | np.isin(first, [5, 6]))         # another recording where there is one
    assert set(source[first == 0]) == {1, 2}                          # any of the others


def test_the_class_mean_query_averages_some_other_clips_of_the_target_class():
    from apt_uss.models.pretrain import class_mean_queries

    rng = np.random.default_rng(0)
    # clip i's embedding is a one-hot of i: a query reads off which clips it averaged, and how many
    embeddings = np.eye(7, dtype=np.float32)
    labels = np.array([0, 0, 0, 0, 1, 1, 2])  # class 2 has one clip
    first = np.array([0, 4, 6] * 200)
    queries = class_mean_queries(embeddings, labels, first, rng)
    used = queries > 0
    np.testing.assert_allclose(queries.sum(axis=1), 1.0, rtol=1e-6)  # a mean
    for q, f in zip(used, first):
        assert np.all(labels[np.flatnonzero(q)] == labels[f])  # of its class only
        assert not q[f] or f == 6  # never the target clip, unless it is its class's only one
    counts = used[first == 0].sum(axis=1)
    assert set(counts) == {1, 2, 3}  # 1 to all of the other clips
    np.testing.assert_array_equal(used[first == 4], np.eye(7, dtype=bool)[np.full((first == 4).sum(), 5)])


def test_the_separator_query_changes_the_query_not_the_mixtures(monkeypatch):
    from apt_uss.models import pretrain
    from apt_uss.models.backbone import seeded_backbone
    from apt_uss.models.config import get_config
    from apt_uss.models.pretrain import train_separator
    from apt_uss.steps.backbone import query_clip_embeddings

    drawn = []  # each training step's (mixtures, targets), whatever the query

    def recorded(*args, **kwargs):
        out = training_mixtures(*args, **kwargs)
        drawn[-1].append((out[0].copy(), out[1].copy()))
        return out

    training_mixtures = pretrain.training_mixtures
    monkeypatch.setattr(pretrain, "training_mixtures", recorded)
    clips, labels = seen_corpus(3, 3)
    runs = {}
    for query in ("own", "other_clip", "class_mean", "own"):
        drawn.append([])
        model = seeded_backbone(get_config("tiny"), 0)
        embeddings = query_clip_embeddings(model.sed, clips, query)
        runs.setdefault(query, []).append(train_separator(model.separator, model.sed, clips, labels, steps=2,
                                                          batch_size=2, query=query, clip_embeddings=embeddings))
    assert runs["own"][0] == runs["own"][1]  # deterministic
    assert runs["other_clip"][0] != runs["own"][0]  # another query, another loss
    assert runs["class_mean"][0] != runs["own"][0]
    own = drawn[0]
    assert len(own) == 2
    for other in drawn[1:3]:
        for (mixtures, targets), (mixtures_other, targets_other) in zip(own, other):
            np.testing.assert_array_equal(mixtures, mixtures_other)  # the same mixtures, bit for bit
            np.testing.assert_array_equal(targets, targets_other)
    with pytest.raises(AptUssError, match="'class_mean' needs clip_embeddings: one embedding per training clip"):
        train_separator(model.separator, model.sed, clips, labels, steps=1, batch_size=2, query="class_mean")
    with pytest.raises(AptUssError, match=r"one embedding per training clip \(9\), got 8"):
        train_separator(model.separator, model.sed, clips, labels, steps=1, batch_size=2, query="class_mean",
                        clip_embeddings=np.zeros((8, 4), np.float32))
    with pytest.raises(AptUssError, match="separator query 'mean' is unknown"):
        train_separator(model.separator, model.sed, clips, labels, steps=1, batch_size=2, query="mean")


@pytest.mark.parametrize("option, value, message", [
    ("--lrs", "abc", "--lrs 'abc': give comma-separated numbers"),
    ("--lrs", "2e-3,0", "--lrs '2e-3,0': every learning rate must be positive"),
    ("--sed-steps", "1500,x", "--sed-steps '1500,x': give comma-separated whole numbers"),
    ("--sed-steps", "0", "--sed-steps '0': every step count must be at least 1"),
    ("--queries", "own,mean", "--queries: mean unknown; known are own, other_clip, class_mean"),
    ("--seen-classes", "64,1", "--seen-classes '64,1': each count must be 2 to 128"),
    ("--seen-classes", "64", "the shipped SED was trained on 128 classes; another count needs an SED trained for it"),
    ("--seed", "-1", "--seed -1: seeds are whole numbers from 0 up"),
    ("--steps", "0", "--steps 0: each separator trains at least 1 step"),
    ("--queries", ",", "--queries ',': name at least one query"),
])
def test_the_separator_comparison_refuses_bad_options_before_training(option, value, message, capsys):
    from apt_uss.tools.compare_separator_queries import main

    with pytest.raises(SystemExit) as stopped:
        main([option, value, "--out", "/nonexistent/never-written"])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_the_recipe_comparison_trains_one_sed_per_seen_class_count_and_step_count(monkeypatch, tmp_path):
    from apt_uss.tools import compare_separator_queries as compare

    calls = []
    monkeypatch.setattr(compare, "load_backbone", lambda name: type("B", (), {"sed": "shipped SED"})())
    scored = []  # the backbone each row was scored with
    monkeypatch.setattr(compare.selection, "validation_scores", lambda out, backbone: scored.append(backbone) or {
        "validation_sdr_baseline": 1.0, "validation_sdr_apt": 2.0})
    candidates = []
    monkeypatch.setattr(compare, "candidate_backbone", lambda sed, separator, path: (
        calls.append(("scored under", sed))
        or candidates.append(compare.BackboneSpec(separator_checkpoint_uri=str(path))) or candidates[-1]))
    monkeypatch.setattr(compare, "trained_sed", lambda steps, seed, classes: (calls.append(("sed", steps, classes))
                                                                              or (f"sed{steps}/{classes}", 0.5)))
    monkeypatch.setattr(compare, "trained_separator",
                        lambda query, steps, seed, compiled, lr, sed, classes: (
                            calls.append(("separator", query, sed, classes)) or (torch.nn.Identity(), 0.1)))
    table = compare.compare(tmp_path, ["own"], steps=3, sed_steps=(10, 20), seen_classes=(64, 128))
    assert calls == [("sed", 10, 64), ("separator", "own", "sed10/64", 64), ("scored under", "sed10/64"),
                     ("sed", 20, 64), ("separator", "own", "sed20/64", 64), ("scored under", "sed20/64"),
                     ("sed", 10, 128), ("separator", "own", "sed10/128", 128), ("scored under", "sed10/128"),
                     ("sed", 20, 128), ("separator", "own", "sed20/128", 128), ("scored under", "sed20/128")]
    assert scored == [compare.BackboneSpec(name="demo"), *candidates]  # each candidate with its own SED
    assert list(table["checkpoint"])[1:] == [c.separator_checkpoint_uri for c in candidates]
    assert list(table["sed"]) == ["shipped", "10 steps", "20 steps", "10 steps", "20 steps"]
    assert list(table["seen_classes"]) == [128, 64, 64, 128, 128]
    assert (tmp_path / "separator_queries.csv").is_file()
    with pytest.raises(Exception, match="the shipped SED was trained on 128 classes"):
        compare.compare(tmp_path, ["own"], steps=3, seen_classes=(64,))


def test_a_candidate_is_scored_with_prompts_its_own_sed_embeds(monkeypatch, tmp_path):
    """A separator trained under another SED than the shipped one must be queried with that SED's embeddings: the
    candidate checkpoint carries both parts, and the validation prompts are made from it (before 2026-12-06 the
    comparison embedded them with the shipped SED)."""
    from apt_uss.models.backbone import load_backbone, seeded_backbone
    from apt_uss.models.config import get_config
    from apt_uss.tools import compare_separator_queries as compare
    from apt_uss.tools import select_settings as selection

    other = seeded_backbone(get_config("demo"), 7)  # weights unlike the shipped ones
    spec = compare.candidate_backbone(other.sed, other.separator, tmp_path / "candidate.pt")
    loaded = spec.load()
    for part in ("sed", "separator"):
        for key, value in getattr(other, part).state_dict().items():
            assert torch.equal(getattr(loaded, part).state_dict()[key], value), (part, key)
    shipped = load_backbone("demo").sed.state_dict()
    assert any(not torch.equal(value, shipped[key]) for key, value in loaded.sed.state_dict().items())
    embedded_by = []

    def prepare_validation(out, **kwargs):
        embedded_by.append(kwargs["backbone"])
        raise RuntimeError("stop after the prompts' backbone is known")

    monkeypatch.setattr(selection, "prepare_validation", prepare_validation)
    with pytest.raises(RuntimeError, match="stop after"):
        selection.validation_scores(tmp_path / "validation", spec)
    assert embedded_by == [spec]


def test_the_validation_prompts_are_embedded_by_the_backbone_given(monkeypatch, tmp_path):
    from apt_uss.tools import select_settings as selection

    given = []
    monkeypatch.setattr(selection, "fetch_dataset_step", lambda *a, **k: None)
    monkeypatch.setattr(selection, "split_folds_step", lambda *a, **k: None)
    monkeypatch.setattr(selection, "init_prompts_step", lambda *a, backbone: given.append(backbone))
    (tmp_path / "dataset-debian_sounds").mkdir()
    (tmp_path / "dataset-debian_sounds" / "dataset.json").write_text("{}")
    spec = selection.BackboneSpec(name="demo", separator_checkpoint_uri="/some/candidate.pt")
    selection.prepare_validation(tmp_path, dataset="debian_sounds", backbone=spec)
    selection.prepare_validation(tmp_path, dataset="debian_sounds")
    assert given == [spec, selection.DEMO["backbone"]]


def test_a_compared_separator_trains_under_the_sed_it_is_given(monkeypatch):
    from apt_uss.models import pretrain
    from apt_uss.models.backbone import seeded_backbone
    from apt_uss.models.config import get_config
    from apt_uss.tools import compare_separator_queries as compare

    clips, labels = seen_corpus(3, 3)
    monkeypatch.setattr(compare, "_seen_corpus", lambda seed, classes: (clips, labels, clips[:1], labels[:1]))
    monkeypatch.setattr(compare, "get_config", lambda name: get_config("tiny"))
    given = seeded_backbone(get_config("tiny"), 5).sed  # another seed: weights unlike the fresh model's
    received = []

    def train_separator(separator, sed, *args, **kwargs):
        received.append({k: v.clone() for k, v in sed.state_dict().items()})
        return [0.1]

    monkeypatch.setattr(pretrain, "train_separator", train_separator)
    compare.trained_separator("own", steps=1, sed=given, seen_classes=3)
    assert received and all(torch.equal(received[0][k], v) for k, v in given.state_dict().items())


def test_the_separator_trains_on_the_loss_it_is_given_from_the_same_mixtures():
    """``separator_loss`` changes what the separator descends, not what it is shown: the L1 default is the ZS-ASP
    recipe's, "snr" the demo's tuning loss (negative SNR), and each step's loss is that function of the step's batch."""
    from apt_uss.method.losses import negative_snr
    from apt_uss.models.backbone import seeded_backbone
    from apt_uss.models.config import get_config
    from apt_uss.models.pretrain import train_separator

    clips, labels = seen_corpus(3, 3)
    seen = []

    def recording(name):
        def loss(estimate, target):
            seen.append((name, target.detach().clone()))
            return negative_snr(estimate, target) if name == "snr" else torch.nn.functional.l1_loss(estimate, target)
        return loss

    runs = {}
    for name in ("l1", "snr"):
        model = seeded_backbone(get_config("tiny"), 0)
        runs[name] = train_separator(model.separator, model.sed, clips, labels, steps=2, batch_size=2,
                                     loss=recording(name), loss_name=name)
    default = seeded_backbone(get_config("tiny"), 0)
    assert train_separator(default.separator, default.sed, clips, labels, steps=2, batch_size=2) == runs["l1"]
    assert runs["snr"][0] < 0 < runs["l1"][0]  # an SNR in dB (negated) against a mean absolute error
    targets = {name: [t for n, t in seen if n == name] for name in ("l1", "snr")}
    assert len(targets["l1"]) == len(targets["snr"]) == 2
    for a, b in zip(targets["l1"], targets["snr"]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # the same targets, bit for bit


def test_the_card_records_the_separator_loss(tmp_path):
    from apt_uss.steps.backbone import pretrain_sed_step, pretrain_separator_step

    common = dict(config="tiny", corpus="synthetic", n_classes=3, clips_per_class=4, val_clips=1)
    pretrain_sed_step(str(tmp_path / "sed"), steps=1, **common)
    card = pretrain_separator_step(str(tmp_path / "sed"), str(tmp_path / "backbone"), steps=1, batch_size=2,
                                   compiled=False, loss="snr", augment="speed", **common)
    assert card["separator_loss"] == "snr" and np.isfinite(card["separator_final_loss"])
    assert card["separator_augment"] == "speed"
    assert "separator_final_l1" not in card  # older cards' key: an L1 loss only
    assert json.loads((tmp_path / "backbone" / "backbone.json").read_text())["separator_loss"] == "snr"


def test_speed_changed_crops_play_each_crop_at_its_drawn_speed():
    """A 1 kHz tone played at 2^(k/12) of its speed sounds at 1 kHz x that ratio: each crop's strongest frequency
    follows the semitones drawn for it, and a crop is as long as a plain one."""
    from apt_uss.data.streams import stream
    from apt_uss.models.pretrain import SPEED_SEMITONES, speed_changed_crops, speed_ratio

    rate, crop = 32000, 16000
    t = np.arange(5 * rate) / rate
    clips = np.tile(np.sin(2 * np.pi * 1000.0 * t).astype(np.float32), (24, 1))
    out = speed_changed_crops(clips, stream("pretrain_separator", 0), stream("pretrain_speed", 0), crop)
    drawn = stream("pretrain_speed", 0).integers(-SPEED_SEMITONES, SPEED_SEMITONES + 1, size=len(clips))
    assert out.shape == (24, crop) and out.dtype == np.float32
    assert len(set(drawn.tolist())) > 5  # the draw spans many speeds
    for row, semitones in zip(out, drawn):
        peak = np.argmax(np.abs(np.fft.rfft(row * np.hanning(crop)))) * rate / crop
        assert abs(peak - 1000.0 * float(speed_ratio(int(semitones)))) <= 2 * rate / crop, (semitones, peak)
        assert abs(float(speed_ratio(int(semitones))) / 2 ** (semitones / 12) - 1) < 0.01


def test_the_speed_augment_changes_the_crops_not_which_clips_are_mixed():
    from apt_uss.data.streams import stream
    from apt_uss.models.pretrain import training_mixtures

    clips, labels = seen_corpus(4, 3)
    crop = 8000
    plain = training_mixtures(clips, labels, stream("pretrain_separator", 0), 6, crop, return_indices=True)
    sped = training_mixtures(clips, labels, stream("pretrain_separator", 0), 6, crop, return_indices=True,
                             speed_rng=stream("pretrain_speed", 0))
    # No speed stream: the recipe's draws, built here as the recipe always drew them (clips, then loud crops).
    rng = stream("pretrain_separator", 0)
    first, other = rng.integers(0, len(clips), 6), rng.integers(0, len(clips), 6)
    same = labels[first] == labels[other]
    while same.any():
        other[same] = rng.integers(0, len(clips), int(same.sum()))
        same = labels[first] == labels[other]
    np.testing.assert_array_equal(plain[1], loud_crops(clips[first], rng, crop))
    np.testing.assert_array_equal(plain[3], sped[3])  # the same target clips
    np.testing.assert_array_equal(plain[2], sped[2])
    assert sped[1].shape == plain[1].shape and not np.allclose(sped[1], plain[1])


def test_the_shipped_sed_folder_holds_the_shipped_sed_as_pretrain_separator_loads_it(tmp_path):
    from apt_uss.models.backbone import seeded_backbone
    from apt_uss.models.checkpoints import load_strict
    from apt_uss.models.config import get_config
    from apt_uss.steps.backbone import SED_CARD, SED_CHECKPOINT, shipped_sed_step

    info = shipped_sed_step(str(tmp_path / "sed"))
    card = json.loads((WEIGHTS_DIR / "demo.json").read_text())
    assert info["sed_val_accuracy"] == card["sed_val_accuracy"] and info["sed_steps"] == card["sed_steps"]
    assert info["sed_from_sha256"] == card["sha256"]
    assert json.loads((tmp_path / "sed" / SED_CARD).read_text()) == info
    stored = torch.load(tmp_path / "sed" / SED_CHECKPOINT, weights_only=True)
    shipped = load_backbone("demo").sed.state_dict()
    assert stored.keys() == shipped.keys() and all(torch.equal(stored[k], shipped[k]) for k in stored)
    fresh = seeded_backbone(get_config("demo"), 0).sed  # as pretrain_separator_step reads an SED folder
    load_strict(fresh, stored, "sed", "shipped-sed")
    assert all(torch.equal(fresh.state_dict()[k], shipped[k]) for k in shipped)


def test_shipped_sed_names_a_config_without_shipped_weights(tmp_path, capsys):
    from apt_uss import cli
    from tests.cli_runner import call_main

    code, _, err = call_main(cli.main, ["shipped-sed", "--out", str(tmp_path / "sed"), "--config", "small"], capsys)
    assert code != 0 and "config='small' ships no weights: shipped are demo" in err.strip().splitlines()[-1]
    assert not (tmp_path / "sed").exists()


def test_a_backbone_step_refuses_an_output_folder_holding_other_files(tmp_path, capsys):
    from apt_uss import cli
    from tests.cli_runner import call_main

    out = tmp_path / "results"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code, _, err = call_main(cli.main, ["shipped-sed", "--out", str(out)], capsys)
    assert code != 0 and "holds other files (notes.txt), which writing it would delete" in err.strip().splitlines()[-1]
    code, _, err = call_main(cli.main, ["pretrain-sed", "--out", str(out), "--config", "tiny", "--corpus", "synthetic",
                                        "--n-classes", "3", "--clips-per-class", "4", "--val-clips", "1", "--steps", "1"],
                             capsys)
    assert code != 0 and "out_sed" in err.strip().splitlines()[-1]
    assert (out / "notes.txt").read_text() == "keep me" and sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    shipped = tmp_path / "sed"
    assert call_main(cli.main, ["shipped-sed", "--out", str(shipped)], capsys)[0] == 0
    assert call_main(cli.main, ["shipped-sed", "--out", str(shipped)], capsys)[0] == 0  # its own files: replaced
