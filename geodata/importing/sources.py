"""Reading an import file into a table of text values and geometries in the storage SRID.

Formats: GeoJSON, Shapefile (zipped, or .shp with its siblings), GeoPackage, CSV and Excel
(.xlsx) with longitude/latitude or WKT columns. Encodings: UTF-8 (with or without BOM),
GBK/GB18030 (what Chinese Windows tools write), UTF-16 with BOM. A Shapefile's encoding comes
from its .cpg or DBF language byte when those are right, else it is detected from the bytes:
GDAL's fallback (ISO-8859-1) would silently turn every Chinese name into mojibake.

Every attribute value is turned into stripped text here, so that layers parse one kind of
value whatever the file format typed it as.
"""

import codecs
import csv
import datetime as dt
import io
import math
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from warnings import catch_warnings, filterwarnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from django.conf import settings
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from geodata.importing.columns import fold_header
from geodata.importing.crs import CrsError, decide_crs

# A zip is refused when it would unpack to more than this (zip bombs), or holds too many files.
MAX_UNZIPPED_BYTES = 2 * 1024**3
MAX_ZIP_MEMBERS = 200

FORMATS_HELP = "GeoJSON（.geojson）、Shapefile（.zip 压缩包或 .shp）、GeoPackage（.gpkg）、CSV（.csv）或 Excel（.xlsx）"

LON_ALIASES = ("lon", "lng", "long", "longitude", "经度", "x", "x坐标", "东坐标")
LAT_ALIASES = ("lat", "latitude", "纬度", "y", "y坐标", "北坐标")
WKT_ALIASES = ("wkt", "geometry", "geom", "几何", "空间信息")


class SourceRefused(ValueError):
    """The file as a whole cannot be read; the message says why, in Chinese."""


@dataclass
class SourceTable:
    name: str
    format: str
    encoding: str
    crs: str
    frame: pd.DataFrame  # attribute columns as text, index 0..n-1
    geometry: gpd.GeoSeries | None  # in settings.STORAGE_SRID, aligned with frame; None if the file has none
    geometry_problems: dict[int, str]  # row index -> why its coordinates could not be read
    row_numbers: list[int]  # the number the user sees for each row (spreadsheet line, or feature number)
    tabular: bool  # CSV/Excel: problem rows are written back as CSV
    truncated_headers: bool = False  # Shapefile: DBF field names are cut at 10 bytes
    coordinate_columns: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class ReadOptions:
    layer: str  # the target layer key, used to pick a layer or sheet by name
    layer_label: str
    needs_geometry: bool
    srs: str | None = None
    encoding: str | None = None
    source_layer: str | None = None


def read_source(path: Path, *, options: ReadOptions, name: str | None = None) -> SourceTable:
    """Read `path` (named `name` for the report); raise SourceRefused if it cannot be used at all."""
    name = name or path.name
    suffix = Path(name).suffix.lower()
    if suffix == ".zip":
        return _read_zip(path, name=name, options=options)
    if suffix in {".geojson", ".json"}:
        return _read_geojson(path, name=name, options=options)
    if suffix == ".shp":
        return _read_shapefile(path, name=name, options=options)
    if suffix == ".gpkg":
        return _read_geopackage(path, name=name, options=options)
    if suffix in {".csv", ".txt"}:
        return _read_csv(path, name=name, options=options)
    if suffix == ".xlsx":
        return _read_excel(path, name=name, options=options)
    raise SourceRefused(f"不支持的文件格式“{suffix or name}”，请使用 {FORMATS_HELP}")


# --- encodings -------------------------------------------------------------------------------

UTF8 = "UTF-8"
GB18030 = "GB18030"  # a superset of GBK and GB2312: decodes every file those tools write
_ENCODING_NAMES = {"utf8": UTF8, "utf-8": UTF8, "utf-8-sig": UTF8, "gbk": GB18030, "gb2312": GB18030, "cp936": GB18030}


def _python_codec(encoding: str) -> str:
    return _ENCODING_NAMES.get(encoding.strip().lower(), encoding.strip())


def _describe_encoding(encoding: str) -> str:
    return "GBK/GB18030" if encoding == GB18030 else encoding


