import numpy as np
import pytest

from apt_uss.data.dataset import load_metadata
from apt_uss.data.folds import split_folds
from apt_uss.data.mixtures import (
    ENERGY_RATIO_BOUNDS,
    LOUD_CROP_TRIES,
    crop_offsets,
    mix,
    random_offsets,
    simulate_mixtures,
)
from apt_uss.errors import AptUssError


@pytest.fixture(scope="module")
def meta(tiny_dataset):
    return load_metadata(tiny_dataset)


def _train_sets(splits):
    train = splits[splits["split"] == "train"]
    return {t: set(g["filename"]) for t, g in train.groupby("target")}


def test_few_shot_sets_are_nested_and_test_set_is_shared(meta):
    runs = {n: split_folds(meta, n, seed=7, train_folds=[1, 2, 3], test_folds=[4, 5]) for n in (1, 5, 10, None)}
    for small, large in ((1, 5), (5, 10), (10, None)):
        a, b = _train_sets(runs[small]), _train_sets(runs[large])
        assert all(a[t] < b[t] for t in a)
    assert all(len(s) == 24 for s in _train_sets(runs[None]).values())
    tests = [set(r.loc[r["split"] == "test", "filename"]) for r in runs.values()]
    assert all(t == tests[0] for t in tests) and len(tests[0]) == 3 * 16
    train_folds = set(runs[None].loc[runs[None]["split"] == "train", "fold"])
    assert train_folds == {1, 2, 3}


def test_seed_changes_the_few_shot_draw(meta):
    a = _train_sets(split_folds(meta, 5, 0, [1, 2, 3], [4, 5]))
    b = _train_sets(split_folds(meta, 5, 1, [1, 2, 3], [4, 5]))
    assert a != b


def test_n_shot_beyond_the_class_is_an_error_naming_it(meta):
    with pytest.raises(AptUssError, match="n_shot=25 is larger than the 24 training clips"):
        split_folds(meta, 25, 0, [1, 2, 3], [4, 5])


def test_overlapping_or_missing_folds_are_errors(meta):
    with pytest.raises(AptUssError, match="disjoint"):
        split_folds(meta, 1, 0, [1, 2, 3], [3, 4])
    with pytest.raises(AptUssError, match=r"test_folds \[9\]"):
        split_folds(meta, 1, 0, [1, 2, 3], [9])


def test_mixtures_pair_different_classes_and_cover_each_test_clip_once(meta):
    splits = split_folds(meta, 5, 0, [1, 2, 3], [4, 5])
    lengths = dict.fromkeys(splits["filename"], 160000)
    train, test = simulate_mixtures(splits, lengths, seed=0, epochs=3, crop_samples=64000)
    for table in (train, test):
        assert (table["target"] != table["interferer"]).all()
    test_clips = set(splits.loc[splits["split"] == "test", "filename"])
    assert sorted(test["target_file"]) == sorted(test_clips)
    assert set(test["interferer_file"]) <= test_clips
    train_clips = set(splits.loc[splits["split"] == "train", "filename"])
    assert set(train["target_file"]) | set(train["interferer_file"]) <= train_clips
    per_epoch = train.groupby("epoch")
    assert (per_epoch.size() == len(train_clips)).all()
    # pairs are re-drawn each epoch
    pairs = [list(zip(g["target_file"], g["interferer_file"])) for _, g in per_epoch]
    assert pairs[0] != pairs[1]
    for side in ("target", "interferer"):
        assert train[f"{side}_offset"].between(0, 160000 - 64000).all()


