"""One parameter spec (apt_uss/params/spec.py): everything that names a pipeline parameter is built from it
or agrees with it, and each profile is a named parameter set in it."""

import ast
import inspect
import json
import re
import subprocess
from pathlib import Path

import pytest

from apt_uss.errors import AptUssError
from apt_uss.models.backbone import BackboneSpec
from apt_uss.params import spec

ROOT = Path(__file__).resolve().parents[1]
NAMES = [q.name for q in spec.PARAMETERS]


def test_the_pipeline_signature_is_the_spec_in_order_with_the_demo_profiles_defaults():
    from pipelines.apt_uss_pipeline import apt_uss_pipeline, build_pipeline

    signature = inspect.signature(apt_uss_pipeline.pipeline_func)
    assert list(signature.parameters) == NAMES
    assert {n: p.default for n, p in signature.parameters.items()} == {n: spec.defaults("demo")[n] for n in NAMES}
    assert {n: p.annotation for n, p in signature.parameters.items()} == {q.name: q.type for q in spec.PARAMETERS}
    paper = inspect.signature(build_pipeline("paper").pipeline_func)
    assert {n: p.default for n, p in paper.parameters.items()} == {n: spec.defaults("paper")[n] for n in NAMES}


@pytest.mark.parametrize("module", ["pipelines.run_local", "pipelines.submit"])
def test_run_local_and_submit_have_one_flag_per_spec_parameter_defaulting_to_the_profile(module):
    import importlib

    build_parser = importlib.import_module(module).build_parser
    for profile in spec.PROFILES:
        parser = build_parser(profile)
        flags = {a.dest: a for a in parser._actions if a.option_strings}
        assert set(NAMES) <= set(flags)
        assert {n: flags[n].default for n in NAMES} == {n: spec.defaults(profile)[n] for n in NAMES}
        assert all(flags[q.name].option_strings == [q.flag] for q in spec.PARAMETERS)


