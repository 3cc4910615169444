"""Every ```python block of README.md and docs/*.md runs, offline, and does what it shows.

One test case per block, named ``FILE:LINE`` (the line of its opening fence). The blocks run in a child process
(tests/doc_runner.py: one process per page, forked from one that imported litellm once), with:

- no provider key (every key variable set empty) and ``OPENAI_BASE_URL`` at a local OpenAI-compatible server
  (:class:`LocalModelServer`), so model names such as ``gpt-4o-mini`` stream over real HTTP (through the direct
  backend; ``litellm/...`` names through litellm), on which a script that subscribes and returns at once ends before
  its first token;
- a network guard: any connection to, or name lookup of, a non-loopback address fails the block;
- a timeout per block, stdin at /dev/null, a fresh working directory per page.

A block passes when it returns (or exits 0), printed what it promises (below) and logged no traceback.

Conventions (documented in docs/getting-started.md):

- ``# continues from above`` as a block's first line: it runs after the previous ```python block of the page, in
  the same namespace. Otherwise a block runs alone in a fresh namespace.
- ``# prints: TEXT`` anywhere in a block: its output must contain TEXT. A block that prints (calls ``print``, draws
  with rich's ``Live`` or a console sink, runs agents with ``streaming_on=True`` or ``show_dashboard=True``) must
  print something before it returns - a block that only subscribes returns before its first event.
- ``<!-- not-run: REASON -->`` before a block's fence: the block is not run (it is still compiled); REASON is
  required.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rxagents.models import provider_key_variables
from rxagents.testing import LocalModelServer

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNER = Path(__file__).resolve().parent / "doc_runner.py"
BLOCK_TIMEOUT = 30.0  # seconds; a block that waits for Ctrl-C fails instead of hanging the suite
CONTINUES = "# continues from above"

_FENCE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*?)[ \t]*$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not-run\b:?(?P<reason>.*?)-->\s*$")
_PRINTERS = {"print", "Live", "console_printer", "panel", "dashboard"}
_PRINTS = re.compile(r"#\s*prints:\s?(?P<text>.*?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown page."""

    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    source: str  # dedented
    not_run: str | None = None  # the marker's reason ("" if the marker has none); None: no marker

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"

    @property
    def continues(self) -> bool:
        return self.source.lstrip().startswith(CONTINUES)

    @property
    def expected(self) -> list[str]:
        return [m["text"] for m in _PRINTS.finditer(self.source) if m["text"]]

    @property
    def prints(self) -> bool:
        """Whether the block writes to stdout: it uses ``print``, a rich ``Live`` or a console sink, or runs
        agents with ``streaming_on=True`` or ``show_dashboard=True``."""
        for node in ast.walk(ast.parse(self.source)):
            if isinstance(node, ast.Name) and node.id in _PRINTERS:
                return True
            if (
                isinstance(node, ast.keyword)
                and node.arg in ("streaming_on", "show_dashboard")
                and isinstance(node.value, ast.Constant)
                and node.value.value is True
            ):
                return True
        return False


def fenced_blocks(text: str, path: Path) -> Iterator[Block]:
    """The fenced code blocks of a Markdown text, with a ``not-run`` marker attached to the block after it.

    A marker applies to the next fence if only blank lines separate them. Fences may be indented (in lists) and
    use backticks or tildes; a fence closes on a line of at least as many of the same character.
    """
    lines = text.splitlines()
    marker: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        opening = _FENCE.match(line)
        if opening is None:
            found = _NOT_RUN.match(line)
            if found is not None:
                marker = found["reason"].strip()
            elif line.strip():
                marker = None
            i += 1
            continue
        fence = opening["fence"]
        lang = opening["info"].split()[0].lstrip("{.").rstrip("}").lower() if opening["info"] else ""
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = _FENCE.match(lines[j])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"]
            ):
                break
            body.append(lines[j])
            j += 1
        source = textwrap.dedent("\n".join(body)) + "\n"
        yield Block(path, i + 1, lang, source, marker)
        marker = None
        i = j + 1


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in fenced_blocks(page.read_text(encoding="utf-8"), page)]


