"""The package's architecture holds: layers import one way (import-linter's contracts in pyproject.toml),
no import cycle between modules, and no function-local import below the command line and the tools."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "apt_uss"
# The command line and the dev tools import their commands' modules when a command runs (so `--help` and
# `s3 up` need no torch); every other module imports at its top, where a cycle would show.
LAZY_ALLOWED = ("cli.py", "tools/")


def test_the_layer_contracts_are_kept():
    done = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "3 kept, 0 broken" in done.stdout


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _apt_uss_imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, ast.AST]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node) for alias in node.names if alias.name.startswith("apt_uss")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(parts + ([node.module] if node.module else []))
            if base.startswith("apt_uss"):
                found += [(f"{base}.{alias.name}", node) for alias in node.names]
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        targets = set()
        for imported, _ in _apt_uss_imports(ast.parse(path.read_text()), name, path.name == "__init__.py"):
            while imported and imported not in files:  # `from apt_uss.x import name`: the module is apt_uss.x
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def test_no_module_imports_itself_through_others():
    assert not _cycles(_graph())


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_the_cycle_check_finds_a_cycle(tmp_path, monkeypatch):
    """The check above can fail: two modules importing each other are reported."""
    fake = tmp_path / "apt_uss"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "a.py").write_text("from apt_uss.b import x\n")
    (fake / "b.py").write_text("def f():\n    from apt_uss import a\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    graph = _graph()
    assert graph["apt_uss.a"] == {"apt_uss.b"} and graph["apt_uss.b"] == {"apt_uss.a"}
    assert _cycles(graph) == [["apt_uss.a", "apt_uss.b", "apt_uss.a"]]


def test_no_function_local_import_of_the_package_outside_the_command_line_and_tools():
    hidden = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(LAZY_ALLOWED):
            continue
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        for imported, node in _apt_uss_imports(tree, _module_name(path), path.name == "__init__.py"):
            if id(node) not in top:
                hidden.append(f"{rel}:{node.lineno} imports {imported} inside a function")
    assert not hidden, hidden


def test_the_tree_groups_modules_by_concern():
    """Every module lives in a subpackage of a layer, apart from the package's entry points and base."""
    top_level = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top_level == ["__init__.py", "__main__.py", "cli.py", "errors.py", "logs.py"]
    layers = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert layers == ["data", "evaluation", "io", "method", "models", "params", "results", "serving", "steps", "tools"]


def test_the_data_steps_the_parameter_check_and_their_components_import_no_torch():
    """The fetch, split and mixture pods are light (0.5 CPU, 1 GiB on a cluster), and the parameter check runs first
    in every run and before every local run or submission: importing torch there would cost seconds and hundreds of
    MB before any work."""
    probe = ("import sys; import apt_uss.steps.data, apt_uss.steps.validation, apt_uss.logs, kfp.dsl, "
             "pipelines.run_local, pipelines.submit; "
             "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]", done.stdout[:500]
    source = (ROOT / "components" / "apt_uss_components.py").read_text()
    for step in ("fetch_dataset_step", "split_folds_step", "simulate_mixtures_step"):
        assert f"from apt_uss.steps.data import {step}" in source, step
    assert "from apt_uss.steps.validation import validate_parameters_step" in source
