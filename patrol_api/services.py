"""Writes of the API: exactly-once reports from clients, public reports from Open311, API keys.

Cases are created by events.services (case_report, case_self_handle); this module adds what
only the API knows: the client's idempotency key, the device's time and accuracy, and the
Open311 key, token and media URL, written in the same transaction as the case.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Any

from django.contrib.gis.geos import Point
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from events import services as case_services
from events.models import Case, Category, Urgency
from events.services import PhotoFile
from geodata.models import Facility
from patrol_api.models import ApiKey, CaseReceipt
from patrol_api.selectors import api_key_digest, client_key_of


def case_report_from_client(
    *,
    actor: User,
    idempotency_key: str | None,
    category: Category,
    location: Point,
    description: str,
    source: str = Case.Source.GRID_WORKER,
    address: str = "",
    urgency: str = Urgency.NORMAL,
    facility: Facility | None = None,
    photos: Sequence[PhotoFile] = (),
    after_photos: Sequence[PhotoFile] = (),
    self_handled: bool = False,
    reporter_name: str = "",
    reporter_phone: str = "",
    device_time: dt.datetime | None = None,
    accuracy_m: float | None = None,
) -> tuple[Case, bool]:
    """Report a case (上报/登记, or 自处理 when `self_handled`) once per idempotency key.

    Returns (case, created). A key seen before returns the case it created and changes
    nothing, whatever else the retried request carries.

    The caller has looked the key up once already (the API answers a replay before it
    validates the body); this function does not look again. Two copies of one upload
    racing each other both get this far: the unique constraint on the case's client_key
    makes the second wait for the first and fail when the first commits; its transaction
    is rolled back whole (no case number, history, photo or receipt is left) and it
    answers with the first one's case.
    """
    client_key = client_key_of(user_id=actor.pk, idempotency_key=idempotency_key) if idempotency_key else None
    try:
        with transaction.atomic():
            if self_handled:
                case = case_services.case_self_handle(
                    actor=actor,
                    category=category,
                    location=location,
                    description=description,
                    before_photos=photos,
                    after_photos=after_photos,
                    address=address,
                    facility=facility,
                    client_key=client_key,
                    replay=False,
                )
            else:
                case = case_services.case_report(
                    actor=actor,
                    source=source,
                    category=category,
                    location=location,
                    description=description,
                    address=address,
                    urgency=urgency,
                    facility=facility,
                    photos=photos,
                    reporter_name=reporter_name,
                    reporter_phone=reporter_phone,
                    client_key=client_key,
                    replay=False,
                )
            CaseReceipt.objects.create(
                case=case,
                channel=CaseReceipt.Channel.API,
                submitted_by=actor,
                idempotency_key=idempotency_key or "",
                device_time=device_time,
                accuracy_m=accuracy_m,
            )
    except IntegrityError:
        existing = Case.objects.filter(client_key=client_key).first() if client_key else None
        if existing is None:
            raise
        return existing, False
    return case, True


def open311_request_create(
    *,
    api_key: ApiKey,
    category: Category,
    location: Point,
    description: str,
    address: str = "",
    facility: Facility | None = None,
    reporter_name: str = "",
    reporter_phone: str = "",
    media_url: str = "",
    attributes: dict[str, Any] | None = None,
) -> CaseReceipt:
    """A public report through Open311: a case from the public, waiting for 核实 by its grid's worker."""
    with transaction.atomic():
        case = case_services.case_report(
            actor=None,
            source=Case.Source.PUBLIC,
            category=category,
            location=location,
            description=description,
            address=address,
            facility=facility,
            reporter_name=reporter_name,
            reporter_phone=reporter_phone,
        )
        return CaseReceipt.objects.create(
            case=case,
            channel=CaseReceipt.Channel.OPEN311,
            api_key=api_key,
            token=secrets.token_hex(16),
            media_url=media_url,
            attributes=attributes or {},
        )


def api_key_issue(
    *, name: str, contact: str = "", returns_token: bool = False, created_by: User | None = None
) -> tuple[ApiKey, str]:
    """Issue an Open311 key; the returned key in clear is shown once and never stored."""
    raw_key = secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        name=name,
        contact=contact,
        returns_token=returns_token,
        created_by=created_by,
        prefix=raw_key[:8],
        digest=api_key_digest(raw_key),
    )
    return api_key, raw_key


def api_key_revoke(*, api_key: ApiKey, at: dt.datetime | None = None) -> ApiKey:
    """Revoke a key; revoking a revoked key keeps its first revocation time."""
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=at or timezone.now())
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key
