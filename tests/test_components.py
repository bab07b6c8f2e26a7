"""Components are thin adapters that call their library step by keyword, so an inserted parameter
cannot silently shift the others."""

import ast
import inspect
from pathlib import Path

import pytest

from apt_uss import backbone_steps, steps

ROOT = Path(__file__).resolve().parents[1]
STEPS = {name: fn for module in (steps, backbone_steps) for name, fn in vars(module).items()
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
