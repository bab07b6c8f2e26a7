"""tune=joint through the steps on the shipped weights: the tuned separator file is a whole backbone (the SED
embedded), so the APT evaluation loads it with the run's backbone spec."""

import json

from apt_uss.models.backbone import BackboneSpec
from apt_uss.steps import data as data_steps
from apt_uss.steps import pipeline as steps


def test_a_jointly_tuned_separator_is_evaluated_with_the_demo_backbone(tmp_path):
    ds, mix = str(tmp_path / "ds"), str(tmp_path / "mix")
    data_steps.fetch_dataset_step("synthetic", ds, n_classes=2, seed=0)
    data_steps.split_folds_step(ds, str(tmp_path / "splits.csv"), n_shot="1", test_folds="5")
    data_steps.simulate_mixtures_step(ds, str(tmp_path / "splits.csv"), mix, epochs=1, crop_seconds=1.0)
    demo = BackboneSpec("demo", device="cpu")
    steps.init_prompts_step(ds, str(tmp_path / "splits.csv"), str(tmp_path / "p0.npz"), str(tmp_path / "e.npz"),
                            backbone=demo)
    steps.tune_prompts_step(ds, mix, str(tmp_path / "p0.npz"), str(tmp_path / "p1.npz"), str(tmp_path / "loss.csv"),
                            backbone=demo, tune="joint", lr=1e-4, out_separator=str(tmp_path / "sep.pt"))
    table = steps.evaluate_step(ds, mix, str(tmp_path / "p1.npz"), str(tmp_path / "eval"), "apt", backbone=demo,
                                separator_weights=str(tmp_path / "sep.pt"))
    assert len(table) == 16
    assert json.loads((tmp_path / "eval" / "evaluation.json").read_text())["n_scored"] == 16
    tuned = BackboneSpec("demo", separator_checkpoint_uri=str(tmp_path / "sep.pt")).load()
    assert tuned.provenance["sed_weights"].startswith("embedded:sha256:")
