"""How every command runs: absl flags with one-line errors, its body under ``run_cli``, a quiet Ctrl-C.

Exit statuses: 0 done; 1 an error, reported as one line ``error: ...``; 75 (EX_TEMPFAIL, "try again")
training stopped by SIGTERM with its state saved, so a job script can requeue the same command;
130 (128 + SIGINT) stopped by Ctrl-C.
"""

from __future__ import annotations

import logging
import sys
from typing import Callable, List, Optional

EXIT_RESUMABLE = 75
EXIT_INTERRUPTED = 130


def run_command(run: Callable[[], Optional[int]]) -> None:
    """Parse the flags, then run ``run`` (which may return an exit status); never a traceback for the user."""
    from absl import app

    from scripts.cli.errors import run_cli
    from scripts.cli.flags import parse_flags

    def main(argv: List[str]) -> None:
        if argv[1:]:
            print(f"error: unexpected argument {argv[1]!r}; every option is a --flag=value", file=sys.stderr)
            sys.exit(1)
        run_cli(run)

    try:
        app.run(main, flags_parser=parse_flags)
    except KeyboardInterrupt:
        logging.disable(logging.CRITICAL)  # exit handlers of half-imported libraries would log after the line
        print("interrupted by Ctrl-C", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)


def stop_status(signal_name: Optional[str]) -> int:
    """The exit status of a training run stopped by ``signal_name`` (None: it finished)."""
    return {None: 0, "SIGTERM": EXIT_RESUMABLE, "SIGINT": EXIT_INTERRUPTED}[signal_name]
