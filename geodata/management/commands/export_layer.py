from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from geodata.exporting import EXPORT_LAYERS, SUFFIXES, ExportFormat, layer_export


class Command(BaseCommand):
    help = (
        "Export a layer of the register to GeoJSON, GeoPackage or CSV (format from --format or the file "
        "suffix). ID numbers and phones are exported masked only."
    )

    def add_arguments(self, parser):
        parser.add_argument("layer", choices=sorted(EXPORT_LAYERS))
        parser.add_argument("path", type=Path)
        parser.add_argument("--format", choices=[f.value for f in ExportFormat], dest="fmt")
        parser.add_argument("--within", help="only what lies in this street/community/grid (code prefix)")
        parser.add_argument("--srs", type=int, help="EPSG code of the output CRS (default: 4326)")
        parser.add_argument("--include-ended", action="store_true", help="grids: include those no longer valid")

    def handle(self, *args, layer, path, fmt, within, srs, include_ended, **options):
        if fmt is None:
            by_suffix = {suffix: f for f, suffix in SUFFIXES.items()} | {".json": ExportFormat.GEOJSON}
            if path.suffix.lower() not in by_suffix:
                raise CommandError("无法从文件后缀判断格式，请用 --format 指定 geojson、gpkg 或 csv")
            fmt = by_suffix[path.suffix.lower()]
        if path.exists():
            raise CommandError(f"文件已存在：{path}（为避免覆盖，请换一个文件名）")
        count = layer_export(
            layer=layer, fmt=ExportFormat(fmt), path=path, within=within, srid=srs, include_ended=include_ended
        )
        self.stdout.write(f"已导出{EXPORT_LAYERS[layer]} {count} 条到 {path}")
