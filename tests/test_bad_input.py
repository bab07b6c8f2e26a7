"""Bad-input probes: every user value is refused with one error line naming it, its value and what is
allowed, before anything runs (or, for what only the data can tell, at the step that reads the data).

In-process calls (``apt_uss.cli.main``, ``pipelines.run_local.main``, the functions) keep the file fast;
one probe goes through ``python -m apt_uss`` to hold the real entry point's exit code and stderr.
"""

import logging
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from apt_uss import cli
from apt_uss.errors import AptUssError
from apt_uss.method.prompts import save_prompts
from apt_uss.params.checks import check_crop_fits, check_positive
from apt_uss.steps.validation import check_pipeline_params
from tests.cli_runner import call_main

ROOT = Path(__file__).resolve().parents[1]
SR = 32000


def _cli(argv, capsys):
    """``python -m apt_uss ARGV`` in this interpreter: (exit code, stdout, stderr)."""
    return call_main(cli.main, argv, capsys)


def _one_error_line(err: str) -> str:
    """The one ``error:`` line, last on stderr (log lines may come before it), and no traceback."""
    lines = err.strip().splitlines()
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], err
    assert "Traceback" not in err
    return lines[-1]


@pytest.fixture(scope="module")
def defaults():
    from pipelines.apt_uss_pipeline import apt_uss_pipeline
    from pipelines.local_cli import pipeline_defaults

    return pipeline_defaults(apt_uss_pipeline)


def _refused(params: dict) -> str:
    with pytest.raises(AptUssError) as err:
        check_pipeline_params(params)
    assert "\n" not in str(err.value)
    return str(err.value)


# 1. Non-finite numbers --------------------------------------------------------------------------------


def test_tune_prompts_lr_inf_through_the_command_line_exits_2_with_one_line(tmp_path):
    out = tmp_path / "tuned.npz"
    result = subprocess.run([sys.executable, "-m", "apt_uss", "tune-prompts", "--dataset-dir", str(tmp_path),
                             "--mixtures-dir", str(tmp_path), "--prompts", str(tmp_path / "p.npz"),
                             "--out-prompts", str(out), "--out-loss", str(tmp_path / "loss.csv"), "--lr", "inf"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: lr=inf is not valid: it must be a finite positive number (not nan or inf)"
    assert not out.exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_tune_prompts_refuses_a_non_finite_lr_before_anything_runs(value, tmp_path, capsys):
    code, _, err = _cli(["tune-prompts", "--dataset-dir", str(tmp_path), "--mixtures-dir", str(tmp_path),
                         "--prompts", str(tmp_path / "absent.npz"), "--out-prompts", str(tmp_path / "t.npz"),
                         "--out-loss", str(tmp_path / "l.csv"), f"--lr={value}"], capsys)
    assert code == 2
    line = _one_error_line(err)
    assert f"lr={float(value)!r} is not valid" in line and "finite" in line


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_simulate_mixtures_refuses_a_non_finite_crop(value, tmp_path, capsys):
    code, _, err = _cli(["simulate-mixtures", "--dataset-dir", str(tmp_path), "--splits", str(tmp_path / "s.csv"),
                         "--crop-seconds", value, "--out", str(tmp_path / "mix")], capsys)
    assert code == 2
    assert f"crop_seconds={float(value)!r} is not valid: it must be a finite positive number" in _one_error_line(err)
    assert not (tmp_path / "mix").exists()


@pytest.mark.parametrize("name, value", [("lr", math.inf), ("lr", math.nan), ("crop_seconds", math.nan),
                                         ("crop_seconds", -math.inf)])
def test_pipeline_check_refuses_non_finite_floats_by_name(defaults, name, value):
    message = _refused(dict(defaults, **{name: value}))
    assert message.startswith(f"{name}={value!r} is not valid") and "finite" in message


def test_pipeline_check_refuses_a_non_finite_value_of_every_float_parameter_of_the_spec(defaults):
    """A float parameter added to the spec later is covered too: KFP cannot serialise nan or inf."""
    from apt_uss.params import spec

    floats = [q.name for q in spec.PARAMETERS if q.type is float]
    assert floats
    for name in floats:
        assert _refused(dict(defaults, **{name: math.inf})).startswith(f"{name}=inf is not valid")


def test_pipeline_check_refuses_a_parameter_the_spec_does_not_know_naming_the_closest(defaults):
    assert _refused(dict(defaults, crop_secnds=1.0)) == "'crop_secnds' is not a pipeline parameter (did you mean crop_seconds?)"


def test_make_pipeline_run_lr_inf_is_one_line_before_any_step(tmp_path, monkeypatch, capsys):
    """What ``make pipeline-run LR=inf`` runs: refused in the pre-run check, no step, no KFP outputs."""
    from pipelines import run_local

    monkeypatch.setenv("APT_USS_HOME", str(tmp_path / "state"))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    capsys.readouterr()
    try:
        code = run_local.main(["--lr", "inf"])
    finally:
        root.handlers[:], root.level = handlers, level
    err = capsys.readouterr().err
    assert code == 2
    assert _one_error_line(err) == "error: lr=inf is not valid: it must be a finite positive number (not nan or inf)"
    assert not (tmp_path / "state" / "kfp-outputs").exists()


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "CPU", "cuda0"])
def test_a_device_that_is_not_one_is_refused_before_the_run(defaults, device):
    assert _refused({**defaults, "device": device}) == \
        f"device={device!r} is not valid: use 'auto', 'cpu' or 'cuda[:N]'"


