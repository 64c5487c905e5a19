"""Photos: decoded by Pillow, size-limited, EXIF time and GPS read, stored under random names."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from events import services
from events.models import Case, CaseHistory, CasePhoto
from events.photos import photo_inspect
from tests.events.factories import POINT_SW, jpeg, local

pytestmark = pytest.mark.django_db


def report(world, photos):
    return services.case_report(
        actor=world.grid_worker,
        source=Case.Source.GRID_WORKER,
        category=world.category,
        location=POINT_SW,
        description="垃圾",
        photos=photos,
        at=local(2026, 11, 16, 9, 0),
    )


def test_exif_time_and_gps_are_read():
    photo = photo_inspect(jpeg(taken="2026:11:16 08:55:00", gps=((29.0, 24.0, 36.0), (106.0, 24.0, 18.0))))
    assert photo.image_format == "JPEG"
    assert (photo.width, photo.height) == (64, 48)
    assert photo.taken_at == local(2026, 11, 16, 8, 55)
    assert photo.taken_location.srid == 4326
    assert photo.taken_location.x == pytest.approx(106.405, abs=1e-9)
    assert photo.taken_location.y == pytest.approx(29.41, abs=1e-9)


def test_photo_without_exif_has_no_time_or_place():
    photo = photo_inspect(jpeg())
    assert (photo.taken_at, photo.taken_location) == (None, None)


def test_png_is_accepted():
    buffer = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buffer, "PNG")
    assert photo_inspect(SimpleUploadedFile("a.jpg", buffer.getvalue())).image_format == "PNG"


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4 not a photo at all",
        b"\xff\xd8\xff\xe0" + b"\x00" * 200,  # a JPEG header with nothing behind it
        b"GIF89a" + b"\x00" * 50,
    ],
    ids=["pdf", "truncated-jpeg", "broken-gif"],
)
def test_files_that_are_not_images_are_refused_whatever_their_name(world, data):
    fake = SimpleUploadedFile("photo.jpg", data, content_type="image/jpeg")
    with pytest.raises(ValidationError) as refused:
        report(world, [fake])
    assert refused.value.code == "photo_invalid"
    assert Case.objects.count() == 0
    assert CaseHistory.objects.count() == 0
    assert CasePhoto.objects.count() == 0


def test_a_truncated_jpeg_body_is_refused():
    whole = jpeg(size=(400, 300)).read()
    with pytest.raises(ValidationError):
        photo_inspect(SimpleUploadedFile("cut.jpg", whole[: len(whole) // 2]))


def test_gif_is_refused_as_a_format():
    buffer = io.BytesIO()
    Image.new("P", (10, 10)).save(buffer, "GIF")
    with pytest.raises(ValidationError) as refused:
        photo_inspect(SimpleUploadedFile("a.gif", buffer.getvalue()))
    assert refused.value.code == "photo_format"


def test_oversize_photo_is_refused(world, settings):
    settings.GRIDMGMT_PHOTO_MAX_BYTES = 2000
    big = jpeg(size=(300, 300))
    assert big.size > 2000
    with pytest.raises(ValidationError) as refused:
        report(world, [big])
    assert refused.value.code == "photo_too_large"
    assert Case.objects.count() == 0


def test_stored_photo_has_a_random_name_and_its_facts(world, media_root):
    case = report(world, [jpeg(name="../../etc/passwd.jpg", taken="2026:11:16 08:55:00")])
    photo = case.photos.get()
    assert photo.image.name.startswith("case_photos/")
    assert photo.image.name.endswith(".jpg")
    assert "passwd" not in photo.image.name
    assert (media_root / photo.image.name).is_file()
    assert (photo.stage, photo.width, photo.height, photo.image_format) == ("before", 64, 48, "JPEG")
    assert photo.taken_at == local(2026, 11, 16, 8, 55)
    assert photo.uploaded_by == world.grid_worker
    assert photo.history == CaseHistory.objects.get(case=case)
    assert len(photo.sha256) == 64
