"""One place that turns domain errors into HTTP answers (settings REST_FRAMEWORK EXCEPTION_HANDLER).

Every refusal of the domain has a typed error; this module maps each to its status code:
400 with field-level messages for bad input, 403 for a role or scope that may not act,
404 for an unknown id, 409 for an illegal transition. Validation errors keep DRF's
shape ``{"field": ["message", ...]}``; the others answer ``{"detail": "message"}``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from events.workflow import ActionNotPermitted, TransitionNotAllowed
from geodata.pii import InvalidPhone
from geodata.selectors import PointOutsideJurisdiction
from patrol.services import PatrolError

# The input field each coded refusal of events.services / events.photos is about.
FIELD_OF_CODE: dict[str, str] = {
    "photo_too_large": "photos",
    "photo_empty": "photos",
    "photo_format": "photos",
    "photo_too_many_pixels": "photos",
    "photo_invalid": "photos",
    "photo_required": "photos",
    "description_required": "description",
    "category_inactive": "category",
    "urgency_invalid": "urgency",
    "source_invalid": "source",
    "comment_required": "comment",
    "extension_invalid": "amount",
    "urge_level_invalid": "level",
    "merge_self": "into",
}


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "当前状态下不能执行该操作"
    default_code = "conflict"


def as_api_exception(exc: Exception) -> Exception:
    """The DRF exception standing for a domain error (other exceptions are returned unchanged)."""
    if isinstance(exc, TransitionNotAllowed):
        return Conflict(detail=str(exc), code="transition_not_allowed")
    if isinstance(exc, ActionNotPermitted):
        return exceptions.PermissionDenied(detail=str(exc), code="action_not_permitted")
    if isinstance(exc, PointOutsideJurisdiction):
        return exceptions.ValidationError({"location": [str(exc)]}, code="outside_jurisdiction")
    if isinstance(exc, InvalidPhone):
        return exceptions.ValidationError({"reporter_phone": [str(exc)]}, code="phone_invalid")
    if isinstance(exc, PatrolError):
        return exceptions.ValidationError({"non_field_errors": [str(exc)]}, code="patrol")
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return exceptions.ValidationError(exc.message_dict)
        field = FIELD_OF_CODE.get(exc.code or "", "non_field_errors")
        return exceptions.ValidationError({field: exc.messages}, code=exc.code)
    if isinstance(exc, ObjectDoesNotExist):
        return exceptions.NotFound()
    return exc


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    return drf_exception_handler(as_api_exception(exc), context)