BLOCKS = all_blocks()
PYTHON = [block for block in BLOCKS if block.lang in ("python", "py")]
MARKERS = [block for block in BLOCKS if block.not_run is not None]


# --- the extractor


def test_extractor_finds_fences_markers_and_indented_blocks() -> None:
    page = ROOT / "example.md"
    text = textwrap.dedent(
        """\
        Intro.

        ```python
        print("a")
        ```

        <!-- not-run: needs a real provider key -->

        ```python
        # continues from above
        print("b")
        ```

        - a list item:

            ```python
            x = 1
            ```

        ````text
        ```python
        not a block of its own
        ```
        ````

        <!-- not-run -->
        ~~~py
        print("c")  # prints: c
        ~~~
        """
    )
    blocks = list(fenced_blocks(text, page))
    assert [(b.line, b.lang, b.not_run) for b in blocks] == [
        (3, "python", None),
        (9, "python", "needs a real provider key"),
        (16, "python", None),
        (20, "text", None),
        (27, "py", ""),
    ]
    assert blocks[1].continues and not blocks[0].continues
    assert blocks[2].source == "x = 1\n"
    assert blocks[3].source == "```python\nnot a block of its own\n```\n"
    assert blocks[4].expected == ["c"] and blocks[4].prints and not blocks[2].prints


def test_the_documentation_has_python_blocks() -> None:
    # guards against the extractor silently finding nothing
    assert len(PYTHON) >= 40
    assert any(block.path.name == "README.md" for block in PYTHON)


def test_every_not_run_marker_has_a_reason_and_a_python_block() -> None:
    bad = [f"{b.id}: no reason given" for b in MARKERS if not b.not_run]
    bad += [f"{b.id}: the marker is on a {b.lang or 'plain'} block" for b in MARKERS if b not in PYTHON]
    assert not bad, "every <!-- not-run: REASON --> needs a reason and a ```python block:\n" + "\n".join(bad)


def test_a_continued_block_has_a_block_to_continue() -> None:
    bad = []
    for page in PAGES:
        previous: Block | None = None
        for block in (b for b in PYTHON if b.path == page):
            if block.continues and (previous is None or previous.not_run is not None):
                bad.append(f"{block.id}: '{CONTINUES}' without a run block before it on the page")
            previous = block
    assert not bad, "\n".join(bad)


# --- running the blocks


