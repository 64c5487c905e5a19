"""manage.py load_catalogue: load the facility category catalogue (部件 大类/小类); idempotent."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from geodata.catalogue import CATALOGUE_PATH, CatalogueError, catalogue_entries, facility_catalogue_load


class Command(BaseCommand):
    help = "加载城市部件类别目录（大类/小类，fixtures/facility_types.json）；可重复执行，只新增缺少的类别。"
    requires_system_checks: list[str] = []  # like load_demo: nothing here depends on URLs or admin

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, default=CATALOGUE_PATH, help="目录文件（JSON），默认为项目自带目录")
        parser.add_argument("--overwrite", action="store_true", help="按目录文件更新已有类别的名称")

    def handle(self, *args, file: Path, overwrite: bool, verbosity: int, **options):
        try:
            entries = catalogue_entries(path=file)
        except CatalogueError as error:
            raise CommandError(str(error)) from error
        counts = facility_catalogue_load(entries=entries, overwrite=overwrite)
        if verbosity >= 1:
            self.stdout.write(
                f"部件类别目录：新增 {counts['created']} 个，更新 {counts['updated']} 个，"
                f"未变 {counts['unchanged']} 个（共 {len(entries)} 个小类）"
            )