def test_the_makefile_passes_every_spec_parameter_by_its_upper_case_name():
    out = subprocess.run(["python3", "-m", "apt_uss.params.spec", "make-variables"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [f"{q.name.upper()}={q.flag}" for q in spec.PARAMETERS]
    makefile = (ROOT / "Makefile").read_text()
    # No pipeline parameter is spelled in the Makefile itself: its values come from the spec's profiles.
    spelled = [q.make_variable for q in spec.PARAMETERS if re.search(rf"^{q.make_variable}\s*[?:]?=", makefile, re.M)]
    assert spelled == []


def test_the_step_commands_take_the_spec_flags_with_the_demo_defaults():
    from apt_uss.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    for command, names in {"simulate-mixtures": ["seed", "epochs", "crop_seconds", "mix_rule", "crop_rule"],
                           "tune-prompts": ["lr", "lr_schedule", "loss_function", "batch_size", "tune", "precision",
                                            *spec.BACKBONE_PARAMETERS],
                           "split-folds": ["n_shot", "seed", "train_folds", "test_folds"]}.items():
        flags = {a.dest: a for a in sub[command]._actions if a.option_strings}
        for name in names:
            assert flags[name].default == spec.defaults("demo")[name], (command, name)
            assert flags[name].option_strings == [spec.BY_NAME[name].flag]


def test_the_report_records_the_result_parameters_and_the_sweep_compares_them():
    from apt_uss.results.sweep import SAME_SETTINGS

    assert set(spec.RESULT_PARAMETERS) == set(NAMES) - set(spec.NOT_RESULT_PARAMETERS)
    assert set(SAME_SETTINGS) == set(spec.RESULT_PARAMETERS) - {"n_shot", "device", "audio_examples_per_class"}
    source = (ROOT / "pipelines" / "apt_uss_pipeline.py").read_text()
    assert "run_params = {name: p[name] for name in spec.RESULT_PARAMETERS}" in source


def test_the_readme_parameter_table_is_the_spec():
    readme = (ROOT / "README.md").read_text()
    assert spec.markdown_table() in readme, "README's table differs: paste `python3 -m apt_uss.params.spec markdown`"


def test_allowed_values_are_the_ones_the_code_acts_on():
    from apt_uss.models.config import BACKBONE_CONFIGS

    assert set(spec.BACKBONES) == set(BACKBONE_CONFIGS)
    for name in ("tune", "precision", "lr_schedule", "loss_function", "dataset", "mix_rule", "crop_rule", "backbone"):
        assert spec.BY_NAME[name].choices, name


def test_each_parameter_is_declared_once_in_the_code():
    """No step, component or pipeline module declares a pipeline parameter's default: a function signature there
    that gives one a literal default is a second spelling (the library's own functions below the steps take
    plain arguments and may default them)."""
    literal_defaults = []
    for folder in ("apt_uss/steps", "components", "pipelines"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name in ("backbone.py", "backbone_pipeline.py", "backbone_components.py"):
                continue  # the backbone recipe's pipeline: its own parameters (seed, steps, ...), not these
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                args = node.args.args + node.args.kwonlyargs
                defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults + \
                    node.args.kw_defaults
                for arg, default in zip(args, defaults):
                    if arg.arg in spec.BY_NAME and isinstance(default, ast.Constant) and default.value not in ("", None):
                        literal_defaults.append(f"{path.relative_to(ROOT)}:{node.name}({arg.arg}={default.value!r})")
    assert not literal_defaults, literal_defaults


@pytest.mark.parametrize("name, text, value", [("epochs", "20.0", 20), ("epochs", 20.0, 20), ("lr", "0.0003", 3e-4),
                                               ("random_weights", "False", False), ("random_weights", "true", True),
                                               ("gpu_node_selector", '{"pool": "a100"}', {"pool": "a100"}),
                                               ("n_shot", 5, "5")])
def test_values_are_read_as_their_type_from_text_as_kfp_and_make_give_them(name, text, value):
    assert spec.parse_value(name, text) == value and type(spec.parse_value(name, text)) is type(value)


@pytest.mark.parametrize("name, text, message", [
    ("epochs", "2.5", "epochs='2.5' is not valid: it must be an integer"),
    ("random_weights", "maybe", "random_weights='maybe' is not valid: it must be true or false"),
    ("gpu_tolerations", "{}", "gpu_tolerations='{}' is not valid: it must be a JSON list"),
    ("n_shots", "5", "'n_shots' is not a pipeline parameter (did you mean n_shot?)"),
])
def test_a_value_of_the_wrong_type_or_an_unknown_name_is_one_error_naming_it(name, text, message):
    with pytest.raises(AptUssError) as err:
        spec.parse_value(name, text)
    assert str(err.value) == message


def test_profiles_are_data_and_an_unknown_one_is_refused():
    assert set(spec.PROFILES) == {"demo", "paper"}
    assert spec.defaults("paper")["backbone"] == "paper" and spec.defaults("demo")["backbone"] == "demo"
    per_profile = {q.name for q in spec.PARAMETERS if q.default is spec.PER_PROFILE}
    assert all(set(values) == per_profile for values in spec.PROFILES.values())
    with pytest.raises(AptUssError, match="profile='fast' is unknown: allowed are demo, paper"):
        spec.defaults("fast")
    a, b = spec.defaults(), spec.defaults()
    a["gpu_tolerations"].append("x")
    assert b["gpu_tolerations"] == spec.GPU_TOLERATIONS and len(spec.GPU_TOLERATIONS) == 1  # fresh copies


# The backbone travels as one spec; a config without weights is refused unless random weights are asked for.

def test_the_paper_profile_without_checkpoints_is_refused_before_any_step_naming_the_uris():
    from apt_uss.steps.validation import check_pipeline_params

    params = spec.defaults("paper")
    with pytest.raises(AptUssError) as err:
        check_pipeline_params(params)
    assert str(err.value).startswith("backbone='paper' has no weights: give separator_checkpoint_uri and "
                                     "sed_checkpoint_uri")
    assert "random_weights=true" in str(err.value)
    check_pipeline_params(dict(params, random_weights=True))  # a smoke run, asked for by name
    check_pipeline_params(dict(params, separator_checkpoint_uri="s3://w/sep.ckpt"))  # it may carry the SED


def test_the_make_run_of_the_paper_profile_stops_at_the_check_with_one_line(tmp_path):
    import os

    # An S3 endpoint of the user's own (nothing listens there): no local server starts, and the check comes first.
    env = dict(os.environ, AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s")
    out = subprocess.run(["make", "--no-print-directory", "pipeline-run", "PROFILE=paper", f"STATE={tmp_path}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode != 0
    assert "error: backbone='paper' has no weights: give separator_checkpoint_uri and sed_checkpoint_uri" \
        in out.stderr, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and not (tmp_path / "kfp-outputs").exists()


def test_a_backbone_spec_reads_the_text_kfp_hands_a_step_and_refuses_missing_weights_at_load():
    given = {"backbone": "tiny", "sed_checkpoint_uri": "", "separator_checkpoint_uri": "", "backbone_seed": "3.0",
             "device": "cpu", "random_weights": "True"}
    backbone = BackboneSpec.of(given)
    assert backbone == BackboneSpec("tiny", seed=3, device="cpu", random_weights=True)
    assert backbone.as_params() == {**given, "backbone_seed": 3, "random_weights": True}
    assert backbone.load().cfg.name == "tiny"
    with pytest.raises(AptUssError, match="backbone='tiny' has no weights"):
        BackboneSpec("tiny").load()
    with pytest.raises(AptUssError, match="unknown key.*seed"):
        BackboneSpec.of({"backbone": "tiny", "seed": 1})


def test_a_separator_checkpoint_without_an_sed_is_refused_unless_random_weights(tmp_path):
    import torch

    from apt_uss.models.backbone import seeded_backbone
    from apt_uss.models.config import get_config

    path = tmp_path / "sep.pt"
    torch.save(seeded_backbone(get_config("tiny"), 0).separator.state_dict(), path)
    with pytest.raises(AptUssError, match="carries no SED: give sed_checkpoint_uri"):
        BackboneSpec("tiny", separator_checkpoint_uri=str(path)).load()
    assert BackboneSpec("tiny", separator_checkpoint_uri=str(path), random_weights=True).load()


def test_the_step_functions_take_the_backbone_as_one_argument():
    from apt_uss.steps import pipeline as steps

    for name in ("init_prompts_step", "tune_prompts_step", "evaluate_step", "audio_examples_step", "separate_step"):
        params = inspect.signature(getattr(steps, name)).parameters
        assert "backbone" in params and not set(params) & {"sed_checkpoint_uri", "separator_checkpoint_uri",
                                                            "backbone_seed", "device"}, name


def test_the_parameter_check_command_prints_the_checked_values(tmp_path, capsys):
    from cli_runner import call_main

    from apt_uss.cli import main

    given = tmp_path / "params.json"
    given.write_text(json.dumps({k: v for k, v in spec.defaults().items() if k in spec.CHECKED_PARAMETERS}))
    code, out, err = call_main(main, ["validate-parameters", "--params", f"@{given}"], capsys)
    assert code == 0, err
    assert json.loads(out)["lr"] == spec.defaults()["lr"]


def test_an_empty_list_or_dict_variable_means_the_default():
    assert spec.parse_value("gpu_tolerations", "") == spec.GPU_TOLERATIONS
    assert spec.parse_value("gpu_node_selector", "") == {}


def test_a_make_value_with_a_quote_reaches_the_flag_whole():
    out = subprocess.run(["make", "-n", "--no-print-directory", "pipeline-run", "EXPERIMENT=bob's run"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    import shlex

    line = next(ln for ln in out.stdout.replace("\\\n", " ").splitlines() if "pipelines.run_local" in ln)
    argv = shlex.split(line.split("pipelines.run_local", 1)[1])
    assert argv[argv.index("--experiment") + 1] == "bob's run"

