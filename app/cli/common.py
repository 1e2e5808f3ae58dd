"""What the subcommands share: the flags that say where the data is, the exit codes, and two
ways to reach it.

- Store commands (`export`) work on the store directly: `--redis-url` (default
  $OMNISTOCK_REDIS_URL), else the embedded store under `--data-dir` (default
  $OMNISTOCK_DATA_DIR, ./data): the one a running `omnistock serve` keeps, or one started
  for the command when no service holds the directory.
- Service commands (`locations`, `channels`, `events tail`) talk to a running service over
  HTTP: `--url` (default $OMNISTOCK_URL, http://127.0.0.1:8080), with the API key from
  $OMNISTOCK_API_KEY or `--api-key-file` (never a flag of its own: `ps` would show it).

Exit codes (the contract of app/cli/__init__.py): 0 success; 1 the command ran and found a
problem (e.g. the service refused a change); 2 usage or configuration error (including a
missing or insufficient API key); 3 the store or the service is unreachable; 4 partial: the
command did its work on the nodes it reached and skipped the ones it could not (told to,
e.g. `functions prune --skip-unreachable`), naming them on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from http.client import HTTPResponse
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app import keys
from app.logs import redact
from app.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from app.domain.clock import StoreClock
    from app.domain.config import ConfigService
    from app.domain.stock import StockService
    from app.store.scripts import Scripts

OK, PROBLEM, USAGE, UNREACHABLE, PARTIAL = 0, 1, 2, 3, 4
DEFAULT_URL = "http://127.0.0.1:8080"


class CliError(Exception):
    """Ends a command with `code` after printing `message` on stderr."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Command = Callable[[argparse.Namespace], int]


def run_command(name: str, body: Callable[[], int]) -> int:
    """Run a command's body, turning CliError and an unreachable store into exit codes."""
    try:
        return body()
    except CliError as exc:
        print(f"omnistock {name}: {redact(exc.message)}", file=sys.stderr)
        return exc.code
    except (RedisError, OSError) as exc:
        print(f"omnistock {name}: store unreachable: {redact(str(exc))}", file=sys.stderr)
        return UNREACHABLE
    except KeyboardInterrupt:
        return OK


def command(name: str) -> Callable[[Command], Command]:
    """Decorates a command's function: it runs through `run_command(name, ...)`."""

    def decorate(func: Command) -> Command:
        @functools.wraps(func)
        def run(args: argparse.Namespace) -> int:
            return run_command(name, lambda: func(args))

        return run

    return decorate


# -- the store --------------------------------------------------------------------------


def add_store_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("store")
    group.add_argument(
        "--redis-url",
        metavar="URL",
        help="the store (default: $OMNISTOCK_REDIS_URL; prefer the variable for a URL with a "
        "password, `ps` shows flags); unset: the embedded store under --data-dir",
    )
    group.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="the embedded store's directory (default: $OMNISTOCK_DATA_DIR or ./data); "
        "a running service's store there is used while it runs",
    )
    group.add_argument(
        "--redis-cluster",
        action="store_true",
        default=None,
        help="the URL is a Redis/Valkey cluster (default: $OMNISTOCK_REDIS_CLUSTER)",
    )


def store_settings(args: argparse.Namespace) -> Settings:
    overrides = {
        "redis_url": args.redis_url,
        "data_dir": args.data_dir,
        "redis_cluster": args.redis_cluster,
    }
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        raise CliError(USAGE, str(exc)) from None


@contextlib.contextmanager
def store_url(settings: Settings, shared_note: str | None = None) -> Iterator[str]:
    """The configured store's URL; without one, the embedded store under the data directory,
    started for the command and stopped after it, or, when a running `omnistock serve` holds
    that directory, its store (`shared_note`, formatted with the reason, is then printed).
    EmbeddedStoreError if neither."""
    from app.store.embedded import EmbeddedStore, EmbeddedStoreError, embedded_store_url

    if settings.redis_url:
        yield settings.redis_url
        return
    embedded: EmbeddedStore | None = None
    try:
        embedded = EmbeddedStore(settings.data_dir, supervise=False)
        embedded.start()
        url = embedded.url
    except EmbeddedStoreError as exc:
        embedded = None
        shared = embedded_store_url(settings.data_dir)
        if shared is None:
            raise
        url = shared
        if shared_note:
            print(shared_note.format(exc), file=sys.stderr)
    try:
        yield url
    finally:
        if embedded is not None:
            embedded.stop()


