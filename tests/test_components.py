"""Components are thin adapters that call their library step by keyword, so an inserted parameter
cannot silently shift the others."""

import ast
import inspect
from pathlib import Path

import pytest

from apt_uss.steps import backbone as backbone_steps
from apt_uss.steps import data as data_steps
from apt_uss.steps import pipeline as steps

ROOT = Path(__file__).resolve().parents[1]
STEPS = {name: fn for module in (data_steps, steps, backbone_steps) for name, fn in vars(module).items()
         if name.endswith("_step") and callable(fn)}


def _step_calls():
    for path in sorted((ROOT / "components").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in STEPS:
                yield path.name, node


CALLS = list(_step_calls())


def test_every_component_calls_a_library_step():
    assert {name for _, node in CALLS for name in [node.func.id]} >= {
        "fetch_dataset_step", "split_folds_step", "simulate_mixtures_step", "init_prompts_step",
        "tune_prompts_step", "evaluate_step", "audio_examples_step", "report_step",
        "pretrain_sed_step", "pretrain_separator_step"}


@pytest.mark.parametrize("file, call", CALLS, ids=[f"{f}:{c.func.id}" for f, c in CALLS])
def test_steps_are_called_with_keyword_arguments_their_signature_has(file, call):
    assert not call.args, f"{file}:{call.lineno} calls {call.func.id} with positional arguments"
    accepted = set(inspect.signature(STEPS[call.func.id]).parameters)
    given = {k.arg for k in call.keywords}
    assert given <= accepted, f"{call.func.id} has no parameter {sorted(given - accepted)}"


def _defaults():
    from pipelines.apt_uss_pipeline import apt_uss_pipeline

    return {name: p.default for name, p in inspect.signature(apt_uss_pipeline.pipeline_func).parameters.items()}


def test_the_parameter_check_reads_numbers_as_kfp_hands_them_over_and_refuses_bad_values():
    from apt_uss.errors import AptUssError
    from apt_uss.params import spec
    from apt_uss.steps.validation import validate_parameters_step

    INTEGER_PARAMETERS = [q.name for q in spec.PARAMETERS if q.type is int]

    params = {k: v for k, v in _defaults().items() if not isinstance(v, (list, dict))}
    as_text = {k: str(float(v)) if k in INTEGER_PARAMETERS else str(v) for k, v in params.items()}  # "20.0", "0.0003"
    as_json = {k: float(v) if k in INTEGER_PARAMETERS else v for k, v in params.items()}
    for given in (params, as_text, as_json):
        checked = validate_parameters_step(given)
        assert checked["epochs"] == params["epochs"] and isinstance(checked["epochs"], int)
        assert checked["lr"] == params["lr"] and checked["seed"] == params["seed"]
    with pytest.raises(AptUssError, match="crop_rule='quiet' is unknown"):
        validate_parameters_step(dict(as_text, crop_rule="quiet"))
    with pytest.raises(AptUssError, match="epochs='many' is not valid: it must be an integer"):
        validate_parameters_step(dict(as_text, epochs="many"))


def test_the_compiled_pipeline_checks_its_parameters_before_anything_else(tmp_path):
    from pipelines.apt_uss_pipeline import apt_uss_pipeline
    from tests.pipeline_ir import dag_tasks

    tasks = dag_tasks(apt_uss_pipeline, tmp_path)
    assert "dependentTasks" not in tasks["validate-parameters"]
    assert "validate-parameters" in tasks["fetch-dataset"]["dependentTasks"]
    # every other task waits for the fetch, so for the check
    given = tasks["validate-parameters"]["inputs"]["parameters"]["params"]
    assert given, "the check is given the run's parameters"


def test_a_run_with_a_bad_value_given_straight_to_the_pipeline_stops_at_the_check(tmp_path, capfd):
    """As a Kubeflow UI run would: no run_local check before it, the DAG's first task refuses it."""
    from kfp import local

    from pipelines.apt_uss_pipeline import apt_uss_pipeline

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "outputs"))
    with pytest.raises(RuntimeError, match="validate-parameters"):
        apt_uss_pipeline(crop_rule="quiet", artifact_uri="", backbone="tiny", random_weights=True, n_classes=3)
    logged = capfd.readouterr()
    assert "error: crop_rule='quiet' is unknown: allowed are random, loud" in logged.out + logged.err
    assert not list((tmp_path / "outputs").glob("*/fetch-dataset"))


def test_the_parameter_check_is_a_command_too(capsys):
    import json

    from apt_uss import cli
    from tests.cli_runner import call_main

    params = {k: v for k, v in _defaults().items() if not isinstance(v, (list, dict))}
    code, out, _ = call_main(cli.main, ["validate-parameters", "--params", json.dumps(params)], capsys)
    assert code == 0 and json.loads(out)["crop_rule"] == params["crop_rule"]
    code, _, err = call_main(cli.main, ["validate-parameters", "--params", json.dumps(dict(params, lr=-1))], capsys)
    assert code == 2 and err.strip().splitlines()[-1] == "error: lr=-1.0 is not valid: it must be positive"
    del params["seed"]
    code, _, err = call_main(cli.main, ["validate-parameters", "--params", json.dumps(params)], capsys)
    assert code == 2 and "lack seed" in err
    code, _, err = call_main(cli.main, ["validate-parameters", "--params", "[1]"], capsys)
    assert code == 2 and "must be a JSON object" in err