def _fits(texts: list[bytes], encoding: str) -> bool:
    """True if every text decodes; a multi-byte character cut at the end (DBF fields and
    names are truncated to fixed byte widths) does not count against the encoding."""
    try:
        for text in texts:
            codecs.getincrementaldecoder(encoding)().decode(text, final=False)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def detect_encoding(texts: list[bytes], *, declared: str | None = None) -> str:
    """The encoding all `texts` decode under: the declared one if it fits, else UTF-8, else GB18030.

    UTF-8 is tried before GB18030 because GB18030 accepts almost any byte sequence (UTF-8
    Chinese would decode as wrong characters without error), while GBK text is practically
    never valid UTF-8.
    """
    candidates = ([_python_codec(declared)] if declared else []) + [UTF8, GB18030]
    for encoding in candidates:
        if _fits(texts, encoding):
            return encoding
    raise SourceRefused("无法识别文件编码（既不是 UTF-8 也不是 GBK），请另存为 UTF-8 后重试")


def _decode_text(data: bytes, *, declared: str | None) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode(UTF8, errors="strict"), UTF8
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "UTF-16"
    if declared:
        try:
            return data.decode(_python_codec(declared)), _python_codec(declared)
        except (UnicodeDecodeError, LookupError):
            raise SourceRefused(f"文件不能按指定的编码 {declared} 读取，请检查编码设置") from None
    encoding = detect_encoding([data])
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError:  # a truncated last character: tolerated by detection, not here
        raise SourceRefused("文件末尾有不完整的字符，文件可能被截断，请检查后重试") from None


# --- cell values -------------------------------------------------------------------------------


def cell_text(value: object) -> str:
    """One attribute value as the user typed it: integral floats lose their ".0", dates are ISO."""
    if value is None or value is pd.NaT:
        return ""
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return ""
        if number.is_integer() and abs(number) < 1e15:
            return str(int(number))
        return repr(number)
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode(UTF8, errors="replace").strip()
    return str(value).strip()


def _text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    text = pd.DataFrame({str(c): [cell_text(v) for v in frame[c].tolist()] for c in frame.columns})
    return text.reset_index(drop=True)


# --- geometry --------------------------------------------------------------------------------


def _reproject(
    geometry: gpd.GeoSeries, *, declared: CRS | None, options: ReadOptions, warnings: list[str]
) -> tuple[gpd.GeoSeries, str]:
    present = geometry[~(geometry.isna() | geometry.is_empty)]
    samples = [b for b in shapely.bounds(present.values).tolist() if all(math.isfinite(v) for v in b)]
    try:
        decision = decide_crs(declared=declared, requested=options.srs, samples=samples)
    except CrsError as error:
        raise SourceRefused(str(error)) from None
    warnings.extend(decision.warnings)
    raw = geometry.set_crs(None, allow_override=True)
    if decision.swap_axes:
        raw = gpd.GeoSeries(shapely.transform(raw.values, lambda xy: xy[:, ::-1]), index=raw.index)
    # Z and M values carry nothing we store; dropping them keeps validity checks two-dimensional.
    raw = gpd.GeoSeries(shapely.force_2d(raw.values), index=raw.index, crs=decision.crs)
    return raw.to_crs(settings.STORAGE_SRID), decision.description


def _finish_spatial(
    frame: gpd.GeoDataFrame,
    problems: dict[int, str],
    *,
    name: str,
    fmt: str,
    encoding: str,
    options: ReadOptions,
    warnings: list[str],
) -> SourceTable:
    if len(frame) == 0:
        raise SourceRefused("文件中没有数据")
    frame = frame.reset_index(drop=True)
    geometry, crs = _reproject(frame.geometry, declared=frame.crs, options=options, warnings=warnings)
    attributes = _text_frame(pd.DataFrame(frame.drop(columns=frame.geometry.name)))
    return SourceTable(
        name=name,
        format=fmt,
        encoding=_describe_encoding(encoding),
        crs=crs,
        frame=attributes,
        geometry=geometry,
        geometry_problems=problems,
        row_numbers=list(range(1, len(frame) + 1)),
        tabular=False,
        warnings=warnings,
    )


_WKB_REASONS = {
    "do not form a closed linestring": "环未闭合（首尾坐标不同）",
    "Invalid number of points in LinearRing": "环的顶点过少（至少 4 个，首尾相同）",
    "point array must contain 0 or >1 elements": "线的顶点过少",
}


def _parse_wkb(wkb: bytes | None) -> tuple[BaseGeometry | None, str | None]:
    """One feature's geometry, or why it cannot be built. GDAL passes on geometries that GEOS
    refuses to construct (an unclosed ring); they are a problem of their row, not of the file."""
    if wkb is None:
        return None, None
    try:
        return shapely.from_wkb(wkb), None
    except shapely.errors.GEOSException as error:
        reason = next((text for key, text in _WKB_REASONS.items() if key in str(error)), str(error))
        return None, f"几何无法解析：{reason}"


