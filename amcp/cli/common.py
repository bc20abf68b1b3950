"""What every amcp command shares: one-line usage errors, exit codes, common options,
JSON output, and running an async command until done or SIGTERM/Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import shlex
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

from amcp.errors import (
    AmcpError,
    ConfigError,
    ConnectError,
    KeyringError,
    PermissionDenied,
    RequestTimeout,
)
from amcp.identity import IDENTITY_ENV, Identity
from amcp.keyring import Keyring
from amcp.roster import DEFAULT_ROSTER_PATH, ROSTER_ENV, Roster, roster_path

# asyncio, the bus (nats) and the settings (pydantic) are imported by the functions that run
# or connect, so that `amcp --help` and the commands that never connect start at once.
if TYPE_CHECKING:
    import asyncio

    from amcp.batching import BatchingMode
    from amcp.bus import Bus
    from amcp.settings import Settings

__all__ = [
    "EXIT_DENIED",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "MAX_SECONDS",
    "Parser",
    "add_connection_options",
    "add_json_option",
    "add_keyring_option",
    "bounded",
    "check_listen",
    "command_line",
    "connect",
    "emit",
    "identity_from",
    "jsonable",
    "non_blank",
    "parse_json_arg",
    "port",
    "run_command",
    "run_until_stopped",
    "seconds",
    "settings_from",
    "stopped_like_ctrl_c",
]

EXIT_OK = 0  # done
EXIT_FAILED = 1  # the operation ran and failed (rejected, executor failed, server error)
EXIT_USAGE = 2  # bad arguments or configuration; nothing was done
EXIT_TIMEOUT = 3  # no quorum, no reply, or not enough acknowledgements in time
EXIT_UNAVAILABLE = 4  # could not reach NATS
EXIT_DENIED = 5  # the NATS server refused it for the user's permissions


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error message and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (try --help)\n")


MAX_SECONDS = 10 * 365 * 86_400.0
"""The longest duration an option takes (ten years): past it a time is a typo, and far past
it Unix times overflow."""


def bounded(
    low: float, high: float, *, above: bool = False, kind: Callable[[str], float] = float
) -> Callable[[str], float]:
    """An argparse `type=`: a finite number from `low` (excluded if `above`) to `high`,
    refused with a one-line usage error (exit 2) otherwise. NaN and infinities never pass."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(value) or value < low or value > high or (above and value == low):
            least = f"more than {low:.15g}" if above else f"at least {low:.15g}"
            raise argparse.ArgumentTypeError(f"must be {least} and at most {high:.15g}, not {text}")
        return value

    return parse


def seconds(*, above: bool = True, high: float = MAX_SECONDS) -> Callable[[str], float]:
    """An argparse `type=` for a duration: finite, more than 0 (or at least 0 with
    `above=False`) and at most `high` seconds."""
    return bounded(0.0, high, above=above)


def command_line(text: str) -> list[str]:
    """An argparse `type=` for a command template (`--cli 'claude -p -- {text}'`): its words
    as a shell splits them (no shell runs them). An empty or blank one is a usage error, not
    "not given", and so is an unclosed quote."""
    try:
        words = shlex.split(text)
    except ValueError as exc:  # "No closing quotation", "No escaped character"
        raise argparse.ArgumentTypeError(f"{str(exc).lower()} in {text!r}") from None
    if not words:
        raise argparse.ArgumentTypeError("an empty command")
    return words


