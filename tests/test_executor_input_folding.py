"""The local runners fold the JSON KFP's executor logs at each task's start into one line, and lose nothing else."""

import io
import json
import sys

import pytest

from apt_uss.logs import ExecutorInputFolding, executor_input_folded

HEADER = "[KFP Executor 2026-12-07 18:00:00,000 INFO]: Got executor_input:"
EXECUTOR_INPUT = json.dumps({"inputs": {"parameterValues": {"n_shot": 5, "note": "}"}},
                             "outputs": {"artifacts": {"splits": {"artifacts": [{"uri": "/tmp/x"}]}}}}, indent=4)
TASK_LOG = [
    "[KFP Executor 2026-12-07 18:00:00,000 INFO]: Looking for component `split_folds` in --component_module_path ...",
    HEADER,
    *EXECUTOR_INPUT.splitlines(),
    "2026-12-07 18:00:01,000 INFO apt_uss.steps.split: 3 classes, 5 shots",
    "[KFP Executor 2026-12-07 18:00:02,000 INFO]: Wrote executor output file to /tmp/out.json.",
]


def folded(lines: list[str], hint: str = "", indent: str = "") -> str:
    out = io.StringIO()
    stream = ExecutorInputFolding(out, hint)
    for line in lines:  # as kfp.local prints a task's output: one line at a time, the indent written first
        if indent:
            print(indent, end="", file=stream)
        print(line, file=stream)
    stream.release()
    return out.getvalue()


@pytest.mark.parametrize("indent", ["", "    "])  # kfp.local indents a task's output by 4 spaces
def test_the_executor_input_becomes_one_line_counting_its_lines_and_the_rest_is_untouched(indent):
    n_json = len(EXECUTOR_INPUT.splitlines())
    assert n_json > 10
    text = folded(TASK_LOG, hint=" (show them: X)", indent=indent)
    assert text.splitlines() == [indent + TASK_LOG[0], f"{indent}{HEADER} {n_json} lines not shown (show them: X)",
                                 *(indent + line for line in TASK_LOG[-2:])]


@pytest.mark.parametrize("indent", ["", "    "])
def test_two_tasks_fold_each_block_and_no_inner_closing_brace_ends_it(indent):
    text = folded(TASK_LOG + TASK_LOG, indent=indent)
    assert text.count("lines not shown") == 2
    assert '"inputs"' not in text and "}" not in text


def test_writes_in_pieces_fold_as_whole_lines():
    out = io.StringIO()
    stream = ExecutorInputFolding(out)
    whole = "\n".join(TASK_LOG) + "\n"
    for i in range(0, len(whole), 7):
        stream.write(whole[i:i + 7])
    stream.release()
    assert out.getvalue() == folded(TASK_LOG)


@pytest.mark.parametrize("lines", [
    [HEADER, "{", '    "inputs": {'],  # the task died mid-dump: the stream ends inside the block
    [HEADER, "not JSON at all", "[KFP Executor 2026-12-07 18:00:02,000 INFO]: next"],  # no closing brace before the next
])
def test_a_block_that_never_closes_is_written_as_it_came(lines):
    assert folded(lines) == "".join(line + "\n" for line in lines)


def test_lines_after_a_released_block_in_the_same_write_keep_their_order():
    out = io.StringIO()
    stream = ExecutorInputFolding(out)
    text = f"{HEADER}\n{{\n[KFP Executor x INFO]: next\nafter\nunended"
    stream.write(text)
    stream.release()
    assert out.getvalue() == text


def test_tasks_printing_at_once_from_their_threads_keep_every_line_whole_and_fold_each_block():
    # kfp.local runs a ParallelFor's tasks (the sweep's cells) on a thread pool; each prints its output, indent first
    import threading
    import time
    from collections import Counter

    out = io.StringIO()
    stream = ExecutorInputFolding(out)
    tasks, repeats = 4, 50
    start = threading.Barrier(tasks)

    def task(k: int) -> None:
        start.wait()
        for _ in range(repeats):
            for line in TASK_LOG:
                stream.write("    ")
                time.sleep(0)  # let another task print between the indent and its line
                stream.write(line.replace("split_folds", f"task_{k}") + "\n")
                time.sleep(0)

    threads = [threading.Thread(target=task, args=(k,)) for k in range(tasks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stream.release()
    lines = out.getvalue().splitlines()
    assert sum("lines not shown" in line for line in lines) == tasks * repeats
    assert '"inputs"' not in out.getvalue()
    expected = Counter("    " + line.replace("split_folds", f"task_{k}") for k in range(tasks)
                       for line in (TASK_LOG[0], *TASK_LOG[-2:]) for _ in range(repeats))
    assert Counter(line for line in lines if "lines not shown" not in line) == expected


def test_an_indent_flushed_before_its_line_waits_for_it():
    out = io.StringIO()
    stream = ExecutorInputFolding(out)
    for line in TASK_LOG:
        stream.write("    ")
        stream.flush()
        stream.write(line + "\n")
    stream.release()
    assert out.getvalue().count("lines not shown") == 1


def test_an_unended_last_line_is_written_on_release():
    out = io.StringIO()
    stream = ExecutorInputFolding(out)
    stream.write("progress 3/10")
    stream.release()
    assert out.getvalue() == "progress 3/10"


def test_the_context_folds_stdout_within_it_restores_it_and_can_be_turned_off(capsys):
    with executor_input_folded():
        assert sys.stdout is not sys.__stdout__
        for line in TASK_LOG:
            print(line)
    assert "lines not shown" in capsys.readouterr().out
    with executor_input_folded(enabled=False):
        for line in TASK_LOG:
            print(line)
    assert capsys.readouterr().out == "".join(line + "\n" for line in TASK_LOG)


def test_every_local_runner_takes_the_flag():
    from pipelines import run_local, run_sweep

    assert run_local.build_parser().parse_args(["--show-executor-input"]).show_executor_input
    assert not run_local.build_parser().parse_args([]).show_executor_input
    assert run_sweep.build_parser("demo").parse_args(["--show-executor-input"]).show_executor_input


@pytest.mark.parametrize("target, module", [("pipeline-run", "run_local"), ("sweep", "run_sweep"),
                                            ("backbone", "run_backbone")])
def test_make_passes_show_executor_input_to_every_local_run(target, module):
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]

    def recipe(*variables: str) -> str:
        out = subprocess.run(["make", "-n", "--no-print-directory", target, *variables], cwd=root,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return next(ln for ln in out.stdout.replace("\\\n", " ").splitlines() if f"pipelines.{module}" in ln)

    assert "--show-executor-input" in recipe("SHOW_EXECUTOR_INPUT=1")
    assert "--show-executor-input" not in recipe()
    assert "--show-executor-input" not in recipe("SHOW_EXECUTOR_INPUT=0")
    help_text = subprocess.run([sys.executable, "-m", f"pipelines.{module}", "--help"], cwd=root,
                               capture_output=True, text=True, timeout=120).stdout
    assert "--show-executor-input" in help_text
