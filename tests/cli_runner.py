"""Run a command's ``main(argv)`` in the test's interpreter: its imports are paid once for many probes."""

import logging


def call_main(main, argv, capsys):
    """(exit code, stdout, stderr) of ``main(argv)``, argparse's own refusals included; the logging
    set-up main() changes is put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    finally:
        root.handlers[:], root.level = handlers, level
    out = capsys.readouterr()
    return code, out.out, out.err
