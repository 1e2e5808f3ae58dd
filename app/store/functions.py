"""Each expanded `lua/` script as a Valkey/Redis 7+ function library (FUNCTION LOAD once,
FCALL per call), generated at load time; the `lua/` files stay plain scripts.

Why: an EVALSHA runs the whole expanded script on every call, so every `local function` of
its includes is a new closure and every table constant is built again, about 7 µs of a 1-line
hold (docs/benchmarks.md, "Where the time goes"). A library's top level runs once, at load;
only the registered function's body runs per call.

The transformation (`Library.of`): the script's *prelude* — every line up to the last line
an include brought — is cut into top-level statements (each starts at column 0, outside any
block or bracket), and each is one of:
- a definition (`local function f`), or a constant (`local X = <literals, operators and
  other constants>`, never assigned again anywhere in the script): kept at the library's
  top level, built once;
- any other `local a, b = ...` (it reads KEYS, ARGV, `redis`, a library, or calls a
  function): declared at the top level (`local a, b`), so the definitions see it, and
  assigned at the start of every call;
- any other statement (an `if` reading ARGV, ...): run at the start of every call.
The script's own body (the lines after its last include) is the function's body, unchanged.
`KEYS` and `ARGV` are locals of the library, set from the function's arguments on entry.

What the load-time environment allows decides this split: while FUNCTION LOAD runs, the
only global is `redis`, and only its `register_function`, `log` and constants (no
`redis.call`, no `string`, `table`, `tonumber`, `cjson`, ... — Valkey 8: reading any other
global raises). So a constant may use nothing but literals and other constants.

Conventions this relies on (tests/lua/test_functions.py checks every script's library
loads): a top-level statement of a prelude starts at column 0 and its continuation lines
are indented; no name is declared twice at a prelude's top level; a table constant at an
include's top level is built once per library load, so it must be read-only, a scratch
buffer every call rewrites before it reads (event.lua's EVENT_FIELDS), or a pure memo of a
parse keyed by the text parsed (memo.lua, clock.lua's CLOCK_SECONDS).

Names: library and function are `os_<script>_<16 hex of the library text's SHA-1>`, so two
service versions never call each other's code, and loading a library that is already there
changes nothing. Line numbers: a Lua error of a function says `user_function:N`, N a line of
the library text; `Library.translate` adds the `lua/` file and line it came from.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

Origin = tuple[str, int]

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\f]+)
  | (?P<nl>\n)
  | (?P<comment>--\[(?P<ceq>=*)\[.*?\](?P=ceq)\]|--[^\n]*)
  | (?P<string>\[(?P<seq>=*)\[.*?\](?P=seq)\]|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')
  | (?P<name>[A-Za-z_]\w*)
  | (?P<number>0[xX][0-9a-fA-F]+|\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<op>\.\.\.|\.\.|==|~=|<=|>=|[-+*/%^\#<>=(){}\[\];:,.])
    """,
    re.S | re.X,
)
_OPENS = {"function", "do", "if", "repeat", "(", "{", "["}  # blocks and brackets
_CLOSES = {"end", "until", ")", "}", "]"}
_KEYWORDS = {
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
}  # fmt: skip
_FUNCTION_LINE = re.compile(r"user_function:(\d+)")
_PLACEHOLDER = "\0name\0"


class LibraryError(ValueError):
    """A script's prelude does not follow the conventions the transformation relies on."""


class _Token(NamedTuple):
    kind: str  # name, string, number, op
    text: str
    line: int  # 0-based line of the text it was read from
    col: int


def tokens(text: str) -> list[_Token]:
    """Lua tokens of `text` (comments and white space dropped)."""
    starts = [0] + [m.end() for m in re.finditer("\n", text)]  # each line's offset
    out: list[_Token] = []
    end = 0
    for match in _TOKEN.finditer(text):
        if match.start() != end:
            line = bisect.bisect_right(starts, end) - 1
            raise LibraryError(f"unexpected character {text[end]!r} on line {line + 1}")
        end = match.end()
        kind = match.lastgroup or ""
        if kind in ("name", "string", "number", "op"):
            at = match.start()
            line = bisect.bisect_right(starts, at) - 1
            out.append(_Token(kind, match.group(0), line, at - starts[line]))
    if end != len(text):
        raise LibraryError(f"unexpected character {text[end]!r}")
    return out


@dataclass(frozen=True)
class _Statement:
    first: int  # line numbers (0-based) of its first and last token
    last: int
    toks: list[_Token]