@pytest.mark.parametrize("name, value", [("dataset_uri", "/data/no-such-sounds"),
                                         ("dataset_uri", "file:///data/no-such-sounds.zip"),
                                         ("separator_checkpoint_uri", "/models/none.ckpt#sha256=" + "0" * 64)])
def test_make_pipeline_run_with_a_missing_local_input_is_one_line_before_any_step(tmp_path, monkeypatch, capsys,
                                                                                 name, value):
    from pipelines import run_local

    monkeypatch.setenv("APT_USS_HOME", str(tmp_path / "state"))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    capsys.readouterr()
    dataset = ["--dataset", "esc50"] if name == "dataset_uri" else []
    try:
        code = run_local.main([*dataset, f"--{name.replace('_', '-')}", value])
    finally:
        root.handlers[:], root.level = handlers, level
    assert code == 2
    path = value.removeprefix("file://").split("#")[0]
    assert _one_error_line(capsys.readouterr().err) == f"error: {name}={value!r}: {path} does not exist on this machine"
    assert not (tmp_path / "state" / "kfp-outputs").exists()


@pytest.mark.parametrize("module", ["run_local", "run_sweep", "submit"])
def test_a_flag_of_the_wrong_type_is_one_line_without_the_usage(module, capsys):
    """What ``make pipeline-run LR=fast`` runs: the usage of forty flags would bury the one line that matters."""
    import importlib

    main = importlib.import_module(f"pipelines.{module}").main
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(["--lr", "fast"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert _one_error_line(err) == "error: argument --lr: lr='fast' is not valid: it must be a number " \
                                   "(--help lists the flags)"
    assert "usage:" not in err


def test_a_missing_dataset_folder_is_named_as_missing_not_as_not_a_file(tmp_path):
    from apt_uss.data.dataset import fetch_dataset

    with pytest.raises(AptUssError, match=r"dataset_uri='.*/my-sounds' does not exist: give a folder in the dataset's"):
        fetch_dataset("esc50", tmp_path / "out", dataset_uri=str(tmp_path / "my-sounds"))
    assert not (tmp_path / "out").exists()


def test_check_positive_keeps_its_messages_for_finite_values():
    assert check_positive("lr", 3e-4) == 3e-4
    with pytest.raises(AptUssError, match=r"^lr=-1\.0 is not valid: it must be positive$"):
        check_positive("lr", -1.0)
    with pytest.raises(AptUssError, match=r"^epochs=2\.5 is not valid: it must be a positive integer$"):
        check_positive("epochs", 2.5, integer=True)
    with pytest.raises(AptUssError, match=r"^lr='fast' is not valid: it must be a finite positive number$"):
        check_positive("lr", "fast")


def test_separate_refuses_non_finite_chunk_and_overlap(tmp_path, capsys):
    wav = tmp_path / "in.wav"
    sf.write(wav, np.zeros(SR, np.float32), SR)
    for flag, value, message in (("--chunk-seconds", "inf", "chunk_seconds=inf is not valid"),
                                 ("--overlap", "nan", "overlap=nan is not valid")):
        code, _, err = _cli(["separate", "--prompts", str(tmp_path / "absent.npz"), "--class", "x", flag, value,
                             str(wav), str(tmp_path / "out.wav")], capsys)
        assert code == 2 and message in _one_error_line(err)


def test_negative_seed_is_refused_by_name(defaults, tmp_path, capsys):
    assert _refused(dict(defaults, seed=-1)) == "seed=-1 is not valid: use an integer from 0 up"
    code, _, err = _cli(["split-folds", "--dataset-dir", str(tmp_path), "--seed", "-1",
                         "--out", str(tmp_path / "s.csv")], capsys)
    assert code == 2 and _one_error_line(err) == "error: seed=-1 is not valid: use an integer from 0 up"


@pytest.mark.parametrize("n_classes", [1, 51])
def test_synthetic_class_count_is_checked_before_the_run(defaults, n_classes):
    assert _refused(dict(defaults, n_classes=n_classes)) == (
        f"n_classes={n_classes} is not valid: use 2 to 50 (mixtures need two classes)")


@pytest.mark.parametrize("name", ["team/apt", "apt:v1", " apt"])
def test_a_model_name_that_would_break_models_uris_is_refused_before_the_run(defaults, name):
    assert _refused(dict(defaults, model_name=name)).startswith(f"model_name={name!r} is not valid")


@pytest.mark.parametrize("name, value", [("model_gpus", "-1"), ("tune_gpus", -2), ("tune_gpus", "1.5"),
                                         ("model_gpus", "one")])
def test_a_gpu_count_that_is_not_a_whole_number_is_refused(defaults, name, value):
    assert _refused(dict(defaults, **{name: value})) == \
        f"{name}={str(value)!r} is not valid: use a whole number of GPUs, 0 or more"


def test_a_gpu_count_is_checked_as_text_and_normalised(defaults):
    assert check_pipeline_params(dict(defaults, tune_gpus=2, model_gpus=" 01"))[("tune_gpus")] == "2"
    assert check_pipeline_params(dict(defaults, model_gpus=" 01"))["model_gpus"] == "1"
    from apt_uss.params import spec
    from apt_uss.steps.validation import check_sweep_params

    sweep = dict({q.name: spec.defaults("demo")[q.name] for q in spec.SWEEP_PARAMETERS}, tune_gpus=" 02", model_gpus=1)
    assert {k: check_sweep_params(sweep)[k] for k in ("tune_gpus", "model_gpus")} == {"tune_gpus": "2",
                                                                                     "model_gpus": "1"}


def test_a_local_dataset_folder_may_hold_a_hash_in_its_name(tmp_path):
    from apt_uss.steps.validation import check_local_inputs

    folder = tmp_path / "esc50#2"
    folder.mkdir()
    check_local_inputs({"dataset_uri": str(folder)})  # a folder name, not a #sha256= pin
    with pytest.raises(AptUssError, match="does not exist on this machine"):
        check_local_inputs({"dataset_uri": str(tmp_path / "esc50#3")})


# 2. A crop longer than the clips ------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["synthetic", "esc50"])
def test_pipeline_check_refuses_a_crop_longer_than_the_known_5_s_clips(defaults, dataset):
    message = _refused(dict(defaults, dataset=dataset, crop_seconds=100.0))
    assert message == (f"crop_seconds=100.0 is longer than the 5-s clips of {dataset}: "
                       "use a crop of at most 5 s")
    check_pipeline_params(dict(defaults, dataset=dataset, crop_seconds=5.0))  # the whole clip is allowed


def test_pipeline_check_leaves_a_users_own_clips_to_the_step(defaults):
    check_pipeline_params(dict(defaults, dataset="esc50", dataset_uri="/data/my-esc50", crop_seconds=8.0))


@pytest.fixture(scope="module")
def own_dataset(tmp_path_factory):
    """A user's own ESC-50-layout dataset of 1.5-s clips, with one training clip of 1 s."""
    folder = tmp_path_factory.mktemp("data") / "own"
    (folder / "audio").mkdir(parents=True)
    (folder / "meta").mkdir()
    rows = []
    rng = np.random.default_rng(0)
    for target in range(2):
        for fold in range(1, 6):
            name = f"{fold}-{target}.wav"
            seconds = 1.0 if (fold, target) == (2, 1) else 1.5
            sf.write(folder / "audio" / name, 0.1 * rng.standard_normal(int(seconds * SR)).astype(np.float32), SR)
            rows.append({"filename": name, "fold": fold, "target": target, "category": f"class{target}"})
    pd.DataFrame(rows).to_csv(folder / "meta" / "esc50.csv", index=False)
    return folder


def test_simulate_mixtures_refuses_a_crop_longer_than_the_shortest_clip_of_a_users_dataset(own_dataset, tmp_path,
                                                                                         capsys):
    splits = tmp_path / "s.csv"
    assert _cli(["split-folds", "--dataset-dir", str(own_dataset), "--n-shot", "full", "--out", str(splits)],
                capsys)[0] == 0
    for crop in ("100", "1.2"):
        code, _, err = _cli(["simulate-mixtures", "--dataset-dir", str(own_dataset), "--splits", str(splits),
                             "--epochs", "1", "--crop-seconds", crop, "--out", str(tmp_path / "mix")], capsys)
        assert code == 2
        assert _one_error_line(err) == (f"error: crop_seconds={float(crop)!r} is longer than the shortest training "
                                        "clip, 2-1.wav (1 s): use a crop of at most 1 s")
        assert not (tmp_path / "mix").exists()
    code, _, _ = _cli(["simulate-mixtures", "--dataset-dir", str(own_dataset), "--splits", str(splits),
                       "--epochs", "1", "--crop-seconds", "1.0", "--out", str(tmp_path / "mix")], capsys)
    assert code == 0 and (tmp_path / "mix" / "train_mixtures.csv").is_file()


def test_crop_fit_counts_samples_as_the_step_rounds_them():
    check_crop_fits(5.0, {"a.wav": 5 * SR}, SR)
    check_crop_fits(5.00001, {"a.wav": 5 * SR}, SR)  # rounds to the clip's own 160000 samples
    with pytest.raises(AptUssError, match=r"shortest training track, t/vocals.wav \(4.999 s\)"):
        check_crop_fits(5.0, {"t/vocals.wav": 5 * SR - 1}, SR, "training track")


# 3. Folds -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset_uri", ["", "/data/my-esc50"])
def test_overlapping_folds_are_refused_before_the_run(defaults, dataset_uri):
    dataset = "esc50" if dataset_uri else "synthetic"
    message = _refused(dict(defaults, dataset=dataset, dataset_uri=dataset_uri, train_folds="1,2,3",
                            test_folds="3,4"))
    assert message == ("train_folds='1,2,3' and test_folds='3,4' share fold(s) 3: "
                       "a fold is for training or for testing, not both")


@pytest.mark.parametrize("dataset", ["synthetic", "esc50"])
def test_folds_outside_1_to_5_are_refused_where_the_layout_is_known(defaults, dataset):
    assert _refused(dict(defaults, dataset=dataset, test_folds="4,6")) == (
        f"test_folds='4,6' is not valid: {dataset} has folds 1 to 5, not 6")


def test_folds_of_a_users_own_dataset_are_left_to_the_split_step(defaults):
    check_pipeline_params(dict(defaults, dataset="esc50", dataset_uri="/data/mine", train_folds="1,2,3,4,5,6",
                               test_folds="7"))


def test_musdb18_ignores_the_folds_as_before(defaults):
    check_pipeline_params(dict(defaults, dataset="musdb18", dataset_uri="/data/musdb", test_folds="1,2"))


# 4. n_shot's cap only where the counts are known -----------------------------------------------------------


def test_n_shot_is_capped_for_the_synthetic_set_and_the_official_esc50(defaults):
    assert _refused(dict(defaults, n_shot="25")) == (
        "n_shot=25 is larger than the 24 training clips per class of synthetic: use 1 to 24 or 'full'")
    assert _refused(dict(defaults, dataset="esc50", n_shot="17", train_folds="1,2")) == (
        "n_shot=17 is larger than the 16 training clips per class of esc50: use 1 to 16 or 'full'")


def test_n_shot_of_a_users_own_dataset_is_left_to_the_split_step(defaults):
    assert check_pipeline_params(dict(defaults, dataset="esc50", dataset_uri="/data/big-esc50", n_shot="40"))[
        "n_shot"] == "40"


# 5. Non-finite tuning ------------------------------------------------------------------------------------


def _problem():
    t = np.arange(16000) / SR
    clips = {"tone": (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32),
             "hiss": (0.3 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)}
    table = pd.DataFrame([dict(epoch=0, target_file="tone", target=0, interferer_file="hiss", interferer=1,
                               target_offset=0, interferer_offset=0),
                          dict(epoch=0, target_file="hiss", target=1, interferer_file="tone", interferer=0,
                               target_offset=0, interferer_offset=0)])
    return clips, table


def _nan_loss(estimate, target, kind):
    return (estimate - target).abs().mean() * math.nan


@pytest.fixture(scope="module")
def tiny_separator():
    from apt_uss.models.backbone import load_backbone

    return load_backbone("tiny").separator


def test_tuning_stops_on_a_nan_loss_naming_epoch_step_and_lr(tiny_separator, monkeypatch):
    from apt_uss.method import tuning

    monkeypatch.setattr(tuning, "separation_loss", _nan_loss)
    clips, table = _problem()
    with pytest.raises(AptUssError) as err:
        tuning.tune_prompts(tiny_separator, np.zeros((2, 16), np.float32), np.array([0, 1]), table, clips,
                            "energy_match", 16000, lr=1e-2, batch_size=1)
    assert str(err.value) == ("tuning diverged at epoch 1/1, step 1/2: the l1 loss is nan (lr=0.01, "
                              "lr_schedule=constant); the tuned prompts are not saved: use a smaller lr")


def test_tuning_stops_when_the_last_step_leaves_non_finite_prompts(tiny_separator, monkeypatch):
    from apt_uss.method import tuning

    class Overflowing(torch.optim.Adam):
        def step(self, closure=None):
            super().step(closure)
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(math.inf)

    monkeypatch.setattr(tuning.torch.optim, "Adam", Overflowing)
    clips, table = _problem()
    with pytest.raises(AptUssError, match=r"^tuning diverged at epoch 1/1, step 1/1: the tuned prompts are no "
                                          r"longer finite \(lr=0.01, "):  # one step: its loss was still finite
        tuning.tune_prompts(tiny_separator, np.zeros((2, 16), np.float32), np.array([0, 1]), table, clips,
                            "energy_match", 16000, lr=1e-2, batch_size=2)


def test_an_lr_past_float32_stops_tuning_with_one_line(tiny_separator):
    from apt_uss.method.tuning import tune_prompts

    clips, table = _problem()
    with pytest.raises(AptUssError, match=r"^tuning diverged at epoch 1/1, step 1/2: the optimizer's step overflows "
                                          r"float32 \(lr=1e\+39, "):
        tune_prompts(tiny_separator, np.zeros((2, 16), np.float32), np.array([0, 1]), table, clips,
                     "energy_match", 16000, lr=1e39, batch_size=1)


def test_tune_prompts_step_exits_2_with_one_line_and_writes_no_prompts(own_dataset, tmp_path, monkeypatch, capsys):
    from apt_uss.method import tuning

    mixtures = tmp_path / "mix"
    mixtures.mkdir()
    pd.DataFrame([dict(epoch=0, target_file="1-0.wav", target=0, target_class="class0", interferer_file="1-1.wav",
                       interferer=1, interferer_class="class1", target_offset=0, interferer_offset=0)]
                 ).to_csv(mixtures / "train_mixtures.csv", index=False)
    (mixtures / "mixing.json").write_text('{"mix_rule": "energy_match", "crop_samples": 16000}')
    save_prompts(tmp_path / "p.npz", np.zeros((2, 16), np.float32), np.array([0, 1]), np.array(["class0", "class1"]))
    monkeypatch.setattr(tuning, "separation_loss", _nan_loss)
    out = tmp_path / "tuned.npz"
    code, _, err = _cli(["tune-prompts", "--dataset-dir", str(own_dataset), "--mixtures-dir", str(mixtures),
                         "--prompts", str(tmp_path / "p.npz"), "--out-prompts", str(out),
                         "--out-loss", str(tmp_path / "loss.csv"), "--backbone", "tiny", "--random-weights", "--device", "cpu",
                         "--loss-function", "l1",
                         "--lr", "0.5"], capsys)
    assert code == 2
    assert _one_error_line(err) == ("error: tuning diverged at epoch 1/1, step 1/1: the l1 loss is nan (lr=0.5, "
                                    "lr_schedule=constant); the tuned prompts are not saved: use a smaller lr")
    assert not out.exists() and not (tmp_path / "loss.csv").exists()


# 6. Checkpoints that are not state dicts --------------------------------------------------------------------


class _Payload:
    """Unpickled, it would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("how", ["torch.save", "pickle.dump"])
def test_a_pickle_that_would_run_code_is_refused_and_never_run(tmp_path, how):
    from apt_uss.models.backbone import load_backbone

    marker, path = tmp_path / "marker", tmp_path / "evil.pt"
    if how == "torch.save":
        torch.save({"weight": _Payload(marker)}, path)
    else:
        with open(path, "wb") as f:
            pickle.dump({"weight": _Payload(marker)}, f, protocol=2)
    with pytest.raises(AptUssError) as err:
        load_backbone("tiny", separator_checkpoint_uri=str(path))
    message = str(err.value)
    assert not marker.exists()
    assert f"separator checkpoint {str(path)!r} is not a plain state dict of tensors" in message
    assert "posix.mkdir" in message or "nt.mkdir" in message
    assert "weights_only" not in message and "\n" not in message


@pytest.mark.parametrize("content", [os.urandom(4096), b"", b"hello\n"], ids=["random", "empty", "text"])
def test_a_file_that_is_not_a_checkpoint_is_refused_without_torchs_advice(tmp_path, content):
    from apt_uss.models.backbone import load_backbone

    path = tmp_path / "sep.pt"
    path.write_bytes(content)
    with pytest.raises(AptUssError) as err:
        load_backbone("tiny", separator_checkpoint_uri=str(path))
    message = str(err.value)
    assert "plain state dict of tensors" in message
    assert "weights_only" not in message and "\n" not in message


def test_a_whole_pickled_module_is_named_and_refused(tmp_path):
    from apt_uss.models.backbone import load_backbone

    torch.save(torch.nn.Linear(2, 2), tmp_path / "model.pt")
    with pytest.raises(AptUssError, match=r"is not a plain state dict of tensors.*torch\.nn\.modules\.linear\.Linear"):
        load_backbone("tiny", sed_checkpoint_uri=str(tmp_path / "model.pt"))


# 7. A missing input file to separate -------------------------------------------------------------------------


def test_separate_names_a_missing_input_file_before_loading_anything(tmp_path, capsys):
    missing = tmp_path / "nothere.wav"
    code, _, err = _cli(["separate", "--prompts", str(tmp_path / "absent.npz"), "--class", "x", str(missing),
                         str(tmp_path / "out.wav")], capsys)
    assert code == 2
    assert _one_error_line(err) == f"error: input audio file {missing} does not exist"
    assert not (tmp_path / "out.wav").exists()


def test_separate_file_names_a_missing_input_file(tmp_path):
    from apt_uss.serving.separator import separate_file

    with pytest.raises(AptUssError, match=r"^input audio file .*nothere.wav does not exist$"):
        separate_file(None, "x", tmp_path / "nothere.wav", tmp_path / "o.wav")  # checked before any model is used


def test_the_speech_example_without_espeak_ng_says_so_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from apt_uss.tools import separation_example

    monkeypatch.setattr(separation_example.shutil, "which", lambda name: None)
    code = separation_example.main(["--prompts", str(tmp_path / "p.npz"), "--interferer", "speech",
                                    "--out", str(tmp_path / "example")])
    assert code == 2
    assert _one_error_line(capsys.readouterr().err) == \
        "error: espeak-ng is not installed (apt-get install espeak-ng): --interferer speech needs it"
    assert not (tmp_path / "example").exists()