def _read_with_ogr(source: Path | io.BytesIO, **kwargs) -> tuple[gpd.GeoDataFrame, dict[int, str]]:
    try:
        with catch_warnings():
            # GDAL warns about each unclosed ring it accepts; _parse_wkb reports them per row.
            filterwarnings("ignore", "Non closed ring detected", RuntimeWarning)
            meta, _, wkbs, fields = pyogrio.raw.read(source, **kwargs)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as error:
        raise SourceRefused(f"无法读取文件：{error}") from None
    parsed = [_parse_wkb(wkb) for wkb in (wkbs if wkbs is not None else [])]
    problems = {index: problem for index, (_, problem) in enumerate(parsed) if problem}
    frame = pd.DataFrame({str(name): values for name, values in zip(meta["fields"], fields, strict=True)})
    geometry = gpd.GeoSeries([shape for shape, _ in parsed], index=frame.index if len(frame) else None)
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=meta["crs"]), problems


def _pick_layer(layers: list[str], *, options: ReadOptions, what: str) -> str:
    if options.source_layer:
        if options.source_layer not in layers:
            raise SourceRefused(f"文件中没有名为“{options.source_layer}”的{what}，现有：{'、'.join(layers)}")
        return options.source_layer
    if len(layers) == 1:
        return layers[0]
    for layer in layers:
        if fold_header(PurePosixPath(layer).stem) in {fold_header(options.layer), fold_header(options.layer_label)}:
            return layer
    raise SourceRefused(f"文件中有多个{what}（{'、'.join(layers)}），请指定要导入哪一个")


def _read_geojson(path: Path, *, name: str, options: ReadOptions) -> SourceTable:
    data = path.read_bytes()
    text, encoding = _decode_text(data, declared=options.encoding)
    warnings = []
    if encoding != UTF8:
        warnings.append(f"文件编码为 {_describe_encoding(encoding)}（GeoJSON 应为 UTF-8），已自动转换")
    frame, problems = _read_with_ogr(io.BytesIO(text.encode(UTF8)))
    return _finish_spatial(
        frame, problems, name=name, fmt="GeoJSON", encoding=encoding, options=options, warnings=warnings
    )


def _read_geopackage(path: Path, *, name: str, options: ReadOptions) -> SourceTable:
    try:
        layers = [str(row[0]) for row in pyogrio.list_layers(path)]
    except pyogrio.errors.DataSourceError as error:
        raise SourceRefused(f"无法读取 GeoPackage：{error}") from None
    layer = _pick_layer(layers, options=options, what="图层")
    frame, problems = _read_with_ogr(path, layer=layer)
    return _finish_spatial(frame, problems, name=name, fmt="GeoPackage", encoding=UTF8, options=options, warnings=[])


def _dbf_texts(dbf: bytes) -> list[bytes]:
    """The field names and the character-field values of a DBF, as raw bytes."""
    if len(dbf) < 32:
        raise SourceRefused("Shapefile 的 .dbf 文件已损坏")
    count = int.from_bytes(dbf[4:8], "little")
    header_length = int.from_bytes(dbf[8:10], "little")
    record_length = int.from_bytes(dbf[10:12], "little")
    fields = []
    for offset in range(32, header_length - 1, 32):
        descriptor = dbf[offset : offset + 32]
        if descriptor[:1] == b"\r" or len(descriptor) < 32:
            break
        fields.append((descriptor[:11].split(b"\0")[0], descriptor[11:12], descriptor[16]))
    texts = [name for name, _, _ in fields]
    for record in range(count):
        position = header_length + record * record_length + 1  # after the deletion flag
        for _, kind, length in fields:
            if kind == b"C":
                value = dbf[position : position + length].rstrip(b" \0")
                if value and max(value) >= 0x80:
                    texts.append(value)
            position += length
    return texts


def _shapefile_encoding(shp: Path, *, options: ReadOptions) -> tuple[str, list[str]]:
    dbf_path = next((p for p in shp.parent.glob(shp.stem + ".*") if p.suffix.lower() == ".dbf"), None)
    if dbf_path is None:
        raise SourceRefused(f"Shapefile“{shp.stem}”缺少 .dbf 属性表文件")
    if options.encoding:
        return _python_codec(options.encoding), []
    dbf = dbf_path.read_bytes()
    cpg = next((p for p in shp.parent.glob(shp.stem + ".*") if p.suffix.lower() == ".cpg"), None)
    declared = cpg.read_text(errors="replace").strip() if cpg else None
    if declared is None and len(dbf) > 29 and dbf[29] in (0x4D, 0x7A):  # DBF language driver: code page 936
        declared = GB18030
    encoding = detect_encoding(_dbf_texts(dbf), declared=declared)
    warnings = []
    if declared and encoding != _python_codec(declared):
        warnings.append(f"Shapefile 声明的编码 {declared} 与内容不符，已按 {_describe_encoding(encoding)} 读取")
    return encoding, warnings