@contextlib.asynccontextmanager
async def open_store(settings: Settings, timeout_seconds: float = 30.0) -> AsyncIterator[Redis]:
    """A client of the configured store (`store_url`)."""
    from app.store.connection import connect
    from app.store.embedded import EmbeddedStoreError

    if not settings.redis_url and not settings.data_dir.is_dir():
        raise CliError(
            USAGE, f"no data directory {settings.data_dir} (set --redis-url or --data-dir)"
        )
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(store_url(settings))
        except EmbeddedStoreError as exc:
            raise CliError(UNREACHABLE, f"embedded store: {exc}") from None
        timeouts = settings.model_copy(update={"redis_timeout_seconds": timeout_seconds})
        client = connect(timeouts, url)
        try:
            await client.ping()
            yield client
        finally:
            await client.aclose()


@dataclass(frozen=True)
class StoreServices:
    """What a store command reads and writes through: the client, its scripts, the locations
    and channels (not read yet: `await config.refresh(force=True)` when needed), positions,
    and the store's clock."""

    settings: Settings
    redis: Redis
    scripts: Scripts
    config: ConfigService
    stock: StockService
    clock: StoreClock


@contextlib.asynccontextmanager
async def open_services(
    args: argparse.Namespace, timeout_seconds: float = 30.0
) -> AsyncIterator[StoreServices]:
    """`open_store` of the store the flags name, with the services a store command builds on
    it."""
    from app.domain.clock import StoreClock
    from app.domain.config import ConfigService
    from app.domain.stock import StockService
    from app.store.scripts import Scripts

    settings = store_settings(args)
    async with open_store(settings, timeout_seconds) as redis:
        scripts = Scripts.register(redis)
        config = ConfigService(redis, scripts, settings.config_refresh_seconds)
        clock = StoreClock()
        stock = StockService(redis, scripts, config, settings, clock)
        yield StoreServices(settings, redis, scripts, config, stock, clock)


def add_partition_flag(parser: argparse.ArgumentParser, help: str) -> None:
    """`--partition N` (repeatable), read by `partitions`."""
    parser.add_argument("--partition", type=int, action="append", metavar="N", help=help)


def partitions(args: argparse.Namespace) -> list[int]:
    """The partitions `--partition` names, in its order (none: every partition); CliError
    (usage) for one that does not exist."""
    bad = [p for p in args.partition or [] if not 0 <= p < keys.PARTITIONS]
    if bad:
        raise CliError(USAGE, f"no partition {bad[0]} (0-{keys.PARTITIONS - 1})")
    return list(args.partition or range(keys.PARTITIONS))


# -- a running service ------------------------------------------------------------------


Actions = argparse._SubParsersAction  # the subparsers of a command's actions


def command_group(
    sub: Actions[argparse.ArgumentParser], name: str, help: str, description: str
) -> Actions[argparse.ArgumentParser]:
    """`omnistock NAME ACTION ...`: the command, and the subparsers of its actions."""
    parser = sub.add_parser(name, help=help, description=description)
    return parser.add_subparsers(dest="action", required=True, metavar="ACTION")


def add_action(
    actions: Actions[argparse.ArgumentParser],
    name: str,
    func: Callable[[argparse.Namespace], int],
    help: str,
    description: str | None = None,
    service: bool = False,
    json: str | None = None,
    store: bool = False,
) -> argparse.ArgumentParser:
    """A command (`omnistock NAME`), or an action of a command group, that runs `func(args)`;
    `service`: it talks to a running service (--url and the API key flags); `store`: it works
    on the store directly (--redis-url, --data-dir); `json`: the help of its --json flag."""
    parser = actions.add_parser(name, help=help, description=description)
    parser.set_defaults(func=func)
    if json:
        parser.add_argument("--json", action="store_true", help=json)
    if service:
        add_service_flags(parser)
    if store:
        add_store_flags(parser)
    return parser


