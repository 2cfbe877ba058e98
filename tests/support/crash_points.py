"""Run the `crm-addin` command line with a crash or a pause at a checkpoint of the register write.

The product only names its checkpoints (crm_app.register.workflow.CHECKPOINTS) and calls the
observers in `workflow.checkpoints` there, none by default. This test tooling adds an observer
that kills the process with SIGKILL, or sleeps, when the write reaches the named point, then runs
crm_app.cli.main.main. The crash and race tests start it from the repository's root:

    python -m tests.support.crash_points --kill-at saved -- reallocate REGISTER --request ...
    python -m tests.support.crash_points --sleep-at loaded:1.5 -- reallocate REGISTER ...

A point the workflow does not have is refused (exit 64), so a misspelt name cannot let a crash
test pass without crashing anything.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Callable

from crm_app.register import workflow

USAGE_ERROR = 64  # as crm-addin's own usage errors


def killer(point: str) -> Callable[[str], None]:
    """An observer that kills this process, as a power cut would, when the write reaches `point`."""
    _known(point)

    def observe(reached: str) -> None:
        if reached == point:
            os.kill(os.getpid(), signal.SIGKILL)

    return observe


def sleeper(point: str, seconds: float) -> Callable[[str], None]:
    """An observer that pauses `seconds` at `point` (to let another writer load the same version)."""
    _known(point)

    def observe(reached: str) -> None:
        if reached == point:
            time.sleep(seconds)

    return observe


def _known(point: str) -> None:
    if point not in workflow.CHECKPOINTS:
        raise ValueError(f"no checkpoint {point!r}; the workflow has {', '.join(workflow.CHECKPOINTS)}")


def observers(kill_at: str | None = None, sleep_at: str | None = None,
              seconds: float = 1.0) -> list[Callable[[str], None]]:
    """The observers for a kill and/or a pause (ValueError for a point the workflow does not have)."""
    return ([killer(kill_at)] if kill_at else []) + ([sleeper(sleep_at, seconds)] if sleep_at else [])


def run(argv: list[str], kill_at: str | None = None, sleep_at: str | None = None,
        seconds: float = 1.0) -> int:
    """crm-addin `argv` with the observers installed; its exit status (unless killed)."""
    from crm_app.cli.main import main as cli_main

    installed = observers(kill_at, sleep_at, seconds)
    workflow.checkpoints.extend(installed)
    try:
        return cli_main(argv)
    finally:
        for observer in installed:
            workflow.checkpoints.remove(observer)


def _sleep_spec(text: str) -> tuple[str, float]:
    point, _, seconds = text.partition(":")
    try:
        return point, float(seconds or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write POINT or POINT:SECONDS") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.crash_points",
                                     description="crm-addin with a kill or a pause at a write checkpoint")
    parser.add_argument("--kill-at", metavar="POINT", help=f"one of {', '.join(workflow.CHECKPOINTS)}")
    parser.add_argument("--sleep-at", metavar="POINT[:SECONDS]", type=_sleep_spec,
                        help="pause there (default 1 second)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then crm-addin's arguments")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    sleep_at, seconds = args.sleep_at or (None, 1.0)
    try:
        observers(args.kill_at, sleep_at, seconds)
    except ValueError as exc:  # an unknown checkpoint: refused before anything runs
        print(f"crash_points: {exc}", file=sys.stderr)
        return USAGE_ERROR
    return run(command, kill_at=args.kill_at, sleep_at=sleep_at, seconds=seconds)


if __name__ == "__main__":
    sys.exit(main())
