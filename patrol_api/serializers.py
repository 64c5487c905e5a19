from django.contrib.auth import authenticate
from rest_framework import exceptions, serializers
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from accounts.models import User
from geodata.models import Grid


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(label="用户名")
    password = serializers.CharField(label="密码", trim_whitespace=False, style={"input_type": "password"})

    def validate(self, attrs):
        request = self.context.get("request")
        user = authenticate(request=request, **attrs)
        if getattr(request, "axes_locked_out", False):
            raise exceptions.Throttled(detail="登录失败次数过多，该账号已暂时锁定，请15分钟后再试或联系管理员。")
        if user is None:
            raise serializers.ValidationError("用户名或密码错误", code="authorization")
        attrs["user"] = user
        return attrs


class ProfileSerializer(serializers.ModelSerializer):
    role_display = serializers.CharField(source="get_role_display", read_only=True)
    full_name = serializers.CharField(source="get_full_name", read_only=True)
    street = serializers.CharField(source="street.name", default=None, read_only=True)
    community = serializers.CharField(source="community.name", default=None, read_only=True)
    department = serializers.CharField(source="department.name", default=None, read_only=True)
    grid_codes = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "full_name",
            "role",
            "role_display",
            "street",
            "community",
            "department",
            "grid_codes",
        ]

    def get_grid_codes(self, user) -> list[str]:
        return sorted(assignment.grid.code for assignment in user.grid_assignments.all())


class GridFeatureSerializer(GeoFeatureModelSerializer):
    community = serializers.CharField(source="community.name", read_only=True)

    class Meta:
        model = Grid
        geo_field = "geom"
        fields = ["id", "code", "name", "community", "area_m2"]
        # 6 decimals of a degree ≈ 0.1 m: plenty for a phone, a third of the bytes of 15.
        precision = 6