def statements(toks: list[_Token]) -> list[_Statement]:
    """Top-level statements: each starts with a token at column 0, outside any block or
    bracket."""
    out: list[_Statement] = []
    depth = 0
    current: list[_Token] = []
    for tok in toks:
        if tok.col == 0 and depth == 0 and current:
            out.append(_Statement(current[0].line, current[-1].line, current))
            current = []
        current.append(tok)
        if tok.text in _OPENS and tok.kind in ("name", "op"):
            depth += 1
        elif tok.text in _CLOSES and tok.kind in ("name", "op"):
            depth -= 1
    if current:
        out.append(_Statement(current[0].line, current[-1].line, current))
    return out


def _local_names(toks: list[_Token]) -> tuple[list[str], int | None]:
    """The names a `local a, b = ...` declares, and the index of its `=` (None: none)."""
    names, i = [toks[1].text], 2
    while i + 1 < len(toks) and toks[i].text == ",":
        names.append(toks[i + 1].text)
        i += 2
    return names, (i if i < len(toks) and toks[i].text == "=" else None)


def _is_constant(expr: list[_Token], constants: set[str]) -> bool:
    """Whether `expr` uses nothing but literals, operators, table constructors and the names
    in `constants` (and calls nothing): what the load-time environment can evaluate."""
    for i, tok in enumerate(expr):
        before = expr[i - 1].text if i else ""
        after = expr[i + 1].text if i + 1 < len(expr) else ""
        if tok.kind == "op" and tok.text in ("(", "{") and i and expr[i - 1].kind != "op":
            return False  # f(...), f{...}
        if tok.kind == "op" and tok.text == "(" and before in (")", "]"):
            return False
        if tok.kind == "string" and i and expr[i - 1].kind == "name":
            return False  # f'...'
        if tok.kind != "name" or tok.text in ("true", "false", "nil", "and", "or", "not"):
            continue
        if tok.text in _KEYWORDS or before in (".", ":"):
            if tok.text == "function":
                return False
            continue
        if after == "=" and before in ("{", ",", ";"):
            continue  # a field name in a table constructor
        if tok.text not in constants:
            return False
    return True


def _assigned(toks: list[_Token]) -> set[str]:
    """Names that some statement of `toks` assigns (`a = `, `a, b = `), declarations
    (`local a =`, `for a =`) aside. Table constructor fields count too: safe, as it only
    makes a would-be constant per call."""
    out: set[str] = set()
    n = len(toks)
    for i, tok in enumerate(toks):
        if tok.kind != "name" or tok.text in _KEYWORDS:
            continue
        if i and toks[i - 1].text in (".", ":"):
            continue
        j = i + 1
        while j < n and (toks[j].text in (",", ".") or toks[j].kind == "name"):
            if toks[j].kind == "name" and toks[j].text in _KEYWORDS:
                break
            j += 1
        if j >= n or toks[j].text != "=":
            continue
        k = i - 1
        while k >= 0 and (toks[k].text == "," or toks[k].kind == "name"):
            if toks[k].text in ("local", "for"):
                break
            if toks[k].kind == "name" and toks[k].text in _KEYWORDS:
                break
            k -= 1
        if k >= 0 and toks[k].text in ("local", "for"):
            continue
        out.add(tok.text)
    return out


def _declares(toks: list[_Token]) -> list[str]:
    """The names a top-level statement declares."""
    if toks[0].text != "local" or len(toks) < 2:
        return []
    if toks[1].text == "function":
        return [toks[2].text]
    return _local_names(toks)[0]


def _variables(toks: list[_Token]) -> list[_Token]:
    """The names `toks` uses as variables (not fields, table keys or keywords)."""
    out = []
    for i, tok in enumerate(toks):
        if tok.kind != "name" or tok.text in _KEYWORDS:
            continue
        before = toks[i - 1].text if i else ""
        after = toks[i + 1].text if i + 1 < len(toks) else ""
        if before in (".", ":") or (after == "=" and before in ("{", ",", ";")):
            continue
        out.append(tok)
    return out


def _free_names(toks: list[_Token]) -> set[str]:
    return {t.text for t in _variables(toks)}


def _globals(
    prelude: list[str], stmt: _Statement, expr: list[_Token], unseen: set[str]
) -> list[str]:
    """The lines of `stmt` with each name of `expr` that it read as a global (`unseen`: not
    declared yet where it stood, e.g. the second `tonumber` of `local tonumber = tonumber`)
    read as `_G.name`: moved into the function, the statement would see the local."""
    lines = prelude[stmt.first : stmt.last + 1]
    hits = [t for t in _variables(expr) if t.text in unseen]
    for t in sorted(hits, key=lambda t: (t.line, -t.col)):
        k = t.line - stmt.first
        lines[k] = f"{lines[k][: t.col]}_G.{lines[k][t.col :]}"
    return lines