def test_a_loud_crop_starts_where_the_clip_is_loudest_of_the_tries():
    # A clip silent but for one burst: the loud rule keeps the try that holds most of the burst.
    clip = np.zeros(10000, np.float32)
    clip[6000:7000] = 1.0
    names = [f"c{i}" for i in range(50)]
    clips = dict.fromkeys(names, clip)
    lengths = np.full(len(names), len(clip))
    loud = crop_offsets(np.random.default_rng(3), names, lengths, 2000, "loud", clips)
    tries = random_offsets(np.random.default_rng(3), np.repeat(lengths, LOUD_CROP_TRIES), 2000)
    tries = tries.reshape(-1, LOUD_CROP_TRIES)

    def burst(offsets):
        return np.array([np.clip(np.minimum(o + 2000, 7000) - np.maximum(o, 6000), 0, None) for o in offsets])

    assert all(o in row for o, row in zip(loud, tries))
    assert (burst(loud) == np.array([burst(row).max() for row in tries])).all()
    assert burst(loud).mean() > burst(tries[:, 0]).mean()  # louder than a uniform start on average


def test_the_random_crop_rule_keeps_uniform_offsets_and_an_unknown_rule_is_named(meta):
    lengths = np.full(20, 9000)
    np.testing.assert_array_equal(crop_offsets(np.random.default_rng(1), [None] * 20, lengths, 4000, "random"),
                                  random_offsets(np.random.default_rng(1), lengths, 4000))
    splits = split_folds(meta, 5, 0, [1, 2, 3], [4, 5])
    with pytest.raises(AptUssError, match="crop_rule='quiet' is unknown: allowed are random, loud"):
        simulate_mixtures(splits, dict.fromkeys(splits["filename"], 9000), 0, 1, 4000, crop_rule="quiet")


def test_loud_crops_keep_the_pairs_and_raise_the_target_energy(meta, tiny_dataset):
    from apt_uss.data.clips import ClipStore

    splits = split_folds(meta, 5, 0, [1, 2, 3], [4, 5])
    store = ClipStore(tiny_dataset)
    lengths = {f: len(store.segment(f)) for f in splits["filename"]}
    uniform, test_a = simulate_mixtures(splits, lengths, seed=0, epochs=2, crop_samples=32000)
    loud, test_b = simulate_mixtures(splits, lengths, seed=0, epochs=2, crop_samples=32000, crop_rule="loud",
                                     clips=store)
    assert test_a.equals(test_b)
    for column in ("epoch", "target_file", "interferer_file"):
        assert list(loud[column]) == list(uniform[column])
    energy = [np.square(store.segment(f, o, 32000)).sum() for f, o in zip(loud["target_file"], loud["target_offset"])]
    energy_uniform = [np.square(store.segment(f, o, 32000)).sum()
                      for f, o in zip(uniform["target_file"], uniform["target_offset"])]
    assert np.median(energy) > np.median(energy_uniform)


def test_energy_match_scales_interferer_to_target_energy_within_bounds():
    rng = np.random.default_rng(0)
    target = rng.standard_normal(1000).astype(np.float32)
    quiet = 0.1 * rng.standard_normal(1000).astype(np.float32)
    y = mix(target, quiet, "energy_match")
    # The gain is computed in float64 and applied in float32: the mixture's float32 rounding
    # (relative 6e-8 a sample) moves an energy of 1,000 samples by ~1e-6; 1e-4 leaves margin on any
    # CPU and still fails a gain off by 0.005 dB.
    assert np.isclose(np.sum((y - target) ** 2), np.sum(target**2), rtol=1e-4)
    tiny = 0.01 * quiet  # 60 dB below the target: the gain hits the upper bound
    y = mix(target, tiny, "energy_match")
    # y - target subtracts two float32 values of the target's scale (1): the difference carries their
    # rounding, up to eps32 * 2 ~ 2.4e-7 absolute, hence atol 1e-6 on an interferer of 0.05.
    assert np.allclose(y - target, tiny * ENERGY_RATIO_BOUNDS[1], rtol=1e-3, atol=1e-6)
    assert np.allclose(mix(target, quiet, "sum"), target + quiet)
    with pytest.raises(AptUssError, match="mix_rule='loud'"):
        mix(target, quiet, "loud")
