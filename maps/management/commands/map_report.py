"""Write the map report (HTML, and a PNG for printing) of a street over a period.

manage.py map_report --street 500104001 --first-day 2026-10-01 --last-day 2026-10-31 --out reports/ --png
"""

import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Role, User
from geodata.models import Street
from maps.report import map_report_html, map_report_png


class Command(BaseCommand):
    help = "生成街道地图报告（HTML，可选 PNG 打印版）"

    def add_arguments(self, parser):
        parser.add_argument("--street", required=True, help="街道代码（9位）")
        parser.add_argument("--first-day", required=True, type=dt.date.fromisoformat)
        parser.add_argument("--last-day", required=True, type=dt.date.fromisoformat)
        parser.add_argument("--normalise", choices=["area", "population"], default="area")
        parser.add_argument("--out", default=".", help="输出目录")
        parser.add_argument("--png", action="store_true", help="同时用无界面 Chromium 渲染 PNG")

    def handle(self, *args, **options):
        street = Street.objects.filter(code=options["street"]).first()
        if street is None:
            raise CommandError(f"街道 {options['street']} 不存在")
        if options["first_day"] > options["last_day"]:
            raise CommandError("开始日期不能晚于结束日期")
        # The command runs with the whole jurisdiction's view of cases, as a planner would.
        reader = User(username="map_report", role=Role.PLANNER)
        html_text = map_report_html(
            user=reader,
            street=street,
            first_day=options["first_day"],
            last_day=options["last_day"],
            normalise=options["normalise"],
        )
        out = Path(options["out"])
        out.mkdir(parents=True, exist_ok=True)
        stem = f"map-report-{street.code}-{options['first_day']:%Y%m%d}-{options['last_day']:%Y%m%d}"
        html_path = out / f"{stem}.html"
        html_path.write_text(html_text, encoding="utf-8")
        self.stdout.write(str(html_path))
        if options["png"]:
            self.stdout.write(str(map_report_png(html_text=html_text, path=out / f"{stem}.png")))
