"""The README's curl walkthroughs work verbatim against a real `omnistock serve`.

A walkthrough is a ```sh block whose first line is `B=http://127.0.0.1:8080`: any section
that adds one is run here, in README order, each block in its own bash against one fresh
service (loopback, no keys), so a later block may use what an earlier one created. Only the
port is substituted. A command fails the test when it exits non-zero or, for curl, when the
answer is an HTTP error (curl runs with --fail-with-body); a streaming `curl -N` is stopped
after 2 s, as the reader stops it with Ctrl-C.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BASE = "http://127.0.0.1:8080"
FIRST_LINE = f"B={BASE}\n"

# Run before each block: the checks above, and stop at the first failing command.
PRELUDE = """
set -eu
curl() {
  case " $* " in
    *" -N "*) command curl --fail-with-body --max-time 2 "$@" || [ $? -eq 28 ] ;;
    *) command curl --fail-with-body "$@" ;;
  esac
}
"""


def walkthroughs(text: str) -> list[tuple[str, str]]:
    """(the heading it stands under, the block) for every walkthrough block, in order."""
    found = []
    heading = ""
    # Fenced blocks are matched whole, so a `# comment` inside one is never a heading.
    fence = r"^(#{1,6} [^\n]*)$|^```(\w*)\n(.*?)^```"
    for match in re.finditer(fence, text, re.MULTILINE | re.DOTALL):
        if match.group(1):
            heading = match.group(1)
        elif match.group(2) == "sh" and match.group(3).startswith(FIRST_LINE):
            found.append((heading, match.group(3)))
    return found


def test_the_readme_has_walkthroughs_under_their_headings() -> None:
    headings = [heading for heading, _ in walkthroughs(README)]
    assert "## Try it" in headings
    assert any("Webhooks" in h for h in headings), headings
    # A heading line inside a block (a shell comment) is never taken for a section.
    assert all(not h.startswith("# ") for h in headings), headings


def test_every_readme_walkthrough_runs_verbatim_against_a_real_service(
    store_url: str, start_service: Any, tmp_path: Path
) -> None:
    service = start_service(OMNISTOCK_REDIS_URL=store_url)
    port = service.base_url.rsplit(":", 1)[1]
    assert port != "8080"
    for heading, block in walkthroughs(README):
        script = PRELUDE + block.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        run = subprocess.run(
            ["bash", "-x", "-c", script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, f"{heading}: exit {run.returncode}\n{run.stdout}\n{run.stderr}"
