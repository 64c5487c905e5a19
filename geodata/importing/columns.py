"""Columns of an import file and the parsing of their values.

Files come from many tools: English snake_case headers, Chinese headers, and the pinyin
initials of Shapefile fields (DBF names are limited to 10 characters, so WGBM for 网格编码).
Each layer declares its columns with their aliases; headers are matched after folding case,
spaces, underscores and hyphens. Values arrive as text (see sources.cell_text) and are parsed
here; a parser raises RowError with a message in Chinese that names the column.
"""

import datetime as dt
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.db.models import TextChoices


class RowError(ValueError):
    """A value of one row cannot be used; the message is shown to the user as is."""


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    aliases: tuple[str, ...] = ()
    required: bool = False


def fold_header(header: str) -> str:
    return re.sub(r"[\s_\-（）()]+", "", str(header)).lower()


@dataclass
class ColumnMatch:
    source_of: dict[str, str]  # canonical name -> header in the file
    unused: list[str]
    missing: list[Column]
    conflicts: list[str]


# DBF field names hold at most 10 bytes: three Chinese characters in UTF-8, five in GBK.
_DBF_NAME_BYTES = 9


def _truncated_match(folded: str, wanted: dict[str, Column]) -> Column | None:
    """The one column whose alias starts with a header that a DBF truncated, if there is one."""
    if len(folded.encode()) < _DBF_NAME_BYTES:
        return None
    found = {column.name: column for alias, column in wanted.items() if alias.startswith(folded)}
    return next(iter(found.values())) if len(found) == 1 else None


def match_columns(
    headers: Iterable[str], columns: Iterable[Column], *, ignore: Iterable[str] = (), truncated: bool = False
) -> ColumnMatch:
    """Map the file's headers to the layer's columns; `ignore` holds headers consumed elsewhere
    (lon/lat); `truncated`: headers come from a DBF and may be cut short (楼栋编码 -> 楼栋编)."""
    columns = list(columns)
    wanted: dict[str, Column] = {}
    for column in columns:
        for alias in (column.name, column.label, *column.aliases):
            wanted.setdefault(fold_header(alias), column)
    source_of: dict[str, str] = {}
    unused: list[str] = []
    conflicts: list[str] = []
    ignored = {fold_header(h) for h in ignore}
    for header in headers:
        folded = fold_header(header)
        if folded in ignored:
            continue
        found = wanted.get(folded) or (_truncated_match(folded, wanted) if truncated else None)
        if found is None:
            unused.append(str(header))
        elif found.name in source_of:
            conflicts.append(f"列“{source_of[found.name]}”和“{header}”都表示{found.label}，请只保留一列")
        else:
            source_of[found.name] = str(header)
    missing = [c for c in columns if c.required and c.name not in source_of]
    return ColumnMatch(source_of=source_of, unused=unused, missing=missing, conflicts=conflicts)


def describe_columns(columns: Iterable[Column]) -> str:
    return "、".join(f"{c.label}（{c.name}）" for c in columns)


# --- value parsers -------------------------------------------------------------------------


def required(value: str, label: str) -> str:
    if not value:
        raise RowError(f"{label}为空")
    return value


def max_length(value: str, label: str, length: int) -> str:
    if len(value) > length:
        raise RowError(f"{label}超过{length}个字符")
    return value


def digits(value: str, label: str, count: int) -> str:
    if not re.fullmatch(rf"[0-9]{{{count}}}", value):
        raise RowError(f"{label}应为{count}位数字，收到“{value}”")
    return value


def positive_int(value: str, label: str, *, default: int) -> int:
    if not value:
        return default
    text = value[:-2] if value.endswith(".0") else value
    if not text.isdigit() or int(text) < 1:
        raise RowError(f"{label}应为正整数，收到“{value}”")
    return int(text)


_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日")


def date(value: str, label: str) -> dt.date | None:
    if not value:
        return None
    text = value.split("T")[0].split(" ")[0]
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise RowError(f"{label}不是有效日期：“{value}”（请用 2024-01-31 这样的格式）")


@functools.cache
def _choice_codes(choices: type[TextChoices]) -> tuple[dict[str, str], str]:
    """Folded code and label -> code, and the labels for the message; built once per choices
    class (TextChoices.choices builds a new list on every access: 20 % of an import's CPU)."""
    codes: dict[str, str] = {}
    for code, text in choices.choices:
        codes.setdefault(str(code).lower(), str(code))
        codes.setdefault(str(text).lower(), str(code))
    return codes, "、".join(str(text) for _, text in choices.choices)


def choice(value: str, label: str, choices: type[TextChoices], *, extra: Mapping[str, str] | None = None) -> str:
    """A TextChoices value given by its code (residential) or its Chinese label (住宅)."""
    codes, allowed = _choice_codes(choices)
    found = codes.get(value.strip().lower())
    if found is not None:
        return found
    if extra and value.strip() in extra:
        return extra[value.strip()]
    raise RowError(f"{label}“{value}”无法识别，可用：{allowed}")


_LIST_SEPARATORS = re.compile(r"[,，;；、|/\s]+")


def split_list(value: str) -> list[str]:
    return [part for part in _LIST_SEPARATORS.split(value) if part]
