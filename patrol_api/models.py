"""What the API keeps beside the case: third-party API keys and the receipt of each report.

Cases themselves belong to events; a receipt only records how a report reached us
(device time and accuracy, the Open311 key, token and media URL) so that nothing the
client told us is lost and the case row stays as events defines it.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ApiKey(models.Model):
    """An Open311 key issued by an admin to a third-party application (第三方接入密钥).

    Only a SHA-256 digest of the key is stored; the key itself is shown once, when issued.
    """

    name = models.CharField("接入方名称", max_length=100)
    prefix = models.CharField("密钥前缀", max_length=8, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    contact = models.CharField("联系人/联系方式", max_length=200, blank=True)
    returns_token = models.BooleanField(
        "返回 token（批处理模式）",
        default=False,
        help_text="开启后，提交请求只返回 token，接入方再用 tokens/{token} 查询案件编号。",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="签发人",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField("签发时间", default=timezone.now)
    revoked_at = models.DateTimeField("吊销时间", null=True, blank=True)

    class Meta:
        verbose_name = "Open311 接入密钥"
        verbose_name_plural = "Open311 接入密钥"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(name="apikey_digest_is_sha256", condition=Q(digest__regex=r"^[0-9a-f]{64}$")),
        ]

    def __str__(self) -> str:
        return f"{self.name}（{self.prefix}…）"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class CaseReceipt(models.Model):
    """How one case reached us through the API, written in the same transaction as the case."""

    class Channel(models.TextChoices):
        API = "api", "接口/手机"
        OPEN311 = "open311", "Open311"

    case = models.OneToOneField(
        "events.Case", verbose_name="案件", primary_key=True, on_delete=models.PROTECT, related_name="api_receipt"
    )
    channel = models.CharField("渠道", max_length=8, choices=Channel.choices)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="提交人",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # The client's idempotency key as the client sent it (the case's client_key is namespaced).
    idempotency_key = models.CharField("幂等键", max_length=64, blank=True)
    device_time = models.DateTimeField("设备时间", null=True, blank=True)
    accuracy_m = models.FloatField("定位精度(米)", null=True, blank=True)
    received_at = models.DateTimeField("服务器接收时间", default=timezone.now)
    api_key = models.ForeignKey(
        ApiKey, verbose_name="接入密钥", null=True, blank=True, on_delete=models.PROTECT, related_name="receipts"
    )
    token = models.CharField("Open311 token", max_length=32, null=True, blank=True, unique=True)
    media_url = models.URLField("媒体链接", max_length=500, blank=True)
    attributes = models.JSONField("附加属性", default=dict, blank=True)

    class Meta:
        verbose_name = "上报回执"
        verbose_name_plural = "上报回执"
        ordering = ["-received_at"]
        constraints = [
            models.CheckConstraint(
                name="casereceipt_accuracy_not_negative", condition=Q(accuracy_m__isnull=True) | Q(accuracy_m__gte=0)
            ),
            models.CheckConstraint(
                name="casereceipt_open311_has_key",
                condition=~Q(channel="open311") | Q(api_key__isnull=False, token__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case_id} {self.get_channel_display()}"
