"""Write the workflow state diagram and transition table into docs/workflow.md, generated from
events.workflow.TRANSITIONS, between the markers. `--check` fails when the file is out of date."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from events.workflow import mermaid_state_diagram, transition_table_markdown

DOC_PATH = Path(settings.BASE_DIR) / "docs" / "workflow.md"
BEGIN = "<!-- BEGIN GENERATED: manage.py workflow_diagram -->"
END = "<!-- END GENERATED -->"


def generated_block() -> str:
    return "\n".join(
        [
            BEGIN,
            "```mermaid",
            mermaid_state_diagram(),
            "```",
            "",
            transition_table_markdown(),
            END,
        ]
    )


def render(text: str) -> str:
    """`text` with the generated block replaced (or appended when the markers are missing)."""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        return head + generated_block() + tail
    return text.rstrip("\n") + "\n\n" + generated_block() + "\n"


class Command(BaseCommand):
    help = "由流转表生成 docs/workflow.md 中的状态图和流转表；--check 只检查是否最新。"

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true")
        parser.add_argument("--path", default=str(DOC_PATH))

    def handle(self, *args, check: bool, path: str, **options):
        doc = Path(path)
        current = doc.read_text(encoding="utf-8") if doc.exists() else ""
        wanted = render(current)
        if check:
            if current != wanted:
                raise CommandError(f"{doc} 已过期：请运行 manage.py workflow_diagram")
            self.stdout.write(f"{doc} 是最新的")
            return
        if current != wanted:
            doc.write_text(wanted, encoding="utf-8")
            self.stdout.write(f"已更新 {doc}")
        else:
            self.stdout.write(f"{doc} 无需更新")
