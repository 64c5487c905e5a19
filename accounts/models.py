"""Users, their role and the part of the jurisdiction they work in (their scope)."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q


class Role(models.TextChoices):
    GRID_WORKER = "grid_worker", "网格员"
    OPERATOR = "operator", "受理员"
    SHIFT_LEADER = "shift_leader", "值班长"
    DISPATCHER = "dispatcher", "派遣员"
    DEPARTMENT_HANDLER = "department_handler", "部门处置人员"
    LEADER = "leader", "领导"
    PLANNER = "planner", "规划人员"
    ADMIN = "admin", "系统管理员"


class User(AbstractUser):
    role = models.CharField("角色", max_length=32, choices=Role.choices, default=Role.GRID_WORKER)
    phone = models.CharField("手机", max_length=20, blank=True)
    # Scope: a street or community for command-center staff and leaders, a department for
    # department handlers; grid workers are scoped by their grid assignments (geodata).
    street = models.ForeignKey(
        "geodata.Street", verbose_name="所属街道", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    community = models.ForeignKey(
        "geodata.Community", verbose_name="所属社区", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    department = models.ForeignKey(
        "geodata.Department",
        verbose_name="所属部门",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="members",
    )

    class Meta:
        verbose_name = "用户"
        verbose_name_plural = "用户"
        constraints = [
            models.CheckConstraint(
                name="user_department_handler_has_department",
                condition=~Q(role="department_handler") | Q(department__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        full = self.get_full_name()
        return f"{full or self.username}（{self.get_role_display()}）"
