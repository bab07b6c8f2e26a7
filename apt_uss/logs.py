"""One logging setup for the CLI, the components and the local runner, and the local runner's folded output."""

import contextlib
import io
import logging
import sys


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, stream=sys.stderr, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # boto and urllib3 log request details (and, at DEBUG, headers) that have no place in run logs.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# How a user of make or of the local runners' CLIs gets the folded lines back.
SHOW_HINT = " (SHOW_EXECUTOR_INPUT=1, or --show-executor-input, shows them)"


class ExecutorInputFolding(io.TextIOBase):
    """A text stream that writes everything to ``stream`` except the JSON that KFP's executor logs after "Got
    executor_input:" at the start of every task (30-130 lines a task, most of a local run's output): that block
    becomes one line saying how many lines it held. Text that turns out not to be such a block (no closing ``}``
    line before the next executor log line, or the stream ends first) is written unchanged, so nothing is lost."""

    MARKER = "Got executor_input:"
    MAX_HELD = 5000  # lines; an executor input is far shorter

    def __init__(self, stream, hint: str = ""):
        self._stream, self._hint = stream, hint
        self._partial, self._held = "", None  # the held block: its marker line first

    def writable(self) -> bool:
        return True

    @property
    def encoding(self):
        return getattr(self._stream, "encoding", None)

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._line(line + "\n")
        return len(text)

    def _line(self, line: str) -> None:
        if self._held is None:
            if self.MARKER in line:
                self._held = [line]
            else:
                self._stream.write(line)
            return
        body, header = line.rstrip("\r\n"), self._held[0].rstrip("\r\n")
        # The JSON closes with a "}" at the marker line's indent (kfp.local indents a task's output by 4 spaces).
        if body == header[: len(header) - len(header.lstrip())] + "}":
            count = len(self._held)  # the block's lines, "}" included
            self._held = None
            self._stream.write(f"{header} {count} lines not shown{self._hint}\n")
        elif body.lstrip().startswith("[KFP Executor") or len(self._held) >= self.MAX_HELD:
            self._write_held()
            self._line(line)
        else:
            self._held.append(line)

    def _write_held(self) -> None:
        held, self._held = self._held or [], None
        self._stream.write("".join(held))

    def release(self) -> None:
        """Write whatever is held (a block not yet closed, then a line not yet ended) as it came."""
        self._write_held()
        self._stream.write(self._partial)
        self._partial = ""
        self._stream.flush()

    def flush(self) -> None:
        if self._held is None and self._partial:
            self._stream.write(self._partial)
            self._partial = ""
        self._stream.flush()


@contextlib.contextmanager
def executor_input_folded(enabled: bool = True, hint: str = SHOW_HINT):
    """Within the block, ``sys.stdout`` folds KFP's executor input dumps (``ExecutorInputFolding``); the local
    runners print every task's output through it. ``enabled`` False leaves stdout as it is."""
    if not enabled:
        yield
        return
    original = sys.stdout
    folding = ExecutorInputFolding(original, hint)
    sys.stdout = folding
    try:
        yield
    finally:
        sys.stdout = original
        folding.release()