def add_service_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("service")
    group.add_argument(
        "--url",
        default=os.environ.get("OMNISTOCK_URL", DEFAULT_URL),
        help=f"the running service (default: $OMNISTOCK_URL or {DEFAULT_URL})",
    )
    group.add_argument(
        "--api-key-file",
        type=Path,
        metavar="FILE",
        help="read the API key from FILE (default: $OMNISTOCK_API_KEY; none when the "
        "service runs without keys)",
    )
    group.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for an answer (10)"
    )


class Service:
    """A small JSON-over-HTTP client of the service (stdlib only: the CLI needs no HTTP
    library at run time). Errors become CliError with the exit code they deserve."""

    def __init__(self, url: str, api_key: str | None, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._headers = {"Accept": "application/json", "User-Agent": "omnistock-cli"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Service:
        key = os.environ.get("OMNISTOCK_API_KEY")
        if args.api_key_file is not None:
            try:
                key = args.api_key_file.read_text().strip()
            except OSError as exc:
                raise CliError(USAGE, f"cannot read the API key file: {exc}") from None
        if not args.url.startswith(("http://", "https://")):
            raise CliError(USAGE, f"--url must be an http:// or https:// URL, not {args.url!r}")
        return cls(args.url, key, args.timeout)

    def path(self, path: str, **query: Any) -> str:
        params = {k: v for k, v in query.items() if v is not None}
        return f"{self.url}{path}" + (f"?{urlencode(params)}" if params else "")

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None
    ) -> Any:
        data = None if body is None else orjson.dumps(body)
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        url = self.path(path, **(query or {}))
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        with self._open(req, self.timeout) as response:
            return orjson.loads(response.read())

    @contextlib.contextmanager
    def stream(self, url: str, headers: dict[str, str], timeout: float) -> Iterator[HTTPResponse]:
        req = urllib.request.Request(url, headers={**self._headers, **headers})
        with self._open(req, timeout) as response:
            yield response

    @contextlib.contextmanager
    def _open(self, req: urllib.request.Request, timeout: float) -> Iterator[HTTPResponse]:
        try:
            response = urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise _http_error(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliError(UNREACHABLE, f"service unreachable at {self.url}: {reason}") from None
        with response:
            yield response


def _http_error(exc: urllib.error.HTTPError) -> CliError:
    """A problem answer as a message, with its exit code: 401/403/422 are the caller's
    configuration or input (2), 5xx the service's state (3), other 4xx a problem (1)."""
    try:
        problem = orjson.loads(exc.read())
    except (orjson.JSONDecodeError, OSError):
        problem = {}
    code = problem.get("code", "http_error") if isinstance(problem, dict) else "http_error"
    detail = problem.get("detail", exc.reason) if isinstance(problem, dict) else exc.reason
    message = f"{exc.code} {code}: {detail}"
    for error in problem.get("errors", []) if isinstance(problem, dict) else []:
        where = ".".join(str(part) for part in error.get("loc", []))
        message += f"\n  {where}: {error.get('msg', '')}"
    if exc.code in (401, 403, 422):
        return CliError(USAGE, message)
    if exc.code >= 500:
        return CliError(UNREACHABLE, message)
    return CliError(PROBLEM, message)


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Rows as aligned columns on stdout (the header in capitals)."""
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


class Progress:
    """`export: 37/256 partitions, 12,345 positions` on stderr: one updating line on a
    terminal, a line per eighth of the way otherwise; nothing with `enabled=False`."""

    def __init__(self, name: str, noun: str, enabled: bool) -> None:
        self._name = name
        self._noun = noun
        self._enabled = enabled
        self._tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int, count: int) -> None:
        if not self._enabled:
            return
        text = f"{self._name}: {done}/{total} partitions, {count:,} {self._noun}"
        if self._tty:
            print("\r" + text, end="\n" if done == total else "", file=sys.stderr, flush=True)
        elif done == total or done % max(1, total // 8) == 0:
            print(text, file=sys.stderr, flush=True)
