# The right to see the register's population figures (L2 in docs/security.md), granted by role in accounts/roles.py.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("geodata", "0005_grid_web_mercator"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="person",
            options={
                "ordering": ["id"],
                "permissions": [
                    ("reveal_personal_data", "可查看本人负责范围内的身份证号和电话明文（留痕）"),
                    ("reveal_personal_data_anywhere", "可查看全辖区的身份证号和电话明文（留痕）"),
                    ("view_population", "可查看人口统计数（实有人口、户数、年龄结构、重点关注人数）"),
                ],
                "verbose_name": "实有人口",
                "verbose_name_plural": "实有人口",
            },
        ),
    ]
