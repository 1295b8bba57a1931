"""relm: a benchmark suite for empathetic speech-LLMs (RE-LLM and its baselines). Run `relm COMMAND --help`."""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from relm.errors import RelmError


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("relm")
    except PackageNotFoundError:
        return "unknown (not installed)"


class RelmParser(argparse.ArgumentParser):
    """argparse with relm's error form: one `relm: error:` line naming the command, exit 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"relm: error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = RelmParser(prog="relm", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"relm {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    from relm.commands import bench, cache, data, ls, models, scorer

    for command in (bench, data, models, scorer, cache, ls):
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed as one line
        return int(exc.code or 0)
    debug = args.debug or os.environ.get("RELM_DEBUG") == "1"
    try:
        return int(args.func(args) or 0)
    except RelmError as exc:
        if debug:
            traceback.print_exc()
        print(f"relm: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except OSError as exc:  # disk full, read-only folder, a file where a folder belongs: one line naming the path
        if debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"relm: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("relm: interrupted; finished stages are kept, run the command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
