"""The README and docs/ against the code: every relative link lands on a file (and a heading,
when it names one), and every `python -m` command they show parses with its command's own
parser, so a renamed flag, subcommand or page fails here rather than for a reader."""

import importlib
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PAGES = [p for p in PAGES if "_build" not in p.parts]
# Each command line's module and the module that holds its `_parser()`.
MODULES = {
    "zoo": "zoo.__main__", "zoo.train": "zoo.train.__main__", "zoo.data": "zoo.data.__main__",
    "zoo.bench": "zoo.bench.__main__", "zoo.study": "zoo.study.__main__",
    "tuning.search": "tuning.search", "tuning.memory": "tuning.memory",
    "reports": "reports.__main__",
}  # fmt: skip


def _slug(heading: str) -> str:
    """GitHub's and MyST's anchor for a heading: lower case, punctuation dropped, spaces to -."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_lands_on_a_file_and_heading(page):
    broken = []
    for link in _links(page):
        if re.match(r"[a-z]+:", link):  # http(s), mailto: the site build cannot reach them
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link} (no file {target.relative_to(ROOT)})")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{link} (no heading #{anchor} in {target.name})")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def _split(text: str) -> tuple[list[str], str]:
    """The lines of the shell code blocks, and the text outside any code block."""
    shell, prose, fence = [], [], None
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = None if fence is not None else line.strip().strip("`")
        elif fence is None:
            prose.append(line)
        elif fence in ("", "bash", "sh", "console"):
            shell.append(line)
    return shell, "\n".join(prose)


def _commands() -> list[tuple[str, str, bool]]:
    """(page, command, whole) for every `python -m` command: whole for the code blocks' lines,
    which a reader runs as they are; not for inline mentions, which may leave out arguments."""
    found = []
    for page in PAGES:
        shell, prose = _split(page.read_text())
        spans = [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]
        for line, whole in [(line, True) for line in shell] + [(s, False) for s in spans]:
            for part in re.split(r"&&|\|\||;|\|", line):
                if "python -m " in part:
                    found.append((page.name, part[part.index("python -m ") :].strip(), whole))
    return found


COMMANDS = _commands()


def test_the_docs_show_commands_of_every_module():
    shown = {shlex.split(cmd, comments=True)[2] for _, cmd, _ in COMMANDS}
    assert set(MODULES) <= shown, set(MODULES) - shown


def _placeholder(token: str) -> bool:
    """MODEL, RUN_DIR, N: a value the reader fills in."""
    return re.fullmatch(r"[A-Z][A-Z0-9_]*", token) is not None and token not in ("S0", "S1")


def _parsers(module: str, argv: list[str]):
    """The command's parser, and the subcommand's when argv names one."""
    import argparse

    parser = importlib.import_module(MODULES[module])._parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and argv and argv[0] in action.choices:
            return parser, action.choices[argv[0]]
    return parser, parser


def _fill(parser, argv: list[str]) -> list[str]:
    """argv with each placeholder replaced by a value its option accepts."""
    options = {s: a for a in parser._actions for s in a.option_strings}
    filled = []
    for i, token in enumerate(argv):
        if _placeholder(token):
            action = options.get(argv[i - 1]) if i else None
            if action is not None and action.choices:
                token = str(next(iter(action.choices)))
            elif action is not None and action.type in (int, float):
                token = "1"
            else:
                token = "x"
        filled.append(token)
    return filled


@pytest.mark.parametrize("page, command, whole", COMMANDS, ids=[c for _, c, _ in COMMANDS])
def test_every_command_in_the_docs_parses(page, command, whole):
    argv = shlex.split(re.sub(r"\[[^\]]*\]", "", command), comments=True)
    argv = [a for a in argv if a not in ("&", "\\")]
    module, argv = argv[2], argv[3:]
    if module not in MODULES:  # pytest, sphinx, pip: not the zoo's
        pytest.skip(f"{module} is not a zoo command")
    for elided in ("...", "…"):  # an elided list of arguments: check what comes before it
        if elided in argv:
            argv = argv[: argv.index(elided)]
            argv = argv[:-1] if argv and argv[-1].startswith("--") else argv
    parser, sub = _parsers(module, argv)
    if not whole:  # a mention: its flags must exist, its arguments may be left out
        known = {s for a in sub._actions for s in a.option_strings}
        flags = [a.split("=")[0] for a in argv if a.startswith("--")]
        assert set(flags) <= known, f"{page}: `{command}`: no flag {set(flags) - known}"
        return
    parser.allow_abbrev = sub.allow_abbrev = False  # `--epoch` is not the docs' `--epochs`
    try:
        parser.parse_args(_fill(sub, argv))
    except SystemExit as exit_info:
        assert exit_info.code == 0, f"{page}: `{command}` does not parse"