def _environment(base_url: str | None) -> dict[str, str]:
    """No provider key (every key variable empty), no endpoint but ``base_url``, litellm offline at import."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_", "LITELLM_"))}
    env |= {var: "" for var in provider_key_variables().values() if var}
    env |= {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MODE": "PRODUCTION", "PYTHONPATH": str(ROOT)}
    if base_url is not None:
        env["OPENAI_BASE_URL"] = base_url
    return env


def run_plan(
    workdir: Path, pages: list[dict], *, env: dict[str, str], block_timeout: float, warm: bool
) -> tuple[dict[tuple[str, int], dict], str]:
    """Run ``pages`` (``{"path", "blocks": [{"line", "source", "continues"}]}``) with tests/doc_runner.py.

    Returns the results by ``(path, line)``, and the runner's stderr.
    """
    plan = {"workdir": str(workdir), "block_timeout": block_timeout, "warm": warm, "pages": pages}
    plan_path, results_path = workdir / "plan.json", workdir / "results.jsonl"
    plan_path.write_text(json.dumps(plan), encoding="utf-8")
    results_path.touch()
    total = sum(len(page["blocks"]) for page in pages)
    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(plan_path), str(results_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
        timeout=block_timeout * total + 10 * len(pages) + 60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {}
    for line in results_path.read_text(encoding="utf-8").splitlines():
        result = json.loads(line)
        results[result["path"], result["line"]] = result
    return results, proc.stderr


def test_the_runner_isolates_times_out_and_guards_the_network(tmp_path: Path) -> None:
    page = str(tmp_path / "page.md")
    blocks = [
        "import socket\nsocket.create_connection(('192.0.2.1', 80), timeout=1)\n",  # TEST-NET-1: never routed
        "import socket\ntry:\n    socket.getaddrinfo('example.com', 443)\nexcept OSError:\n    pass\n",
        "import threading\nthreading.Event().wait()\n",  # waits forever
        "x = 1\n",
        "# continues from above\nprint(x + 1)\n",
        "print(x)\n",  # a fresh namespace: x is not defined
        "input()\n",  # stdin is /dev/null
        # a thread that prints after its block returned; the next block waits for it: its output lands there
        "import threading, time\n"
        "threading.Thread(target=lambda: (time.sleep(0.2), print('late')), name='late').start()\n",
        "import threading\n[t.join() for t in threading.enumerate() if t.name == 'late']\n",
    ]
    pages = [
        {
            "path": page,
            "blocks": [{"line": i, "source": b, "continues": "# continues" in b} for i, b in enumerate(blocks)],
        }
    ]
    results, _ = run_plan(tmp_path, pages, env=_environment(None), block_timeout=2.0, warm=False)
    outcome = [results[page, i] for i in range(len(blocks))]
    assert "network access refused: connect to ('192.0.2.1', 80)" in outcome[0]["error"]
    assert "network access refused: resolve 'example.com'" in outcome[1]["error"]  # even though it was caught
    assert "BlockTimeout" in outcome[2]["error"]
    assert outcome[3]["status"] == outcome[4]["status"] == "passed" and outcome[4]["stdout"] == "2\n"
    assert "NameError: name 'x' is not defined" in outcome[5]["error"]
    assert "EOFError" in outcome[6]["error"]
    assert outcome[7]["status"] == "passed" and outcome[7]["stdout"] == ""
    assert outcome[8]["stdout"] == "late\n"
    # tracebacks name the line in the page: block 5's fence is "line 5", so its first line is line 6
    assert f'File "{page}", line 6, in <module>' in outcome[5]["error"]


@pytest.fixture(scope="module")
def doc_results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Run the blocks of every page that has a selected test case, once; results by block id, and the runner's
    stderr as ``"__runner__"``."""
    selected = {
        item.callspec.params["block"].path
        for item in request.session.items
        if item.path == Path(__file__) and hasattr(item, "callspec") and "block" in item.callspec.params
    }
    pages = [
        {
            "path": str(page),
            "blocks": [
                {"line": b.line, "source": b.source, "continues": b.continues}
                for b in PYTHON
                if b.path == page and b.not_run is None
            ],
        }
        for page in PAGES
        if page in selected
    ]
    with LocalModelServer() as server:  # its own server: other tests script replies on the shared one
        workdir = tmp_path_factory.mktemp("docs")
        env = _environment(server.url)
        results, stderr = run_plan(workdir, pages, env=env, block_timeout=BLOCK_TIMEOUT, warm=True)
    by_id = {f"{Path(path).relative_to(ROOT).as_posix()}:{line}": result for (path, line), result in results.items()}
    by_id["__runner__"] = {"stderr": stderr}
    return by_id


@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_doc_block(block: Block, doc_results: dict[str, dict]) -> None:
    compile(block.source, block.id, "exec")  # even a block that is not run must be valid Python
    if block.not_run is not None:
        pytest.skip(f"not-run: {block.not_run}")
    result = doc_results.get(block.id)
    assert result is not None, f"{block.id} never finished; runner: {doc_results['__runner__']['stderr'][-2000:]}"
    output = f"\n--- stdout:\n{result['stdout'][-2000:]}\n--- stderr:\n{result['stderr'][-3000:]}"
    assert result["status"] == "passed", f"{block.id} failed:\n{result['error']}{output}"
    if block.prints:
        assert result["stdout"].strip(), (
            f"{block.id} prints, but printed nothing before it returned: does it subscribe and return before the "
            f"first event? Show a blocking form (.run(), to_async_iter, agent.run).{output}"
        )
    for text in block.expected:
        assert text in result["stdout"], f"{block.id}: expected the output to contain {text!r}{output}"
    # an exception on another thread (a subscriber without on_error, a task nobody awaited) is only logged
    assert "Traceback" not in result["stderr"], f"{block.id} logged an exception{output}"
