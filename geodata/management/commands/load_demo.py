"""manage.py load_demo: the demo district (示例数据) and one demo account per role; idempotent."""

import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from accounts.services import DEMO_PASSWORD, demo_accounts_ensure
from geodata.demo.loader import DemoLoadError, demo_load
from geodata.demo.plan import DemoPlan
from geodata.demo.progress import Progress
from geodata.models import Department, Street

_COUNT_LABELS = {
    "district": "区县",
    "street": "街道/镇",
    "community": "社区/村",
    "grid": "网格",
    "building": "楼栋",
    "household": "住户",
    "person": "实有人口",
    "facility": "城市部件",
}


class Command(BaseCommand):
    help = (
        "加载示例区（重庆市大渡口区真实边界内确定性生成的街道、社区、网格、楼栋、人口和城市部件，均标注“示例”）"
        "及每个角色一个示例账号。可重复执行：同一示例已加载时直接退出。"
    )
    # The system checks import every URL module (maps, statistics...): seconds spent on
    # each `make demo` for nothing this command uses; `migrate` has run them just before.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--scale", type=float, default=1.0, help="楼栋、人口和部件的规模（默认 1.0；测试用 0.02，网格不变）"
        )
        parser.add_argument("--seed", type=int, default=None, help="随机种子（默认取 fixtures/demo_district.json）")
        parser.add_argument("--reload", action="store_true", help="删除已有示例数据后重新加载")

    def handle(self, *args, scale: float, seed: int | None, reload: bool, verbosity: int, **options):
        call_command("load_catalogue", verbosity=verbosity)
        progress = Progress(enabled=verbosity >= 1, stream=sys.stderr)
        try:
            result = demo_load(seed=seed, scale=scale, reload=reload, progress=progress)
        except DemoLoadError as error:
            raise CommandError(str(error)) from error
        for message in result.messages:
            self.stderr.write(self.style.WARNING(message))
        plan = DemoPlan.load()
        accounts = demo_accounts_ensure(
            street=Street.objects.get(code=plan.dense_street),
            department=Department.objects.get(code=plan["handler_department"]),
        )
        if verbosity < 1:
            return
        counts = "，".join(f"{label} {result.counts[name]}" for name, label in _COUNT_LABELS.items())
        if result.status == "unchanged":
            self.stdout.write(f"示例数据已加载，无需重复加载（{counts}）。如需重新生成，请加 --reload。")
        elif result.status == "loaded":
            self.stdout.write(self.style.SUCCESS(f"示例数据已加载，用时 {result.seconds:.1f} 秒：{counts}"))
        else:
            self.stdout.write(f"保留现有示例数据（{counts}）")
        self.stdout.write(f"\n示例账号（密码均为 {DEMO_PASSWORD}）：")
        for account in accounts:
            self.stdout.write(f"  {account.username:<25} {account.role}：{account.scope}")
