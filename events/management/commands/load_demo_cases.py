"""manage.py load_demo_cases: a case history for the demo district (示例案件); idempotent."""

import sys

from django.core.management.base import BaseCommand, CommandError

from events.demo import FULL_SIZE_CASES, MAX_SCALE, DemoCasesError, demo_cases_load
from events.workflow import State
from geodata.demo.progress import Progress


class Command(BaseCommand):
    help = (
        f"为示例区生成近 120 天的示例案件（约 {FULL_SIZE_CASES} 件，经由正式的案件流转服务记录，"
        "含照片、返工、回退、延时、挂账、督办，部分仍在办理中）。须先运行 load_demo 和 load_case_categories。"
        "可重复执行：示例案件已存在时直接退出。"
    )
    # The system checks import every URL module: seconds for nothing this command uses.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--scale",
            type=float,
            default=1.0,
            help=f"案件数量的倍数（默认 1.0，约 {FULL_SIZE_CASES} 件；最大 {MAX_SCALE}）",
        )
        parser.add_argument("--seed", type=int, default=None, help="随机种子（默认固定值）")
        parser.add_argument(
            "--reload", action="store_true", help="删除已有示例案件后重新生成（须数据库允许清除示例案件）"
        )

    def handle(self, *args, scale: float, seed: int | None, reload: bool, verbosity: int, **options):
        progress = Progress(enabled=verbosity >= 1, stream=sys.stderr)
        try:
            result = demo_cases_load(seed=seed, scale=scale, reload=reload, progress=progress)
        except DemoCasesError as error:
            raise CommandError(str(error)) from error
        for message in result.messages:
            self.stderr.write(self.style.WARNING(message))
        if verbosity < 1:
            return
        total = sum(result.counts.values())
        counts = "，".join(
            f"{State(state).label} {count}" for state, count in sorted(result.counts.items(), key=lambda i: -i[1])
        )
        if result.status == "unchanged":
            self.stdout.write(f"示例案件已存在，无需重复生成（共 {total} 件：{counts}）。如需重新生成，请加 --reload。")
        elif result.status == "loaded":
            self.stdout.write(
                self.style.SUCCESS(
                    f"已生成示例案件 {total} 件，用时 {result.seconds:.1f} 秒（流转记录 {result.history} 条，"
                    f"照片 {result.photos} 张）：{counts}"
                )
            )
        else:
            self.stdout.write(f"保留现有示例案件（共 {total} 件：{counts}）")
