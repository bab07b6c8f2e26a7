"""A validation split inside the training folds: held-out clips never shots nor test clips, their mixtures,
and APT keeping the epoch with the lowest validation loss."""

import numpy as np
import pandas as pd
import pytest

from apt_uss.data.folds import split_folds
from apt_uss.errors import AptUssError
from apt_uss.params import spec


def _meta(classes=3, folds=5, per_fold=4):
    rows = [{"filename": f"{f}-{c}-{k}.wav", "fold": f, "target": c, "category": f"class{c}"}
            for c in range(classes) for f in range(1, folds + 1) for k in range(per_fold)]
    return pd.DataFrame(rows)


def test_validation_clips_come_from_the_training_folds_and_are_never_shots():
    meta = _meta()
    table = split_folds(meta, None, 0, [1, 2, 3], [4, 5], validation_clips=2)
    val, train, test = (table[table["split"] == s] for s in ("validation", "train", "test"))
    assert val.groupby("target").size().tolist() == [2, 2, 2]
    assert set(val["fold"]) <= {1, 2, 3} and set(test["fold"]) == {4, 5}
    assert not set(val["filename"]) & set(train["filename"])
    assert train.groupby("target").size().tolist() == [10, 10, 10]  # full: every clip not held out
    for n in (1, 5, 10):  # the same clips are held out at every n_shot, and shots stay nested
        shots = split_folds(meta, n, 0, [1, 2, 3], [4, 5], validation_clips=2)
        assert set(shots.loc[shots["split"] == "validation", "filename"]) == set(val["filename"])
        assert set(shots.loc[shots["split"] == "train", "filename"]) <= set(train["filename"])


def test_without_validation_clips_the_draw_is_the_one_before_the_split_existed():
    meta = _meta()
    plain = split_folds(meta, 5, 0, [1, 2, 3], [4, 5])
    assert plain.equals(split_folds(meta, 5, 0, [1, 2, 3], [4, 5], validation_clips=0))
    assert "validation" not in set(plain["split"])


def test_too_many_held_out_clips_or_shots_are_errors_naming_the_class():
    meta = _meta()
    with pytest.raises(AptUssError, match="n_shot=11 is larger than the 10 training clips of class 'class0' "
                                          r"\(2 are held out for validation\)"):
        split_folds(meta, 11, 0, [1, 2, 3], [4, 5], validation_clips=2)
    with pytest.raises(AptUssError, match="validation_clips=12 leaves no training clip of class 'class0'"):
        split_folds(meta, 1, 0, [1, 2, 3], [4, 5], validation_clips=12)


def test_the_run_check_knows_the_split():
    from apt_uss.steps.validation import check_pipeline_params

    params = spec.defaults()
    with pytest.raises(AptUssError, match="keep_best_epoch=true needs validation_clips of 1 or more"):
        check_pipeline_params(dict(params, keep_best_epoch=True))
    with pytest.raises(AptUssError, match="n_shot=23 is larger than the 22 training clips per class not held out"):
        check_pipeline_params(dict(params, n_shot="23", validation_clips=2))
    check_pipeline_params(dict(params, n_shot="22", validation_clips=2, keep_best_epoch=True))


def test_tuning_keeps_the_epoch_with_the_lowest_validation_loss(tmp_path):
    """A tiny run with validation mixtures: the history has a validation loss per epoch, and the prompts
    returned are the kept epoch's (the last epoch's differ from them unless the last is the best)."""
    from apt_uss.models.backbone import BackboneSpec
    from apt_uss.steps import data as data_steps
    from apt_uss.steps import pipeline as steps

    ds, mix = str(tmp_path / "ds"), str(tmp_path / "mix")
    data_steps.fetch_dataset_step("synthetic", ds, n_classes=3, seed=0)
    data_steps.split_folds_step(ds, str(tmp_path / "splits.csv"), n_shot="2", validation_clips=1)
    info = data_steps.simulate_mixtures_step(ds, str(tmp_path / "splits.csv"), mix, epochs=4, crop_seconds=1.0,
                                        crop_rule="random")
    assert info["n_validation"] == 3
    backbone = BackboneSpec("tiny", device="cpu", random_weights=True)
    steps.init_prompts_step(ds, str(tmp_path / "splits.csv"), str(tmp_path / "p0.npz"), str(tmp_path / "e.npz"),
                            backbone=backbone)
    kept, history = steps.tune_prompts_step(ds, mix, str(tmp_path / "p0.npz"), str(tmp_path / "p1.npz"),
                                            str(tmp_path / "loss.csv"), backbone=backbone, lr=0.05,
                                            loss_function="l1", keep_best_epoch=True)
    assert list(history.columns) == ["epoch", "loss", "steps", "val_loss", "kept"]
    assert np.isfinite(history["val_loss"]).all() and history["kept"].sum() == 1
    best = int(history.loc[history["val_loss"].idxmin(), "epoch"])
    assert int(history.loc[history["kept"], "epoch"].iloc[0]) == best
    last, _ = steps.tune_prompts_step(ds, mix, str(tmp_path / "p0.npz"), str(tmp_path / "p2.npz"),
                                      str(tmp_path / "loss2.csv"), backbone=backbone, lr=0.05, loss_function="l1")
    assert np.array_equal(kept, last) == (best == int(history["epoch"].max()))
    with pytest.raises(AptUssError, match="keep_best_epoch=true needs validation mixtures"):
        data_steps.simulate_mixtures_step(ds, str(tmp_path / "splits.csv"), str(tmp_path / "mix0"), epochs=1,
                                     crop_seconds=1.0)
        (tmp_path / "mix0" / "validation_mixtures.csv").unlink()
        steps.tune_prompts_step(ds, str(tmp_path / "mix0"), str(tmp_path / "p0.npz"), str(tmp_path / "p3.npz"),
                                str(tmp_path / "loss3.csv"), backbone=backbone, keep_best_epoch=True)


def test_keep_best_epoch_is_refused_for_joint_tuning():
    from apt_uss.steps.validation import check_pipeline_params

    with pytest.raises(AptUssError, match="keep_best_epoch=true is for tune=prompts"):
        check_pipeline_params(dict(spec.defaults(), tune="joint", keep_best_epoch=True, validation_clips=2))
