import pytest

from apt_uss.errors import AptUssError
from apt_uss.params.checks import check_dataset, check_sha256, parse_folds, parse_n_shot


@pytest.mark.parametrize("value, expected", [("5", 5), (1, 1), (" 10 ", 10), ("full", None), ("FULL", None)])
def test_n_shot_accepts_positive_integers_and_full(value, expected):
    assert parse_n_shot(value) == expected


@pytest.mark.parametrize("value", ["0", "-3", "abc", "2.5", ""])
def test_n_shot_rejects_bad_values_naming_them(value):
    with pytest.raises(AptUssError) as err:
        parse_n_shot(value)
    assert repr(value) in str(err.value) and "full" in str(err.value)


def test_unknown_dataset_lists_the_allowed_names():
    with pytest.raises(AptUssError, match="'musdb'.*synthetic, debian_sounds, esc50"):
        check_dataset("musdb")


def test_sha256_must_be_64_hex_digits():
    assert check_sha256("") == "" and check_sha256("AB" * 32) == "ab" * 32
    with pytest.raises(AptUssError, match="dataset_sha256='abc'"):
        check_sha256("abc")


def test_folds_parse_and_reject_garbage():
    assert parse_folds("3, 1,2") == [1, 2, 3]
    with pytest.raises(AptUssError, match="train_folds"):
        parse_folds("a,b", "train_folds")
