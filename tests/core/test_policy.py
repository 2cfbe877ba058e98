"""Policies as data: the default file, the Policy sheet's key/value form, clear refusals."""
import pytest

from crm_core.issues import CrmInputError
from crm_core.policy import Policy, default_policy


def test_default_file_equals_the_built_in_default():
    assert default_policy() == Policy()
    assert default_policy().label == Policy().label


def test_toml_round_trip(tmp_path):
    policy = Policy(name="2026 rules", credit_ratio=0.25, tier_weights={"A": 1.2, "B": 1, "C": 0.8, "D": 0})
    path = tmp_path / "p.toml"
    path.write_text(policy.to_toml(), encoding="utf-8")
    assert Policy.load(path) == policy
    assert Policy.load(path).label.startswith("2026 rules@")


def test_sheet_pairs_replace_a_section_and_keep_the_rest():
    rows = [("credit_ratio", 0.3), ("rate_cutoff.A", 0.9), ("rate_cutoff.B", 0.8), ("rate_cutoff.C", 0.6),
            ("vat.2000-01-01", "0.17"), (None, None), ("# comment", "x")]
    policy = Policy.from_pairs(rows)
    assert policy.credit_ratio == 0.3
    assert policy.rate_cutoffs == {"A": 0.9, "B": 0.8, "C": 0.6}
    assert policy.vat_table == {"2000-01-01": 0.17}
    assert policy.pareto_cutoffs == Policy().pareto_cutoffs


def test_results_name_the_policy_that_made_them():
    assert Policy().label != Policy(credit_ratio=0.21).label


@pytest.mark.parametrize("rows, words", [
    ([("credit_ratoi", 0.2)], "unknown policy key 'credit_ratoi'"),
    ([("credit_ratio", "twenty")], "credit_ratio"),
    ([("vat.2019-04-01", 13)], r"vat\.2019-04-01: 13 is above 1; write 13% or 0\.13"),
    ([("tier_mode", "best")], "tier_mode must be one of"),
    ([("rank_share.A", 0.5)], "add up to 1"),
    ([("credit_rounding", 0.001)], "whole cents"),
])
def test_bad_policy_values_are_refused_clearly(rows, words):
    with pytest.raises(CrmInputError, match=words):
        Policy.from_pairs(rows)


def test_unreadable_policy_file_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("credit_ratio = = 2", encoding="utf-8")
    with pytest.raises(CrmInputError, match="broken.toml"):
        Policy.load(path)


def test_the_shipped_file_is_the_default_written_out_with_every_key_explained():
    from importlib import resources

    from crm_core.policy import KEY_NOTES

    shipped = resources.files("crm_core").joinpath("default_policy.toml").read_text(encoding="utf-8")
    assert shipped == Policy().to_toml()
    keys = {k.split(".")[0] for k, _ in Policy().to_pairs()}
    assert keys == set(KEY_NOTES)
    for note in KEY_NOTES.values():  # bilingual: English, then Chinese after " / "
        english, _, chinese = note.partition(" / ")
        assert english and any("\u4e00" <= ch <= "\u9fff" for ch in chinese), note


def test_suggestion_and_overlap_thresholds_are_policy_keys_with_documented_defaults(capsys):
    from crm_app.cli.main import main

    policy = Policy()
    assert (policy.cut_low_use, policy.cut_low_rate, policy.overlap_top_n) == (0.5, 0.85, 100)
    assert main(["policy"]) == 0
    shown = capsys.readouterr().out
    for line in ("cut_low_use = 0.5", "cut_low_rate = 0.85", "overlap_top_n = 100"):
        assert line in shown
        comment = shown.splitlines()[shown.splitlines().index(line) - 1]
        assert comment.startswith("# ") and " / " in comment
    changed = Policy.from_pairs([("cut_low_use", "30%"), ("cut_low_rate", 0.9), ("overlap_top_n", "50")])
    assert (changed.cut_low_use, changed.cut_low_rate, changed.overlap_top_n) == (0.3, 0.9, 50)


@pytest.mark.parametrize("rows, words", [
    ([("cut_low_use", 50)], r"cut_low_use: 50 is above 1; write 50% or 0\.5"),
    ([("cut_low_rate", -0.1)], "cut_low_rate: -0.1 is below 0"),
    ([("overlap_top_n", 0)], "overlap_top_n: 0 must be 1 or more"),
    ([("credit_rounding", 0.015)], "whole cents"),
])
def test_bad_threshold_values_are_refused_by_key(rows, words):
    with pytest.raises(CrmInputError, match=words):
        Policy.from_pairs(rows)


def test_credit_rounding_in_cents():
    assert Policy().credit_unit_cents == 100
    assert Policy(credit_rounding=1000.0).credit_unit_cents == 100_000
    assert Policy.from_pairs([("credit_rounding", 0.07)]).credit_unit_cents == 7
