"""Entry point: parse flags, bring the services up, run until the duration ends or Ctrl-C, summarise.

Exit status: 0 when the run is clean (nothing valid lost, no order broken; in worker mode: every poll
and invocation worked and the ledger answered), 1 when it is not, 2 for a usage or configuration error
(named in one line: a bad flag, a database that cannot be reached, a fixed port taken; the traceback
too with ``--debug``), 129 when the terminal went away. Ctrl-C or SIGTERM stops the fleet and drains;
a second one skips the drain. SIGHUP (the terminal closed), or a write to the terminal that fails
(``make run | head -1``), stops the run as SIGTERM does; nothing more is printed, the summary is still
written to its file. Whatever happens, the embedded PostgreSQL and moto are stopped and the data
directory deleted on the way out.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType

from devkit.cli_errors import reported
from devkit.terminal import HANGUP_EXIT, Output, Terminal
from local_stack.environment import without_password
from local_stack.options import Options, parse_options
from local_stack.output import output_to_log
from local_stack.services import local_services, worker_services
from local_stack.session import RunResult, Shutdown, run_local, run_worker
from local_stack.summary import format_summary, write_summary


@contextlib.contextmanager
def signals_request(shutdown: Shutdown) -> Iterator[None]:
    """SIGINT and SIGTERM ask for a clean stop (a second one skips the drain), SIGHUP too (once: the
    terminal is gone, whatever else notices it); restored on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            shutdown.hang_up()
        else:
            shutdown.request()

    previous = {number: signal.signal(number, handle) for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def execute(options: Options, shutdown: Shutdown, terminal: Output) -> RunResult:
    """Run in the mode the options ask for, with output routed to the log file."""
    with output_to_log(options.log_file):
        if options.worker:
            with worker_services(options) as stack:
                terminal.write(f"worker: polling {stack.resources.queue_url} (logs: {options.log_file})\n")
                return run_worker(options, stack, terminal, shutdown)
        if options.database_url:
            terminal.write(external_database_warning(options.database_url))
        terminal.write("starting moto, PostgreSQL and the resources...\n")
        terminal.flush()
        with local_services(options) as stack:
            return run_local(options, stack, terminal, shutdown)


def external_database_warning(url: str) -> str:
    """The loud notice that a run writes into a database the user named (password not shown)."""
    return (
        "\n*** EXTERNAL DATABASE: " + without_password(url) + " ***\n"
        "*** the ledger migrations are applied to it and test submissions are written into it ***\n\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run; return the exit status."""
    options = parse_options(argv)
    shutdown = Shutdown()
    terminal = Terminal(sys.stdout, on_lost=shutdown.hang_up)
    with signals_request(shutdown):
        return reported("run", lambda: _run(options, shutdown, terminal), debug=options.debug)


def _run(options: Options, shutdown: Shutdown, terminal: Output) -> int:
    result = execute(options, shutdown, terminal)
    write_summary(result.summary, options.summary)
    terminal.write(format_summary(result.summary) + "\n")
    terminal.write(f"summary written to {options.summary}\n")
    if shutdown.hung_up.is_set():
        return HANGUP_EXIT
    return 0 if result.summary["ok"] else 1