def _whole_characters(name: bytes, encoding: str) -> bytes:
    """A DBF field name without the partial character a 10-byte truncation may leave at its end."""
    return codecs.getincrementaldecoder(encoding)().decode(name, final=False).encode(encoding)


def _repaired_dbf(path: Path, encoding: str, folder: Path) -> Path | None:
    """If field names end in a cut character (GDAL itself writes them so for UTF-8 Chinese
    names, and pyogrio cannot read them back), copy the Shapefile to `folder` with whole
    characters only and return the copy's .shp; else None."""
    dbf_path = next(p for p in path.parent.glob(path.stem + ".*") if p.suffix.lower() == ".dbf")
    dbf = bytearray(dbf_path.read_bytes())
    header_length = int.from_bytes(dbf[8:10], "little")
    changed = False
    for offset in range(32, header_length - 1, 32):
        if dbf[offset] == 0x0D:
            break
        name = bytes(dbf[offset : offset + 11]).split(b"\0")[0]
        whole = _whole_characters(name, encoding)
        if whole != name:
            dbf[offset : offset + 11] = whole.ljust(11, b"\0")
            changed = True
    if not changed:
        return None
    for sibling in path.parent.glob(path.stem + ".*"):
        target = folder / f"layer{sibling.suffix.lower()}"
        if sibling == dbf_path:
            target.write_bytes(bytes(dbf))
        else:
            target.symlink_to(sibling.resolve())
    return folder / "layer.shp"


def _read_shapefile(path: Path, *, name: str, options: ReadOptions) -> SourceTable:
    siblings = {p.suffix.lower() for p in path.parent.glob(path.stem + ".*")}
    if ".shx" not in siblings:
        raise SourceRefused(f"Shapefile“{path.stem}”缺少 .shx 索引文件，请把 .shp/.shx/.dbf/.prj 一起打包上传")
    encoding, warnings = _shapefile_encoding(path, options=options)
    with tempfile.TemporaryDirectory(prefix="gridmgmt-shp-") as folder:
        repaired = _repaired_dbf(path, encoding, Path(folder))
        frame, problems = _read_with_ogr(repaired or path, encoding=encoding)
    if ".prj" not in siblings:
        warnings.append(f"Shapefile“{path.stem}”没有 .prj 坐标系文件")
    table = _finish_spatial(
        frame, problems, name=name, fmt="Shapefile", encoding=encoding, options=options, warnings=warnings
    )
    table.truncated_headers = True
    return table