def located_lines(message: str, pattern: re.Pattern[str], origins: Sequence[Origin | None]) -> str:
    """`message` with each match of `pattern` (its group 1: a line number n, 1-based) followed
    by `(file:line)` of `origins[n - 1]`, where that is known."""

    def where(match: re.Match[str]) -> str:
        n = int(match.group(1))
        origin = origins[n - 1] if 0 < n <= len(origins) else None
        if origin is None:
            return match.group(0)
        return f"{match.group(0)} ({origin[0]}:{origin[1]})"

    return pattern.sub(where, message)


@dataclass(frozen=True)
class Library:
    """A script as a function library: `text` for FUNCTION LOAD, `function` for FCALL."""

    script: str  # the lua/ script's name (hold_reserve)
    name: str  # library and function name: os_<script>_<digest>
    text: str
    origins: tuple[Origin | None, ...]  # line n (1-based) -> origins[n - 1] (None: generated)
    flags: tuple[str, ...]

    @property
    def function(self) -> str:
        return self.name

    def translate(self, message: str) -> str:
        """`message` (a Lua error of the function) with each `user_function:N` followed by
        the `lua/` file and line it came from."""
        return located_lines(message, _FUNCTION_LINE, self.origins)

    @classmethod
    def of(cls, script: str, text: str, origins: tuple[Origin, ...]) -> Library:
        """The library of the expanded script `text` (line n from `origins[n - 1]`; lines
        of `lua/includes/` mark the prelude)."""
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        flags: tuple[str, ...] = ()
        start = 0
        if lines and lines[0].startswith("#!lua"):
            for word in lines[0].split()[1:]:
                if word.startswith("flags="):
                    flags = tuple(f for f in word.removeprefix("flags=").split(",") if f)
            start = 1
        from_include = [i for i, o in enumerate(origins) if "/includes/" in o[0]]
        split = from_include[-1] + 1 if from_include else start
        top: list[tuple[str, Origin | None]] = []
        entry: list[tuple[str, Origin | None]] = []
        prelude = lines[start:split]
        stmts = statements(tokens("\n".join(prelude)))
        assigned = _assigned(tokens("\n".join(lines[start:])))
        constants: set[str] = set()
        declared: set[str] = set()
        owner: dict[int, _Statement] = {}
        for each in stmts:
            for k in range(each.first, each.last + 1):
                owner[k] = each
        later = {n for each in stmts for n in _declares(each.toks)}  # every top-level name
        done: set[int] = set()
        for k, line in enumerate(prelude):
            origin = origins[start + k]
            if k not in owner:
                top.append((line, origin))  # a comment or blank line
                continue
            stmt = owner[k]
            if id(stmt) in done:
                continue
            done.add(id(stmt))
            body = [(prelude[j], origins[start + j]) for j in range(stmt.first, stmt.last + 1)]
            toks = stmt.toks
            head = toks[0].text
            if head == "function":
                raise LibraryError(f"{script}: a global function in a prelude ({origin})")
            if head == "local" and len(toks) > 2 and toks[1].text == "function":
                names = [toks[2].text]
                top.extend(body)
            elif head == "local":
                names, eq = _local_names(toks)
                constant = (
                    eq is not None
                    and _is_constant(toks[eq + 1 :], constants)
                    and not assigned & set(names)
                )
                if constant:
                    constants.update(names)
                    top.extend(body)
                else:
                    top.append((f"local {', '.join(names)}", origin))
                    unseen = (later - declared) | set(names)
                    moved = _globals(prelude, stmt, toks[eq + 1 :] if eq else [], unseen)
                    first = moved[0]
                    if eq is None:
                        first = f"{', '.join(names)} = nil"
                    else:
                        first = first.replace("local ", "", 1)
                    entry.append((first, body[0][1]))
                    entry.extend(zip(moved[1:], (o for _, o in body[1:]), strict=True))
            else:
                names = []
                if _free_names(toks) & (later - declared):
                    raise LibraryError(f"{script}: a statement reads a name declared after it")
                entry.extend(body)
            again = declared & set(names)
            if again:
                raise LibraryError(f"{script}: {sorted(again)} declared twice ({origin})")
            declared.update(names)
        flag_list = ", ".join(f"'{f}'" for f in flags)
        out: list[tuple[str, Origin | None]] = [
            (f"#!lua name={_PLACEHOLDER}", None),
            ("local KEYS, ARGV", None),
            *top,
            (
                f"redis.register_function{{function_name='{_PLACEHOLDER}', "
                f"flags={{{flag_list}}}, callback=function(keys_, argv_) KEYS, ARGV = keys_, argv_",
                None,
            ),
            *entry,
            *((lines[k], origins[k]) for k in range(split, len(lines))),
            ("end}", None),
        ]
        raw = "\n".join(t for t, _ in out) + "\n"
        digest = hashlib.sha1(raw.encode()).hexdigest()[:16]
        name = f"os_{script}_{digest}"
        return cls(script, name, raw.replace(_PLACEHOLDER, name), tuple(o for _, o in out), flags)
