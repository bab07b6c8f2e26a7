"""Which variables given on a make command line no makefile of this project knows (misspellings).

``python3 pipelines/make_variables.py NAME... -- MAKEFILE...`` prints one message naming each
unknown NAME and the closest known one, or nothing. A name is known when a makefile assigns it
(``NAME ?= ...``, ``NAME := ...``) or reads it (``$(NAME)``), when it names a pipeline parameter
(``apt_uss/params/spec.py``), or when it is an environment setting
the programs the recipes run read (``ENVIRONMENT_PREFIXES``). The Makefile calls it before any
target runs; it needs only the standard library (it runs before the virtual environment exists).
"""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, before the venv exists
from apt_uss.params import spec  # noqa: E402  (standard library only)

ASSIGNED = re.compile(r"^\s*(?:override\s+|export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*(?:\?|:|::|\+)?=", re.M)
READ = re.compile(r"\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}:]|\$[({](?:if|filter|filter-out|or|and|strip|origin) +\$?[({]?([A-Z_][A-Z0-9_]*)")


# make exports command-line variables to its recipes, so these reach the programs they run, which
# read them from the environment (S3 and MLflow clients, the local servers, images/*.sh).
ENVIRONMENT_PREFIXES = ("AWS_", "MLFLOW_", "APT_USS_", "KFP_", "DOCKER", "DEBIAN_", "ENGINE_", "GIT_", "PIP_")


def known_variables(makefiles: list[str]) -> set[str]:
    names: set[str] = {p.make_variable for p in spec.BY_NAME.values()}  # the pipelines' parameters
    for path in makefiles:
        text = Path(path).read_text()
        names.update(ASSIGNED.findall(text))
        names.update(n for pair in READ.findall(text) for n in pair if n)
    return names


def unknown_message(given: list[str], makefiles: list[str]) -> str:
    known = known_variables(makefiles)
    parts = []
    for name in given:
        if name in known or name.startswith(ENVIRONMENT_PREFIXES):
            continue
        close = difflib.get_close_matches(name.upper(), sorted(known), 1, 0.6)
        parts.append(f"{name} is not a variable of this Makefile" + (f" (did you mean {close[0]}?)" if close else ""))
    return "; ".join(parts) + ("; make help and README, Parameters list them" if parts else "")


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("usage: make_variables.py NAME... -- MAKEFILE...", file=sys.stderr)
        return 2
    split = argv.index("--")
    print(unknown_message(argv[:split], argv[split + 1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
