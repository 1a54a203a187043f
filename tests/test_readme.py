"""The README as a newcomer follows it: every shell command of its ``sh`` and ``console`` blocks
run in order, as written, from a directory laid out like the clone's root; its Python blocks
run; and a new shell finds ``costline`` the way the README says.

The commands run in one working directory shared by the module, in README order, like a
user's shell session: ``costline demo init ./ws`` comes before the commands that read ``ws/``.
The working directory holds a copy of ``examples/`` and a link to the virtual environment; the
home directory is a temporary one whose ``~/.cache/costline/demo`` is a small demo workspace
(what ``make audit`` leaves there at full size), so nothing is written into the checkout.

A command that needs Google Cloud credentials, the network or a running server is not run:
``EXEMPT`` names each with the reason, and a ``costline`` one is still parsed (``--help``
appended: an option that does not exist fails). A ``# exit N`` comment on a command is the
exit code the README documents for it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from costline.demo import build_workspace

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent
COMMAND_TIMEOUT_S = 300

# Commands shown but not run here, by how they start (after `$ `), and why.
LIVE = "needs Google Cloud credentials and the network"
SERVER = "starts a server that runs until stopped; tests/test_server.py starts the real one"
EXEMPT: dict[str, str] = {
    "make ": "the set-up itself: the suite runs under it",
    "gcloud ": LIVE,
    "bq ": LIVE,
    "mkdir -p my-history && gsutil ": LIVE,
    "costline profile my-history/": "reads the files the export above downloads",
    "git clone ": "clones mozilla/bigquery-etl over the network",
    "costline lint sql ": "runs in the bigquery-etl clone",
    "costline serve": SERVER,
    "curl ": "asks the server `costline serve` starts",
    "costline loadtest --url ": "drives the server `costline serve` starts",
    "costline loadtest --spawn ": "drives a spawned service for 20-30 s (tests/test_loadtest.py)",
}
# Finite costline commands too slow for the suite at the size written: parsed, not run.
SLOW = {
    "costline merge prove": "10,000,000 rows (minutes); the --rows 1000000 run below takes "
    "the same path",
}
# Run smaller than written, and why: the same code on a history a fiftieth the size.
SMALLER = {
    "costline demo init ./ws": ["--jobs", "3000", "--scale", "0.01"],
}
# Contains --bigquery: reads live.
LIVE_OPTION = "--bigquery"


@dataclass(frozen=True)
class Command:
    """One command of a README code block."""

    line: int  # README line of the command
    text: str  # as written, continuation lines joined
    shown_with_output: bool  # from a `text` block: the command of an output shown

    @property
    def expected_exit(self) -> int:
        found = re.search(r"#\s*exit (\d+)", self.text)
        return int(found.group(1)) if found else 0

    @property
    def id(self) -> str:
        return f"L{self.line}:{self.text.split('#')[0].strip()[:60]}"


def code_blocks(languages: set[str]) -> list[tuple[str, int, str]]:
    """Every fenced block of the README in one of ``languages``: (language, line of its first
    content line, content)."""
    text = README.read_text(encoding="utf-8")
    found = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
        if match.group(1) in languages:
            found.append((match.group(1), text[: match.start()].count("\n") + 2, match.group(2)))
    return found


def _joined(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Backslash-continued lines joined into one, keeping the first line's number."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, line in lines:
        if pending is not None:
            pending = (pending[0], pending[1][:-1].rstrip() + " " + line.strip())
        else:
            pending = (number, line)
        if not pending[1].endswith("\\"):
            out.append(pending)
            pending = None
    if pending is not None:
        out.append(pending)
    return out


def readme_commands() -> list[Command]:
    """The commands of the README's ``sh`` and ``console`` blocks (and the ``$`` lines of its
    ``text`` blocks), in order."""
    commands = []
    for language, first, body in code_blocks({"sh", "console", "text", ""}):
        numbered = list(enumerate(body.splitlines(), start=first))
        if language == "sh":
            lines = [(n, s) for n, s in numbered if s.strip() and not s.lstrip().startswith("#")]
        else:
            # After `$ `, a command (and its continuation lines); anything else is output.
            lines, going = [], False
            for n, s in numbered:
                if s.startswith("$ "):
                    lines.append((n, s[2:]))
                    going = s.endswith("\\")
                elif going:
                    lines.append((n, s))
                    going = s.endswith("\\")
        for number, command in _joined(lines):
            commands.append(Command(number, command.strip(), language in ("text", "")))
    return commands


def exemption(command: Command) -> str | None:
    """Why ``command`` is not run here, or None."""
    text = command.text
    for start, reason in EXEMPT.items():
        if reason and text.startswith(start):
            return reason
    if LIVE_OPTION in shlex.split(text, comments=True):
        return LIVE
    for start, reason in SLOW.items():
        if shlex.split(text, comments=True) == shlex.split(start):
            return reason
    if command.shown_with_output:
        return "the command of an output shown; its sh-block form runs"
    return None


COMMANDS = readme_commands()


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The working directory and environment of the README's commands."""
    root = tmp_path_factory.mktemp("readme")
    work, home = root / "clone", root / "home"
    shutil.copytree(ROOT / "examples", work / "examples")
    (work / ".venv").symlink_to(ROOT / ".venv")
    build_workspace(home / ".cache" / "costline" / "demo", jobs=3000, seed=5, scale=0.01)
    env = {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "HOME": str(home),
        "COLUMNS": "120",
        "LANG": "C.UTF-8",
    }
    return work, env


