"""The admin page for importing and exporting layers of the register (导入与导出).

Mounted before the admin site in gridmgmt/urls.py:
    path("admin/geodata/import/", include("geodata.admin_import")),
Staff only (admin_view); importing a layer needs the "add" permissions of its models,
exporting needs the "view" ones. The import runs in the request (files of a street office
load in seconds; the command line `import_layer` is there for the very large ones); the
problem rows are kept for their uploader to download for a day, under MEDIA_ROOT.
"""

import json
import logging
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from geodata.exporting import EXPORT_LAYERS, SUFFIXES, ExportFormat, layer_export
from geodata.importing.report import MODE_LABELS, ImportMode
from geodata.importing.services import DEFAULT_TOLERANCE_M2, LAYERS, layer_import
from geodata.importing.sources import FORMATS_HELP

logger = logging.getLogger(__name__)

app_name = "geodata_import"

MAX_UPLOAD_BYTES = 200 * 1024 * 1024
ROWS_SHOWN = 500
PROBLEMS_KEPT_SECONDS = 24 * 3600
PROBLEMS_FOLDER = "import-problems"

_MODELS = {
    "regions": ("district", "street", "community"),
    "grids": ("grid",),
    "buildings": ("building",),
    "population": ("household", "person"),
    "facilities": ("facility",),
}


def _may(user, action: str, layer: str) -> bool:
    return all(user.has_perm(f"geodata.{action}_{model}") for model in _MODELS[layer])


class ImportForm(forms.Form):
    layer = forms.ChoiceField(label="导入图层", choices=[(key, importer.label) for key, importer in LAYERS.items()])
    file = forms.FileField(label="数据文件", help_text=f"支持 {FORMATS_HELP}；Shapefile 请把各文件打包为 zip。")
    mode = forms.ChoiceField(
        label="导入方式",
        choices=[(mode.value, MODE_LABELS[mode]) for mode in ImportMode],
        initial=ImportMode.STRICT.value,
        widget=forms.RadioSelect,
        help_text="整体导入：有任何问题则整个文件不导入；部分导入：导入没有问题的行，有问题的行连同原因可下载修改后再导入；"
        "仅检查：只出报告，不写入。",
    )
    srs = forms.CharField(
        label="源坐标系（可选）",
        required=False,
        max_length=200,
        help_text="文件未声明坐标系且自动判断有误时填写 EPSG 代码，"
        "如 4490（CGCS2000 经纬度）、4544（CGCS2000 3度带 105°E）。",
    )
    encoding = forms.ChoiceField(
        label="文字编码",
        required=False,
        choices=[("", "自动识别"), ("UTF-8", "UTF-8"), ("GBK", "GBK / GB18030")],
    )
    source_layer = forms.CharField(
        label="图层/工作表/文件名（可选）", required=False, max_length=200, help_text="文件中有多个图层时填写。"
    )
    tolerance = forms.FloatField(
        label="容差（m²）",
        initial=DEFAULT_TOLERANCE_M2,
        min_value=0,
        max_value=10_000,
        help_text="小于此面积的重叠、缝隙和出界不计为问题。",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f'文件超过 {MAX_UPLOAD_BYTES // 1024 // 1024} MB，请用命令行 make manage ARGS="import_layer ..." 导入'
            )
        return upload


class ExportForm(forms.Form):
    layer = forms.ChoiceField(label="导出图层", choices=list(EXPORT_LAYERS.items()))
    fmt = forms.ChoiceField(
        label="格式",
        choices=[
            (ExportFormat.GEOJSON.value, "GeoJSON"),
            (ExportFormat.GPKG.value, "GeoPackage"),
            (ExportFormat.CSV.value, "CSV"),
        ],
    )
    within = forms.RegexField(
        label="范围（可选）",
        regex=r"^[0-9]{6,15}$",
        required=False,
        help_text="街道、社区或网格编码；留空为全部。",
        error_messages={"invalid": "请填写 6-15 位数字编码"},
    )


def _problems_root() -> Path:
    return Path(settings.MEDIA_ROOT) / PROBLEMS_FOLDER


def _forget_old_problem_files() -> None:
    """Problem files may hold personal data from the upload: they are kept one day only."""
    root = _problems_root()
    if not root.is_dir():
        return
    limit = time.time() - PROBLEMS_KEPT_SECONDS
    for folder in root.iterdir():
        if folder.is_dir() and folder.stat().st_mtime < limit:
            shutil.rmtree(folder, ignore_errors=True)


