"""How every aiconfig command line ends: one line on stderr and an exit status, never a traceback.

Shared by ``aiconfig`` (:mod:`aiconfig.cli`) and ``python -m capture`` so both exit the same way;
a leaf (it needs only the error tree), so no job package has to import a CLI to get it.

Exit statuses: 0 ok, 1 a handled error (:class:`~aiconfig.AiconfigError`, one line per problem;
also MemoryError under a run's budget and a closed stdout; an error's ``exit_code`` may say
otherwise: 3 for :class:`~aiconfig.StreamFailedError`, ``capture --strict``), 2 usage (a bad flag:
:class:`UsageParser`; flags that contradict each other or the config:
:class:`~aiconfig.UsageError`), 130 Ctrl+C, 143 SIGTERM inside a run
(:class:`~aiconfig.Terminated`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ._errors import AiconfigError, Terminated, UsageError

__all__ = ["UsageParser", "guarded"]


class UsageParser(argparse.ArgumentParser):
    """argparse that exits 2 with the usage and one error line, never a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def guarded(job: Callable[[], int]) -> int:
    """Run ``job``; a handled failure is one line on stderr and an exit status (see above)."""
    try:
        return job()
    except UsageError as exc:  # the command line contradicts itself or the config
        for problem in exc.problems:
            sys.stderr.write(f"usage error: {problem.render()}\n")
        return 2
    except AiconfigError as exc:
        for problem in exc.problems:
            sys.stderr.write(f"error: {problem.render()}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Terminated:
        sys.stderr.write("terminated (SIGTERM)\n")
        return 143
    except MemoryError:
        sys.stderr.write(
            "error: out of memory (AP_MEM_LIMIT_MB or a limit set around the run); "
            "raise the limit or lower the buffering\n"
        )
        return 1
    except BrokenPipeError:
        return 1