def run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``command`` in bash, as typed at a prompt."""
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
def test_the_readme_command_runs_as_written(
    command: Command, session: tuple[Path, dict[str, str]]
) -> None:
    work, env = session
    text = command.text.split(" #")[0].strip()
    why = exemption(command)
    if why is not None:
        if text.startswith("costline "):
            # Not run, but it must parse: every option it names exists.
            parsed = run(f"{text} --help", work, env)
            assert parsed.returncode == 0, f"{text}\n{parsed.stdout}{parsed.stderr}"
        pytest.skip(why)
    for start, extra in SMALLER.items():
        if text == start:
            text = shlex.join([*shlex.split(text), *extra])
    done = run(text, work, env)
    out = done.stdout + done.stderr
    assert "Traceback" not in out, out
    assert done.returncode == command.expected_exit, f"{text}\n{out[-3000:]}"


def test_every_command_is_found_and_the_examples_it_names_exist() -> None:
    texts = [c.text for c in COMMANDS]
    assert any(t.startswith("costline demo init ./ws") for t in texts)
    assert any(t.startswith("costline audit --bigquery") for t in texts)
    named = set(re.findall(r"examples/[\w./-]+\w", README.read_text(encoding="utf-8")))
    assert named, "the README names no example file"
    missing = sorted(n for n in named if not (ROOT / n).exists())
    assert not missing, missing


def test_the_first_commands_are_the_two_set_up_commands() -> None:
    [(_, _, first), *_] = code_blocks({"sh"})
    assert [line.split("#")[0].strip() for line in first.splitlines()] == [
        "make audit",
        "make test",
    ]


PYTHON_SKIPPED_HERE = "costline.Workspace.demo()"  # tests/test_api.py runs that session


PYTHON_BLOCKS = [(n, b) for _, n, b in code_blocks({"python"}) if PYTHON_SKIPPED_HERE not in b]


@pytest.mark.parametrize(
    "code", [b for _, b in PYTHON_BLOCKS], ids=[f"python-L{n}" for n, _ in PYTHON_BLOCKS]
)
def test_the_readme_python_block_runs(code: str, session: tuple[Path, dict[str, str]]) -> None:
    work, env = session
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr


def test_a_new_shell_finds_costline_after_the_readme_activation(tmp_path: Path) -> None:
    # A login shell with nothing of the venv on its PATH, in the clone's root, as the README
    # says to open one.
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    before = subprocess.run(
        ["bash", "-lc", "command -v costline"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert before.returncode != 0, f"costline is already on a bare PATH: {before.stdout}"
    [activation] = [b for _, _, b in code_blocks({"sh"}) if ". .venv/bin/activate" in b]
    after = subprocess.run(
        ["bash", "-lc", "set -e\n" + activation],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert after.returncode == 0, after.stderr
    assert re.fullmatch(r"costline \S+\n", after.stdout), after.stdout


def test_commands_resolve_costline_from_this_venv() -> None:
    assert (VENV_BIN / "costline").is_file()
    assert os.access(VENV_BIN / "costline", os.X_OK)


def test_the_example_settings_files_load() -> None:
    # What `costline serve --tenants` and `costline profile --reservations` read, never run
    # here with a server: each key opens its own tenant.
    from costline.service.tenants import load_tenants
    from costline.warehouse.billing import load_setups

    tenants = load_tenants(ROOT / "examples" / "tenants.toml")
    for name in tenants.tenants:
        assert tenants.authenticate(f"example-key-{name}") == name
    setups = load_setups(ROOT / "examples" / "reservations.toml")
    assert "acme-admin:US.regulatory" in setups
