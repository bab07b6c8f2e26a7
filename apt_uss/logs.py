"""One logging setup for the CLI, the components and the local runner, and the local runner's folded output."""

import contextlib
import io
import logging
import sys
import threading


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
    line before the next executor log line, or the stream ends first) is written unchanged, so nothing is lost.

    kfp.local prints each task's output from the thread that runs the task, and runs a ParallelFor's tasks (the
    sweep's cells) on a thread pool: the unended line and the held block are kept per thread, and whole lines go to
    ``stream`` under a lock, so tasks running at once neither swallow nor garble each other's lines."""

    MARKER = "Got executor_input:"
    MAX_HELD = 5000  # lines; an executor input is far shorter

    def __init__(self, stream, hint: str = ""):
        self._stream, self._hint = stream, hint
        self._lock = threading.RLock()
        self._partial: dict[int, str] = {}  # per thread: its line not yet ended
        self._held: dict[int, list[str]] = {}  # per thread: the block held, its marker line first

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
        thread = threading.get_ident()
        with self._lock:
            *lines, self._partial[thread] = (self._partial.pop(thread, "") + text).split("\n")
            for line in lines:
                self._line(thread, line + "\n")
        return len(text)

    def _line(self, thread: int, line: str) -> None:
        held = self._held.get(thread)
        if held is None:
            if self.MARKER in line:
                self._held[thread] = [line]
            else:
                self._stream.write(line)
            return
        body, header = line.rstrip("\r\n"), held[0].rstrip("\r\n")
        # The JSON closes with a "}" at the marker line's indent (kfp.local indents a task's output by 4 spaces).
        if body == header[: len(header) - len(header.lstrip())] + "}":
            del self._held[thread]
            self._stream.write(f"{header} {len(held)} lines not shown{self._hint}\n")  # "}" counted
        elif body.lstrip().startswith("[KFP Executor") or len(held) >= self.MAX_HELD:
            self._stream.write("".join(self._held.pop(thread)))
            self._line(thread, line)
        else:
            held.append(line)

    def release(self) -> None:
        """Write whatever is held (blocks not yet closed, then lines not yet ended) as it came, thread by thread."""
        with self._lock:
            for thread in list(self._held):
                self._stream.write("".join(self._held.pop(thread)))
            for thread in list(self._partial):
                self._stream.write(self._partial.pop(thread))
            self._stream.flush()

    def flush(self) -> None:
        with self._lock:
            thread = threading.get_ident()
            # kfp.local writes a line's indent, then the line: an indent alone waits for its line
            if thread not in self._held and self._partial.get(thread, "").strip():
                self._stream.write(self._partial.pop(thread))
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
        try:
            folding.release()
        except OSError:  # stdout gone (a closed pipe): what it held cannot be shown, and the run's own error counts
            pass
