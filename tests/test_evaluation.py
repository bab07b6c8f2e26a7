import numpy as np
import pandas as pd
import pytest

from apt_uss.evaluation.evaluate import compare_systems, evaluate_prompts
from apt_uss.models.backbone import load_backbone


def _test_mixtures():
    rng = np.random.default_rng(0)
    clips = {"a.wav": (0.1 * rng.standard_normal(16000)).astype(np.float32),
             "b.wav": (0.1 * rng.standard_normal(16000)).astype(np.float32),
             "quiet.wav": np.zeros(16000, np.float32)}
    rows = [("test-0", "a.wav", 0, "cat", "b.wav", 1, "dog"),
            ("test-1", "b.wav", 1, "dog", "a.wav", 0, "cat"),
            ("test-2", "quiet.wav", 0, "cat", "b.wav", 1, "dog")]
    table = pd.DataFrame(rows, columns=["mixture_id", "target_file", "target", "target_class", "interferer_file",
                                        "interferer", "interferer_class"])
    return clips, table


def test_one_row_per_scored_mixture_and_silent_references_counted_not_nan():
    clips, table = _test_mixtures()
    model = load_backbone("tiny")
    sep = model.separator
    prompts = np.random.default_rng(1).standard_normal((2, model.cfg.embed_dim)).astype(np.float32)
    scored, counts = evaluate_prompts(sep, table, clips, prompts, np.array([0, 1]), "sum")
    assert list(scored["mixture_id"]) == ["test-0", "test-1"]
    assert counts == {"n_skipped_silent_reference": 1, "n_silent_estimate": 0}
    assert {"target_class", "interferer_class", "target_file", "interferer_file", "sdr_mixture", "sdr", "sdri"} <= set(
        scored.columns)
    assert np.isfinite(scored[["sdr_mixture", "sdr_oracle_mask", "sdr", "sdri"]].to_numpy()).all()
    # knowing the target, a mask on the separator's STFT splits two white noises better than an untrained model
    assert (scored["sdr_oracle_mask"] > scored["sdr"] + 2).all()
    np.testing.assert_allclose(scored["sdri"], scored["sdr"] - scored["sdr_mixture"])
    # energy-equal target and interferer summed: the mixture's own SDR is about 0 dB
    assert scored["sdr_mixture"].abs().max() < 1.0


def test_prompt_table_missing_a_target_is_refused():
    clips, table = _test_mixtures()
    with pytest.raises(ValueError, match=r"no row for target ids \[1\]"):
        evaluate_prompts(load_backbone("tiny").separator, table, clips, np.zeros((1, load_backbone("tiny").cfg.embed_dim), np.float32),
                         np.array([0]), "sum")


def test_systems_are_compared_mixture_by_mixture():
    base = pd.DataFrame({"mixture_id": ["m1", "m0"], "target_class": ["a", "b"], "sdr_mixture": [0.0, 1.0],
                         "sdr": [1.0, 2.0], "sdri": [1.0, 1.0], "silent_estimate": [False, False]})
    apt = pd.DataFrame({"mixture_id": ["m0", "m1"], "target_class": ["b", "a"], "sdr_mixture": [1.0, 0.0],
                        "sdr": [5.0, 0.5], "sdri": [4.0, 0.5], "silent_estimate": [False, False]})
    both = compare_systems(base, apt)
    assert list(both["mixture_id"]) == ["m0", "m1"]
    assert list(both["sdr_gain"]) == [3.0, -0.5] and list(both["sdri_apt"]) == [4.0, 0.5]
    with pytest.raises(ValueError, match="different test mixtures"):
        compare_systems(base, apt.iloc[:1])
