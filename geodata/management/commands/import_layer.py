from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from geodata.importing.report import ImportMode
from geodata.importing.services import DEFAULT_TOLERANCE_M2, LAYERS, layer_import


class Command(BaseCommand):
    help = (
        "Import a layer of the register (regions, grids, buildings, population, facilities) from GeoJSON, "
        "zipped Shapefile, GeoPackage, CSV or Excel. By default any problem refuses the whole file; "
        "--partial loads the good rows. Problem rows are written, with reasons, next to the file "
        "(see docs/import-export.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("layer", choices=sorted(LAYERS))
        parser.add_argument("path", type=Path)
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--partial", action="store_true", help="load the good rows, hand back the others")
        mode.add_argument("--check", action="store_true", help="check only, write nothing to the database")
        parser.add_argument("--srs", help="source CRS when the file does not declare it, e.g. 4490 or EPSG:4544")
        parser.add_argument("--encoding", help="text encoding when detection fails, e.g. GBK or UTF-8")
        parser.add_argument("--source-layer", help="layer, sheet or file inside the source to import")
        parser.add_argument(
            "--tolerance", type=float, default=DEFAULT_TOLERANCE_M2, help="m² of overlap/gap/overhang ignored"
        )
        parser.add_argument("--problems", type=Path, help="file for the problem rows (.csv, .geojson or .gpkg)")

    def handle(self, *args, layer, path, partial, check, srs, encoding, source_layer, tolerance, problems, **options):
        if not path.is_file():
            raise CommandError(f"文件不存在：{path}")
        mode = ImportMode.PARTIAL if partial else ImportMode.CHECK if check else ImportMode.STRICT
        report = layer_import(
            layer=layer,
            path=path,
            mode=mode,
            srs=srs,
            encoding=encoding,
            source_layer=source_layer,
            tolerance_m2=tolerance,
            problems_path=problems,
        )
        for line in report.lines():
            self.stdout.write(line)
        if report.refused:
            raise CommandError(report.summary())
        if mode is ImportMode.CHECK and not report.ok:
            raise CommandError(report.summary())
