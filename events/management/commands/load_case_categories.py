"""Load the case category catalogue (fixtures/categories.json) — safe to run again."""

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from events.services import category_catalogue_load

DEFAULT_PATH = Path(settings.BASE_DIR) / "fixtures" / "categories.json"


class Command(BaseCommand):
    help = "加载案件类别目录（部件/事件大类小类、立案与结案条件、各环节时限、默认部门）。可重复执行。"

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", default=str(DEFAULT_PATH), help="目录文件（JSON）")
        parser.add_argument("--overwrite", action="store_true", help="用文件中的值覆盖已有类别（默认保留管理员的修改）")

    def handle(self, *args, path: str, overwrite: bool, **options):
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        counts = category_catalogue_load(data=data, overwrite=overwrite)
        self.stdout.write(
            "部门新增 {departments_created}，类别新增 {categories_created}，类别更新 {categories_updated}，"
            "派遣规则新增 {rules_created}".format(**counts)
        )
