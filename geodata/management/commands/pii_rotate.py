from django.core.management.base import BaseCommand

from geodata.services import pii_rotate_keys


class Command(BaseCommand):
    help = "Re-encrypt ID numbers and phones with the newest key of GRIDMGMT_PII_KEYS (docs/configuration.md)."

    def handle(self, *args, **options):
        counts = pii_rotate_keys()
        self.stdout.write(f"已用新密钥重新加密：人员 {counts['persons']} 条，户 {counts['households']} 条。")
