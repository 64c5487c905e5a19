from django.apps import apps
from django.core.management.base import BaseCommand

from geodata.services import pii_rotate_keys


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted column (ID numbers, residents', households' and callers' phones) "
        "with the newest key of GRIDMGMT_PII_KEYS (docs/security.md)."
    )

    def handle(self, *args, **options):
        counts = pii_rotate_keys()
        done = "，".join(f"{apps.get_model(label)._meta.verbose_name} {count} 条" for label, count in counts.items())
        self.stdout.write(f"已用新密钥重新加密：{done}。")