def non_blank(text: str) -> str:
    """An argparse `type=` for a name or path that must be given when the option is: an
    empty one is a usage error, not "not given"."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def port(*, low: int = 1) -> Callable[[str], float]:
    """An argparse `type=` for a TCP port, `low` (1, or 0 for "any free port") to 65535."""
    return bounded(low, 65_535, kind=int)


# (flag, ConnectionSecurity.from_env keyword, metavar, help)
SECURITY_FLAGS = (
    ("--nats-user", "user", "USER", "NATS user name (env AMCP_NATS_USER)"),
    (
        "--nats-password-file",
        "password_file",
        "PATH",
        "file holding the NATS password (env AMCP_NATS_PASSWORD_FILE)",
    ),
    ("--nats-creds", "creds", "PATH", "NATS credentials file (env AMCP_NATS_CREDS)"),
    ("--nats-nkey", "nkey", "PATH", "file holding an nkey seed (env AMCP_NATS_NKEY)"),
    ("--tls-ca", "tls_ca", "PATH", "CA that signed the servers' certificates (env AMCP_TLS_CA)"),
    ("--tls-cert", "tls_cert", "PATH", "client certificate for mutual TLS (env AMCP_TLS_CERT)"),
    ("--tls-key", "tls_key", "PATH", "key of the client certificate (env AMCP_TLS_KEY)"),
)


def add_keyring_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--keyring alone, for commands that read the keyring but never connect."""
    parser.add_argument(
        "--keyring",
        metavar="PATH",
        help="keyring file (env AMCP_KEYRING; default ~/.config/amcp/keyring.json)",
    )


def add_connection_options(parser: argparse.ArgumentParser, json_flag: bool = True) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--nats",
        metavar="URL[,URL...]",
        help="NATS server URLs, tried in this order: put the nearest first "
        "(env AMCP_NATS_URL; default nats://127.0.0.1:4222)",
    )
    add_keyring_option(group)
    group.add_argument(
        "--cluster",
        metavar="NAME",
        help="cluster namespace for amcp's own subjects (env AMCP_CLUSTER)",
    )
    group.add_argument(
        "--identity",
        metavar="PATH",
        help="this process's Ed25519 key file: it signs ballots, decisions, audit entries "
        "and member records as the agent it names (env AMCP_IDENTITY)",
    )
    group.add_argument(
        "--roster",
        metavar="PATH",
        help="the roster of agents' public keys that identity signatures are checked against; "
        f"re-read when it changes (env AMCP_ROSTER; default {DEFAULT_ROSTER_PATH} if it exists; "
        "without one, identity signatures are not checked)",
    )
    group.add_argument(
        "--seal",
        metavar="PATTERN",
        action="append",
        help="seal bodies on subjects matching PATTERN (NATS wildcards; AES-256-GCM under a "
        "key derived from the keyring), and refuse plain frames there; repeatable "
        "(env AMCP_SEAL, comma-separated)",
    )
    secure = parser.add_argument_group(
        "NATS authentication and TLS",
        "the password comes from env AMCP_NATS_PASSWORD or a file, never from a flag",
    )
    for flag, name, meta, text in SECURITY_FLAGS:
        secure.add_argument(flag, dest=f"security_{name}", metavar=meta, help=text)
    if json_flag:
        add_json_option(parser)


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable JSON output")


