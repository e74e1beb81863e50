"""`reasonrank …` — the command-line composition root.

Each subcommand is a form over one config dataclass (RerankConfig, EvalConfig, ImportConfig, …): a table of Flags
maps every option to a field path, and the same table builds the argparse parser, turns parsed
arguments into a config, and renders a config back into the equivalent command line. So the UI
can show (and a job can run) the exact command for whatever a user set in a form.

User errors (missing or malformed files, unknown backends, unreachable servers) print one line,
`error: …`, and exit with status 2. Set REASONRANK_DEBUG=1 to get the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

from reasonrank.backends.base import BackendError
from reasonrank.cli.common import EXIT_USAGE, PROG, Command
from reasonrank.cli.data import DATA_COMMANDS
from reasonrank.cli.rank import RANK_COMMANDS, RerankConfig, run_rerank
from reasonrank.cli.submit import SUBMIT_COMMANDS
from reasonrank.cli.synth import SYNTH_COMMANDS
from reasonrank.cli.train import TRAIN_COMMANDS
from reasonrank.flags import StrictParser
from reasonrank.io import InputError
from reasonrank.jobs import EventLog, install_term_handler
from reasonrank.launch import is_launched_child

COMMANDS: dict[str, Command] = {
    command.name: command
    for command in (*RANK_COMMANDS, *DATA_COMMANDS, *SYNTH_COMMANDS, *TRAIN_COMMANDS, *SUBMIT_COMMANDS)
}

__all__ = ["COMMANDS", "RerankConfig", "config_to_argv", "config_to_command", "main", "parse_command", "run_rerank"]


# ----------------------------------------------------------------------------- parser and rendering
def build_parser() -> argparse.ArgumentParser:
    parser = StrictParser(prog=PROG, description="Reasoning listwise reranking (ReasonRank).")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show library warnings (e.g. server retries) on stderr"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=StrictParser)
    for command in COMMANDS.values():
        subparser = sub.add_parser(command.name, help=command.help, description=command.help)
        command.flags.add_to(subparser, command.config_type())
    return parser


def config_from_args(command: Command, args: argparse.Namespace) -> Any:
    """Start from the command's default config and set every flag the user gave."""
    return command.flags.config_from(args, command.config_type())


def parse_command(argv: Sequence[str] | str) -> Any:
    """A command line (string or argv list, with or without the leading `reasonrank`) → config."""
    words = shlex.split(argv) if isinstance(argv, str) else list(argv)
    if words and words[0] == PROG:
        words = words[1:]
    args = build_parser().parse_args(words)
    if args.command is None:
        raise InputError(f"no command given; choose one of: {', '.join(COMMANDS)}")
    return config_from_args(COMMANDS[args.command], args)


def config_to_argv(config: Any) -> list[str]:
    """The argv (without the program name) that parses back to `config`; defaults are left out."""
    command = next((c for c in COMMANDS.values() if isinstance(config, c.config_type)), None)
    if command is None:
        raise TypeError(f"no command takes a {type(config).__name__}")
    return [command.name, *command.flags.to_argv(config)]


def config_to_command(config: Any) -> str:
    """The shell command a user can paste to run exactly this config."""
    return shlex.join([PROG, *config_to_argv(config)])


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _configure_logging(verbose: bool) -> None:
    """Library warnings (retries, fallbacks) only with -v: by default stderr carries the progress
    bar and, on failure, the one error line."""
    import logging

    logging.basicConfig(
        level=logging.WARNING if verbose else logging.ERROR, format="%(levelname)s %(name)s: %(message)s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `reasonrank` console command; returns the exit status.

    Under a job (REASONRANK_JOB_EVENTS set) the outcome is also written as the `end` event:
    succeeded with the command's outputs, failed with the one error line, or cancelled.
    """
    events = EventLog.current()
    if not events.active:
        return _run(argv)
    install_term_handler()
    events.emit("start", host=socket.gethostname(), cwd=os.getcwd(), pid=os.getpid())  # where it runs
    status, message, errors = "failed", "the command exited without a result", []
    try:
        code = _run(argv, on_error=errors.append)
        status = "succeeded" if code == 0 else ("cancelled" if code == 130 else "failed")
        message = "done" if code == 0 else ""
        return code
    finally:  # an error line from _run (also before an unexpected exception) is the message
        # a launch's parent may have written the end already; a failing rank leaves it to the parent
        if not (events.delegated_end or (status != "succeeded" and is_launched_child())):
            events.end(status, errors[0] if errors else message)
        events.close()


def _run(argv: Sequence[str] | None, on_error: Callable[[str], object] = lambda line: None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _configure_logging(args.verbose)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        command = COMMANDS[args.command]
        return command.handler(config_from_args(command, args))
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        on_error("cancelled")
        return 130
    except (InputError, BackendError, ValueError, OSError) as exc:
        if os.environ.get("REASONRANK_DEBUG"):
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        on_error(_one_line(exc))
        return EXIT_USAGE
    except Exception as exc:
        on_error(f"{type(exc).__name__}: {_one_line(exc)} (see the log for the traceback)")
        raise