def _safe_extract(archive: zipfile.ZipFile, target: Path) -> list[Path]:
    members = [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
    if len(members) > MAX_ZIP_MEMBERS or sum(m.file_size for m in members) > MAX_UNZIPPED_BYTES:
        raise SourceRefused("压缩包过大或文件过多，请只打包需要导入的图层")
    extracted = []
    for member in members:
        parts = PurePosixPath(member.filename.replace("\\", "/")).parts
        if member.filename.startswith("/") or ".." in parts:
            raise SourceRefused(f"压缩包中的路径不安全：{member.filename}")
        destination = target.joinpath(*parts)
        destination.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(member) as source, destination.open("wb") as sink:
            while chunk := source.read(1 << 20):
                sink.write(chunk)
        extracted.append(destination)
    return extracted


def _read_zip(path: Path, *, name: str, options: ReadOptions) -> SourceTable:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise SourceRefused("压缩包已损坏或不是 zip 格式") from None
    with archive, tempfile.TemporaryDirectory(prefix="gridmgmt-import-") as folder:
        files = _safe_extract(archive, Path(folder))
        readable = {".shp", ".gpkg", ".geojson", ".json", ".csv", ".xlsx"}
        candidates = sorted((p for p in files if p.suffix.lower() in readable), key=lambda p: str(p))
        if not candidates:
            raise SourceRefused(f"压缩包中没有可导入的文件（需要 {FORMATS_HELP}）")
        by_name = {str(p.relative_to(folder)): p for p in candidates}
        chosen = by_name[_pick_layer(list(by_name), options=options, what="数据文件")]
        table = read_source(chosen, options=options, name=f"{name}/{chosen.relative_to(folder)}")
        table.format = f"{table.format}（zip）"
        return table


# --- tables with coordinate columns ------------------------------------------------------------------


def _find_column(headers: list[str], aliases: tuple[str, ...]) -> str | None:
    folded = {fold_header(h): h for h in headers}
    return next((folded[a] for a in map(fold_header, aliases) if a in folded), None)


def _number(text: str) -> float:
    value = float(text.replace("，", ".").replace(",", "."))
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _geometry_from_columns(frame: pd.DataFrame, options: ReadOptions) -> tuple[list, dict[int, str], list[str]]:
    headers = list(frame.columns)
    lon, lat = _find_column(headers, LON_ALIASES), _find_column(headers, LAT_ALIASES)
    wkt = _find_column(headers, WKT_ALIASES)
    if lon and lat:
        geometries, problems = [], {}
        for index, (x, y) in enumerate(zip(frame[lon], frame[lat], strict=True)):
            try:
                geometries.append(shapely.Point(_number(x), _number(y)))
            except ValueError:
                geometries.append(None)
                problems[index] = f"坐标无效：{lon}=“{x}”，{lat}=“{y}”" if (x or y) else "缺少坐标"
        return geometries, problems, [lon, lat]
    if wkt:
        geometries, problems = [], {}
        for index, text in enumerate(frame[wkt]):
            if not text:
                geometries.append(None)
                problems[index] = "缺少几何（WKT 为空）"
                continue
            try:
                geometries.append(shapely.from_wkt(text))
            except shapely.errors.GEOSException:
                geometries.append(None)
                problems[index] = "WKT 几何无法解析"
        return geometries, problems, [wkt]
    raise SourceRefused("表格中没有坐标列：需要 经度/纬度（lon/lat，或投影坐标 x/y）两列，或一列 WKT 几何")


def _tabular(frame: pd.DataFrame, *, name: str, fmt: str, encoding: str, options: ReadOptions) -> SourceTable:
    frame = frame.fillna("").astype(str).map(str.strip)
    frame.columns = [str(c).strip() for c in frame.columns]
    # Spreadsheet line numbers: the header is line 1. Blank lines are dropped after numbering
    # so that the numbers still match what the user sees in Excel or WPS.
    keep = (frame != "").any(axis=1).to_numpy()
    row_numbers = [i + 2 for i in np.flatnonzero(keep).tolist()]
    frame = frame[keep].reset_index(drop=True)
    if len(frame) == 0:
        raise SourceRefused("文件中没有数据行")
    warnings: list[str] = []
    geometry: gpd.GeoSeries | None = None
    problems: dict[int, str] = {}
    coordinate_columns: list[str] = []
    crs = ""
    if options.needs_geometry:
        shapes, problems, coordinate_columns = _geometry_from_columns(frame, options)
        raw = gpd.GeoSeries(shapes, index=frame.index)
        geometry, crs = _reproject(raw, declared=None, options=options, warnings=warnings)
    return SourceTable(
        name=name,
        format=fmt,
        encoding=_describe_encoding(encoding),
        crs=crs,
        frame=frame,
        geometry=geometry,
        geometry_problems=problems,
        row_numbers=row_numbers,
        tabular=True,
        coordinate_columns=coordinate_columns,
        warnings=warnings,
    )


def _read_csv(path: Path, *, name: str, options: ReadOptions) -> SourceTable:
    text, encoding = _decode_text(path.read_bytes(), declared=options.encoding)
    try:
        delimiter = csv.Sniffer().sniff(text[:8192].split("\n", 1)[0], delimiters=",\t;|").delimiter
    except csv.Error:
        delimiter = ","
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise SourceRefused(f"CSV 文件格式错误：{error}") from None
    return _tabular(frame, name=name, fmt="CSV", encoding=encoding, options=options)


def _read_excel(path: Path, *, name: str, options: ReadOptions) -> SourceTable:
    try:
        sheets = pd.read_excel(path, sheet_name=None, dtype=object, header=0)
    except (ValueError, zipfile.BadZipFile, OSError) as error:
        raise SourceRefused(f"无法读取 Excel 文件：{error}") from None
    sheet = _pick_layer(list(sheets), options=options, what="工作表")
    frame = sheets[sheet].map(cell_text)
    return _tabular(frame, name=name, fmt="Excel", encoding="", options=options)


_SCIENTIFIC = re.compile(r"^[0-9.]+[eE][+-]?[0-9]+$")


def looks_like_spreadsheet_number(value: str) -> bool:
    """True when a long code was stored as a number by a spreadsheet (5.00104E+17)."""
    return bool(_SCIENTIFIC.match(value))