def settings_from(args: argparse.Namespace) -> Settings:
    from amcp.settings import Settings

    try:
        return Settings.resolve(
            getattr(args, "nats", None),
            getattr(args, "keyring", None),
            getattr(args, "cluster", None),
            **{name: getattr(args, f"security_{name}", None) for _, name, _, _ in SECURITY_FLAGS},
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        first = exc.errors()[0]["msg"] if hasattr(exc, "errors") else str(exc)
        raise ConfigError(first.removeprefix("Value error, ")) from None


BATCHING_ENV = "AMCP_BATCHING"
BATCHING_MODES = ("off", "adaptive")


def batching_mode(flag: str | None = None) -> BatchingMode:
    """A long-lived process's batching: `flag`, else $AMCP_BATCHING, else off. Off by default
    because adaptive batching did not pay for agents in the soaks (figures in docs/NETOPT.md,
    "In the running system")."""
    mode = flag or os.environ.get(BATCHING_ENV) or "off"
    if mode not in BATCHING_MODES:
        modes = ", ".join(BATCHING_MODES)
        raise ConfigError(f"${BATCHING_ENV} must be one of {modes}, not {mode!r}")
    return "adaptive" if mode == "adaptive" else "off"


def identity_from(args: argparse.Namespace) -> tuple[Identity | None, Roster | None]:
    """The identity (--identity, else $AMCP_IDENTITY, else none) and roster (--roster, else
    $AMCP_ROSTER, else the default file if it exists, else none) a command connects with.
    A named file that is missing or malformed is an IdentityError."""
    identity_path = getattr(args, "identity", None) or os.environ.get(IDENTITY_ENV)
    identity = Identity.load(identity_path) if identity_path else None
    named = getattr(args, "roster", None) or os.environ.get(ROSTER_ENV)
    path = roster_path(named)
    roster = Roster.load(path) if named or path.exists() else None
    return identity, roster


async def connect(
    args: argparse.Namespace,
    sender: str | None = None,
    *,
    batching: BatchingMode = "off",
    trace: bool = True,
) -> Bus:
    """A bus from the connection options; `batching="adaptive"` for long-lived processes
    (agents, `ctx serve`): a one-shot command sends too little for it to pay.

    `trace`: the command's work is one trace (amcp.tracing), continuing `TRACEPARENT` from
    the environment when it is valid; a serving process (agents, `ctx serve`, `amcp mcp`)
    passes False and works in the spans its requests bring."""
    from amcp.bus import Bus
    from amcp.cli.commandspan import running_command
    from amcp.sealing import seal_patterns_from_env
    from amcp.tracing import current_span, from_environ

    command = running_command.get() if trace else None
    if trace and current_span.get() is None:
        # in the command's task: what it sends carries it
        current_span.set(command.begin() if command is not None else from_environ())

    settings = settings_from(args)
    keyring = Keyring.load(settings.keyring_path)
    identity, roster = identity_from(args)
    bus = await Bus.connect(
        list(settings.nats_urls),
        keyring=keyring,
        sender=sender or (identity.agent_id if identity is not None else None),
        identity=identity,
        roster=roster,
        cluster=settings.cluster,
        security=settings.security,
        batching=batching,
        seal=seal_patterns_from_env(getattr(args, "seal", None)),
        # the given order is a preference (an agent's own host's server first), so an
        # agent shares its host's fate in a partition instead of a random server's
        dont_randomize=True,
    )
    if command is not None:
        command.sent_as(bus.sender)
    return bus


class _Unsendable(ValueError):
    """Valid JSON that the wire would refuse (raised from inside the parser's hooks)."""


def _int(text: str) -> int:
    # the length test comes first: int() of a 5,000-digit string is refused by Python itself
    if len(text.lstrip("-")) > _MAX_INT_DIGITS or not _MIN_INT <= int(text) <= _MAX_INT:
        raise _Unsendable("integer outside msgpack's 64-bit range")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Unsendable(f"{text} is out of a 64-bit float's range")
    return value


def _constant(name: str) -> NoReturn:
    raise _Unsendable(f"{name} is not a JSON number")


_MIN_INT, _MAX_INT = -(1 << 63), (1 << 64) - 1
_MAX_INT_DIGITS = len(str(_MAX_INT))


def parse_json_arg(
    text: str,
    what: str = "JSON",
    *,
    wrap: Callable[[Any], Any] | None = None,
    or_text: bool = False,
) -> Any:
    """A JSON argument, refused with a one-line ConfigError when it is not JSON or when the
    wire would refuse the message that carries it, so nothing is sent that receivers drop.

    `wrap(value)` is the body the command sends around the value (its nesting counts
    against the frame's depth limit); with `or_text`, text that is not JSON is returned
    as it is, while JSON the wire refuses is still an error.
    """
    import msgspec  # with the envelope's codec: for commands that send, not for --help

    from amcp.envelope import FrameLimits, check_depth, encode_envelope

    limits = FrameLimits()
    too_deep = ConfigError(
        f"invalid {what}: nested too deep (a frame's body holds at most "
        f"{limits.max_depth} levels, the message's own included)"
    )
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        if or_text:
            return text
        raise ConfigError(f"invalid {what}: {exc.msg} at position {exc.pos}") from None
    except _Unsendable as exc:
        raise ConfigError(f"invalid {what}: {exc}") from None
    except RecursionError:  # far deeper than any frame allows
        raise too_deep from None
    body = value if wrap is None else wrap(value)
    if not check_depth(body, limits.max_depth):
        raise too_deep
    try:
        size = len(encode_envelope(body))
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
        raise ConfigError(f"invalid {what}: cannot be sent: {exc}") from None
    if size > limits.max_frame_bytes:
        raise ConfigError(
            f"invalid {what}: {size} bytes encoded, over the {limits.max_frame_bytes}-byte "
            "frame limit"
        )
    return value


def jsonable(value: Any) -> Any:
    """Bodies may hold bytes; JSON shows them as {"$base64": ...}."""
    if isinstance(value, bytes):
        return {"$base64": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def emit(doc: Any, as_json: bool, human: str | None = None) -> None:
    """Print one result: a JSON line, or the human text."""
    if as_json:
        print(json.dumps(jsonable(doc)), flush=True)
    elif human is not None:
        print(human, flush=True)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""Signals that stop a long-running command as Ctrl-C does: a service manager's stop, and
the terminal going away."""


def run_until_stopped(main: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Run `main(stop)`; SIGTERM, SIGHUP and SIGINT set `stop` so it can shut down
    gracefully."""
    import asyncio

    async def runner() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (*STOP_SIGNALS, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            return await main(stop)
        finally:
            for sig in (*STOP_SIGNALS, signal.SIGINT):
                loop.remove_signal_handler(sig)

    return asyncio.run(runner())


@contextlib.contextmanager
def stopped_like_ctrl_c() -> Iterator[None]:
    """For a command that is not run by `run_until_stopped`: SIGTERM and SIGHUP raise
    KeyboardInterrupt as Ctrl-C does, so its `finally` blocks stop what it started (exit
    130). The first one only: a second must not cut that clean-up short."""

    def interrupt(signum: int, frame: object) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def check_listen(host: str, port: int) -> None:
    """Refuse, in one line and before starting anything, an address this host cannot listen
    on: a host that does not resolve or is not its own, a port already taken."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
            probe.bind(address)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def fail(message: str, code: int = EXIT_FAILED) -> int:
    print(f"amcp: {message}", file=sys.stderr)
    return code


class _ReaderGoneStdout:
    """sys.stdout that survives its reader leaving (`amcp ... | head -3`): on a broken pipe
    fd 1 becomes /dev/null, as the Python docs' "Note on SIGPIPE" says, so the command runs
    to its end and exits with its own code instead of a traceback and 1."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _reader_gone(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._reader_gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._reader_gone()
            self._stream.flush()  # what was buffered now goes to /dev/null

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _guard_stdout() -> None:
    stream = sys.stdout
    if isinstance(stream, _ReaderGoneStdout) or stream is None:
        return
    try:
        stream.fileno()
    except (AttributeError, ValueError, OSError):  # captured in-process (tests): no fd
        return
    sys.stdout = _ReaderGoneStdout(stream)


def run_command(action: Callable[[], int], usage_errors: tuple[type[Exception], ...] = ()) -> int:
    """Run a command body, turning amcp's errors into a one-line message and an exit code:
    configuration (and `usage_errors`, and an OSError naming a path that cannot be used) 2,
    unreachable NATS 4, timeouts 3, refused by the user's NATS permissions 5, other
    failures 1. A reader of stdout that goes away early
    changes neither the outcome nor the code."""
    _guard_stdout()
    try:
        return action()
    except (ConfigError, KeyringError, *usage_errors) as exc:
        return fail(str(exc), EXIT_USAGE)
    except ConnectError as exc:
        return fail(str(exc), EXIT_UNAVAILABLE)
    except RequestTimeout as exc:
        return fail(str(exc), EXIT_TIMEOUT)
    except PermissionDenied as exc:
        return fail(str(exc), EXIT_DENIED)
    except AmcpError as exc:
        return fail(str(exc), EXIT_FAILED)
    except OSError as exc:
        if exc.filename is None:  # not about a path the user named: a bug, keep its traceback
            raise
        why = exc.strerror or str(exc)
        if isinstance(exc, FileExistsError) and not os.path.isdir(exc.filename):
            why += " and is not a directory"  # mkdir's word for a file in a folder's place
        return fail(f"{exc.filename}: {why}", EXIT_USAGE)
    except KeyboardInterrupt:
        return 130
