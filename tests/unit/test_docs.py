"""README.md and docs/ say what the code does: their links lead somewhere, the command table names every option, and
the snippets they give run."""

from __future__ import annotations

import re
import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest
import typer.main

from ezone.cli import app
from ezone.stack import SmtpSink

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# [text](target) and ![alt](target); the target ends at whitespace or the closing parenthesis.
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)  # code is not a link
    return [target for target in MARKDOWN_LINK.findall(text)
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_in_the_readme_and_docs_resolves(page):
    broken = [target for target in relative_links(page)
              if not (page.parent / target.split("#", 1)[0]).resolve().exists()]

    assert not broken, f"{page.relative_to(REPO)} links to what is not in the repository: {broken}"


def commands(command, path: tuple[str, ...] = ()):
    """(words after `ezone`, the option names) of every command of the CLI."""
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from commands(sub, (*path, name))
    else:
        yield path, [[*param.opts, *param.secondary_opts] for param in command.params if param.opts[0].startswith("--")]


def test_the_readme_command_table_names_every_option_of_every_command():
    rows = [line for line in (REPO / "README.md").read_text().splitlines() if line.startswith("| `ezone ")]
    for path, options in commands(typer.main.get_command(app)):
        invocation = f"`ezone {' '.join(path)}"
        described = " ".join(row.split(" | ")[0] for row in rows if f"{invocation} " in row or f"{invocation}`" in row)
        assert described, f"the README's command table has no row for ezone {' '.join(path)}"
        # A flag and its negation (--demo / --no-demo) are one option.
        missing = [names[0] for names in options if not any(re.search(rf"{name}\b", described) for name in names)]
        assert not missing, f"the README's row for ezone {' '.join(path)} leaves out {missing}"


def test_the_mailbox_snippet_in_the_notifications_doc_prints_decoded_subjects(tmp_path, monkeypatch, capsys):
    page = (REPO / "docs" / "notifications.md").read_text()
    [snippet] = [block for block in re.findall(r"^```python\n(.*?)^```", page, flags=re.MULTILINE | re.DOTALL)
                 if "mailbox" in block]
    sink = SmtpSink(tmp_path / ".ezone" / "mail")
    sink.start()
    try:
        message = EmailMessage()
        message["From"], message["To"] = "alerts@ezone.example", "board-seat-1@springfield.example"
        # Non-ASCII goes over SMTP as RFC 2047 encoded words; the snippet must print what was written.
        message["Subject"] = "[ezone] Critical: Kiley Academy — math proficiency fell to 12 %"
        message.set_content("Kiley Academy's math proficiency fell.")
        with smtplib.SMTP(sink.host, sink.port) as client:
            client.send_message(message)
    finally:
        sink.stop()
    assert b"=?utf-8?" in (tmp_path / ".ezone" / "mail" / "ezone.mbox").read_bytes()

    monkeypatch.chdir(tmp_path)
    exec(snippet, {"__name__": "snippet"})

    assert capsys.readouterr().out == (
        "board-seat-1@springfield.example [ezone] Critical: Kiley Academy — math proficiency fell to 12 %\n")
