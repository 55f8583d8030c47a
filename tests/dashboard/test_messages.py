"""The app's next-step sentences (`dashboard.components.messages`): a command shown in a code span, copied and run,
names the same database file as the CLI's own sentence, whatever characters the path holds."""

from __future__ import annotations

import shlex

import pytest
from markdown_it import MarkdownIt

from cli.common import next_step
from core.errors import NotFoundError
from dashboard.components.messages import code, error_text

PATHS = ["data/ml100k.duckdb", "/tmp/my data/ml 100k.duckdb", "it's.duckdb", "a`b``c.duckdb", "`x`.duckdb",
         "$HOME/*.duckdb"]


def _code_spans(markdown: str) -> list[str]:
    """The text of every inline code span, as a CommonMark renderer shows it."""
    tokens = MarkdownIt("commonmark").parseInline(markdown)
    return [child.content for tok in tokens for child in tok.children or [] if child.type == "code_inline"]


@pytest.mark.parametrize("db", PATHS)
@pytest.mark.parametrize(("step", "command"), [("train", "train"), ("migrate", "migrate")])
def test_a_copied_command_names_the_same_database_as_the_clis(db, step, command):
    exc = NotFoundError("Something about the database.", next_step=step, step_db=db)
    (shown,) = _code_spans(error_text(exc))  # one code span, rendered whole
    assert shlex.split(shown) == ["interestlens", command, "--db", db]  # the shell reads back the very path
    assert f"`{shown}`" in next_step(exc)  # the same command as the CLI prints


def test_a_path_with_spaces_is_quoted_as_the_shell_needs():
    exc = NotFoundError("There is no model at m.", next_step="train", step_db="/tmp/my data/x.duckdb")
    assert error_text(exc).endswith("or `interestlens train --db '/tmp/my data/x.duckdb'`.")


@pytest.mark.parametrize("text", ["plain", "a`b", "``", "`lead", "trail`", "a ``` b"])
def test_a_code_span_shows_its_text_verbatim(text):
    assert _code_spans(code(text)) == [text]
