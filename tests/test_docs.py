"""The documentation names only what exists.

Every dotted config key that README.md, docs/*.md and the comments and docstrings of src/
name (``decoding.tree``, ``judge.fast_model``, ``--set corpus.synthetic.hours=0.5``) is a field
of the frozen configuration dataclasses, and every section they point to (README, "Quick
start"; docs/running.md, "Zero-shot") is a heading of that page. Two keys that did not exist
(``corpus.root``, ``decoding.compile``) and README sections that had moved to docs/ pages were
found this way. Each failure lists every offender as file:line.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import io
import re
import tokenize
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vadusa.config import Config

REPO = Path(__file__).resolve().parents[1]
#: a dict-valued field: the names below it are the user's (ablation.variants.<name>,
#: corpus.manifests.<split>, corpus.libritts.subsets.<subset>), so any name resolves
ANY = "*"
#: final segments that make a dotted token a file name (tokens.jsonl, heads.pt, model.bin)
FILE_EXTENSIONS = frozenset({"py", "pt", "th", "bin", "json", "jsonl", "md", "png", "csv", "tsv",
                             "yaml", "yml", "safetensors", "gz", "npz", "html", "txt", "wav",
                             "db", "smk", "rst", "sh"})
#: tokens that look like keys and are not, each with why: keep this short
ALLOWED = {
    "corpus.sampel_rate": "the misspelt key of the schema's error example (README, "
                          "docs/running.md): the error it shows is the point",
}


def config_tree(cls: type = Config) -> dict[str, Any]:
    """The configuration's fields as nested dicts: a section's fields, ANY below a dict-valued
    field, None at a leaf."""
    hints = typing.get_type_hints(cls)
    tree: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            tree[f.name] = config_tree(kind)
        elif typing.get_origin(kind) is dict or kind is dict:
            tree[f.name] = ANY
        else:
            tree[f.name] = None
    return tree


TREE = config_tree()
SECTIONS = sorted(name for name, node in TREE.items() if isinstance(node, dict))
# a placeholder segment (tokens.F.scratch.steps, tokens.<family>.weights, corpus.libriheavy.*)
# stands for any field
_SEGMENT = r"(?:[A-Za-z_]\w*|<[\w-]+>|\*)"
# a section name, then dotted segments; not inside a path or a longer name (docs/tokens.md,
# vadusa.decoding.bench, results.tokens), and not a call (vocoder.decode(...))
KEY = re.compile(rf"(?<![\w./<-])((?:{'|'.join(SECTIONS)})(?:\.{_SEGMENT})+)(?![\w(<])")


def _placeholder(segment: str) -> bool:
    return segment in ("*", ANY) or segment.startswith("<") or (segment.isupper()
                                                                  and segment.isalpha())


def resolves(path: str, tree: dict[str, Any] | None = None) -> bool:
    """Does the dotted ``path`` name a field (or a section) of the configuration?"""
    node: Any = TREE if tree is None else tree
    parts = path.split(".")
    for i, part in enumerate(parts):
        if node == ANY:
            return True
        if not isinstance(node, dict):
            return False  # below a leaf
        if _placeholder(part):
            rest = ".".join(parts[i + 1:])
            return any(not rest or (isinstance(child, dict) and resolves(rest, child))
                       or child == ANY for child in node.values())
        if part not in node:
            return False
        node = node[part]
    return True


def _is_module(path: str) -> bool:
    """``decoding.bench``, ``decoding.timing.faster_precision``: a module of the package whose
    name a section shares, not a key."""
    parts = path.split(".")
    for n in range(len(parts), 1, -1):
        try:
            if importlib.util.find_spec("vadusa." + ".".join(parts[:n])) is not None:
                return True
        except (ImportError, ValueError):
            continue
    return False


def key_offenders(path: str) -> bool:
    """Is the dotted token ``path`` a config key that does not exist?"""
    return not (path.rsplit(".", 1)[-1] in FILE_EXTENSIONS or path in ALLOWED
                or resolves(path) or _is_module(path))


# --- the texts: (file, first line, text) chunks ----------------------------------------------

def _markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _python_files() -> list[Path]:
    return sorted((REPO / "src").rglob("*.py"))


def _python_chunks(path: Path) -> Iterator[tuple[int, str]]:
    """The docstrings of a module, and each run of comment lines joined (a reference wraps
    over comment lines), with their first line."""
    source = path.read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                yield body[0].value.lineno, body[0].value.value
    run: list[str] = []
    start = last = 0
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        line = token.start[0]
        if run and line != last + 1:
            yield start, "\n".join(run)
            run = []
        if not run:
            start = line
        run.append(token.string.lstrip("#").strip())
        last = line
    if run:
        yield start, "\n".join(run)


def chunks() -> Iterator[tuple[Path, int, str]]:
    for path in _markdown_files():
        yield path, 1, path.read_text()
    for path in _python_files():
        for line, text in _python_chunks(path):
            yield path, line, text


def _where(path: Path, first: int, text: str, offset: int) -> str:
    return f"{path.relative_to(REPO)}:{first + text.count(chr(10), 0, offset)}"


# --- section references ----------------------------------------------------------------------

def _normal(title: str) -> str:
    """A title as compared: no markup, one space between words, case-folded."""
    return re.sub(r"\s+", " ", re.sub(r"[`*_]|\n\s*#?", " ", title)).strip().rstrip(".:").casefold()


def sections(page: Path) -> list[str]:
    """The titles a text may point to on ``page``: its headings, and the bold run-in heads
    that open its paragraphs and list items (**Decoding precision** (...): ...)."""
    text = page.read_text()
    heads = re.findall(r"^#{1,6}\s+(.+?)\s*$", text, re.M)
    heads += re.findall(r"^(?:[-*]\s+)?\*\*([^*\n]+)\*\*", text, re.M)
    return [_normal(h) for h in heads]


# README, "Quick start" / README "Quick start" / README's "..." / (README § Quick start)
README_REF = re.compile(r"\bREADME(?:\.md)?(?:'s)?,?\s+(?:§\s*)?\"([^\"]{1,120})\""
                        r"|\bREADME(?:\.md)?\s*§\s*([^)\n;,\"]{1,120})")
# docs/running.md, "Zero-shot" / [budget.md](budget.md), "The default target ..."
DOC_REF = re.compile(r"(?<![\w/])(?:docs/)?([\w-]+)\.md\]?(?:\([^)\s]*\))?,\s+\"([^\"]{1,120})\"")


def section_offenders() -> list[str]:
    """Every reference to a section of the README or of a docs page that names no heading
    there: the title must begin one (a reference may shorten it)."""
    pages: dict[Path, list[str]] = {}
    offenders = []

    def check(page: Path, title: str, where: str) -> None:
        if not page.is_file():
            offenders.append(f"{where}: {page.relative_to(REPO)} does not exist "
                             f"(section \"{title}\")")
            return
        if page not in pages:
            pages[page] = sections(page)
        if not any(head.startswith(_normal(title)) for head in pages[page]):
            offenders.append(f"{where}: {page.relative_to(REPO)} has no section "
                             f"\"{_normal(title)}\"")

    for path, first, text in chunks():
        for m in README_REF.finditer(text):
            check(REPO / "README.md", m.group(1) or m.group(2),
                  _where(path, first, text, m.start()))
        for m in DOC_REF.finditer(text):
            if m.group(1) == "README":
                continue  # README.md, "..." is README_REF's
            check(REPO / "docs" / f"{m.group(1)}.md", m.group(2),
                  _where(path, first, text, m.start()))
    return offenders


def config_key_offenders() -> list[str]:
    offenders = []
    for path, first, text in chunks():
        for m in KEY.finditer(text):
            if key_offenders(m.group(1)):
                offenders.append(f"{_where(path, first, text, m.start())}: `{m.group(1)}` is "
                                 "no config key")
    return offenders


# --- the tests ------------------------------------------------------------------------------

def test_the_key_rules_accept_fields_sections_and_user_names_and_refuse_the_rest() -> None:
    assert resolves("decoding.tree") and resolves("judge.fast_model") and resolves("measure")
    assert resolves("corpus.synthetic.hours") and resolves("tokens.whisper.layer")
    assert resolves("ablation.variants.no_noise")  # a dict's names are the user's
    assert resolves("tokens.F.scratch.steps") and resolves("tokens.<family>.weights")
    assert not resolves("decoding.compile") and not resolves("corpus.root")
    assert not resolves("decoding.tree.nodes")  # below a leaf
    assert not key_offenders("decoding.bench")  # a module, vadusa.decoding.bench
    assert not key_offenders("tokens.jsonl") and not key_offenders("heads.pt")
    assert [m.group(1) for m in KEY.finditer(
        "see docs/tokens.md, `--set decoding.tau=3`, vocoder.decode(x) and model.prompt.")] == [
        "decoding.tau", "model.prompt"]


def test_every_dotted_config_key_in_the_docs_and_the_source_comments_exists() -> None:
    offenders = config_key_offenders()
    print("\n".join(offenders))
    assert not offenders, "config keys that do not exist:\n" + "\n".join(offenders)


def test_every_section_a_text_points_to_exists() -> None:
    offenders = section_offenders()
    print("\n".join(offenders))
    assert not offenders, "sections that do not exist:\n" + "\n".join(offenders)


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_the_allowed_keys_are_still_not_keys(name: str) -> None:
    # an allowed name that became a key would hide nothing, but should leave the list
    assert not resolves(name)


def test_the_readme_headline_and_docs_results_come_from_the_results_page() -> None:
    """The README's results are the generated block, and docs/results.md is the generated page
    (`vadusa table --markdown-doc docs/results.md --readme README.md`), not a hand-kept table."""
    from vadusa.eval.results_page import HEADLINE_END, HEADLINE_START  # noqa: PLC0415

    readme = (REPO / "README.md").read_text()
    assert readme.count(HEADLINE_START) == 1 and readme.count(HEADLINE_END) == 1
    block = readme.split(HEADLINE_START)[1].split(HEADLINE_END)[0]
    assert "docs/results.md" in block
    page = (REPO / "docs/results.md").read_text()
    assert page.startswith("# Current results\n") and "vadusa table --markdown-doc" in page
    assert re.search(r"^- code: commit `", page, re.M)
    # the README stays short: the details are in docs/
    assert len(readme.encode()) <= 12 * 1024