def _run_import(request: HttpRequest, form: ImportForm):
    layer = form.cleaned_data["layer"]
    upload = form.cleaned_data["file"]
    original = Path(upload.name).name
    token = str(uuid.uuid4())
    problems_folder = _problems_root() / token
    with tempfile.TemporaryDirectory(prefix="gridmgmt-upload-") as folder:
        # Only the suffix of the uploaded name is kept on disk: the name itself is untrusted.
        source = Path(folder) / f"upload{Path(original).suffix.lower()}"
        with source.open("wb") as sink:
            for chunk in upload.chunks():
                sink.write(chunk)
        problems_name = (
            "problems.csv"
            if source.suffix in {".csv", ".txt", ".xlsx"} or layer == "population"
            else "problems.geojson"
        )
        report = layer_import(
            layer=layer,
            path=source,
            mode=ImportMode(form.cleaned_data["mode"]),
            srs=form.cleaned_data["srs"],
            encoding=form.cleaned_data["encoding"],
            source_layer=form.cleaned_data["source_layer"],
            tolerance_m2=form.cleaned_data["tolerance"],
            problems_path=problems_folder / problems_name,
            source_name=original,
        )
    if report.problems_file:
        (problems_folder / "owner.json").write_text(
            json.dumps(
                {"user": request.user.pk, "name": f"{Path(original).stem}.problems{report.problems_file.suffix}"}
            )
        )
    logger.info(
        "admin import by %s: layer=%s file=%s mode=%s loaded=%s problems=%s refused=%s",
        request.user.get_username(),
        layer,
        original,
        report.mode,
        report.rows_loaded,
        report.rows_with_problems,
        report.refused,
    )
    return report, token if report.problems_file else None


def import_export(request: HttpRequest) -> HttpResponse:
    _forget_old_problem_files()
    report = token = None
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            if not _may(request.user, "add", form.cleaned_data["layer"]):
                raise PermissionDenied
            report, token = _run_import(request, form)
    else:
        form = ImportForm()
    context = {
        **admin.site.each_context(request),
        "title": "数据导入与导出",
        "form": form,
        "export_form": ExportForm(),
        "report": report,
        "rows_shown": report.row_problems[:ROWS_SHOWN] if report else [],
        "rows_hidden": max(0, len(report.row_problems) - ROWS_SHOWN) if report else 0,
        "problems_token": token,
    }
    return render(request, "admin/geodata/import_export.html", context, status=200)


def export(request: HttpRequest) -> HttpResponseBase:
    form = ExportForm(request.GET)
    if not form.is_valid():
        return render(
            request,
            "admin/geodata/import_export.html",
            {**admin.site.each_context(request), "title": "数据导入与导出", "form": ImportForm(), "export_form": form},
            status=400,
        )
    layer, fmt = form.cleaned_data["layer"], ExportFormat(form.cleaned_data["fmt"])
    if not _may(request.user, "view", layer):
        raise PermissionDenied
    folder = Path(tempfile.mkdtemp(prefix="gridmgmt-export-"))
    path = folder / f"{layer}{SUFFIXES[fmt]}"
    layer_export(layer=layer, fmt=fmt, path=path, within=form.cleaned_data["within"] or None)
    logger.info("admin export by %s: layer=%s format=%s", request.user.get_username(), layer, fmt)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = FileResponse(path.open("rb"), as_attachment=True, filename=f"{layer}-{stamp}{SUFFIXES[fmt]}")
    # The temporary file is unlinked at once: the open handle keeps it readable until sent.
    shutil.rmtree(folder, ignore_errors=True)
    return response


def problems(request: HttpRequest, token: uuid.UUID) -> HttpResponseBase:
    folder = _problems_root() / str(token)
    try:
        owner = json.loads((folder / "owner.json").read_text())
    except (OSError, ValueError):
        raise Http404("问题行文件不存在或已过期") from None
    if owner["user"] != request.user.pk:
        raise PermissionDenied
    [path] = [p for p in folder.iterdir() if p.name.startswith("problems")]
    return FileResponse(path.open("rb"), as_attachment=True, filename=owner["name"])


urlpatterns = [
    path("", admin.site.admin_view(import_export), name="index"),
    path("export/", admin.site.admin_view(export), name="export"),
    path("problems/<uuid:token>/", admin.site.admin_view(problems), name="problems"),
]
