import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from accounts.models import Role
from tests.factories import UserFactory

PASSWORD = "correct-horse-battery"


@pytest.fixture
def operator(db):
    return UserFactory(username="zhang", role=Role.OPERATOR)


def test_five_failed_web_logins_lock_the_account_even_for_the_right_password(client, operator):
    codes = [client.post("/accounts/login/", {"username": "zhang", "password": "wrong"}).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 200, 429]
    locked = client.post("/accounts/login/", {"username": "zhang", "password": PASSWORD})
    assert locked.status_code == 429
    assert "登录失败次数过多" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_successful_login_before_the_limit_resets_the_count(client, operator):
    for _ in range(4):
        client.post("/accounts/login/", {"username": "zhang", "password": "wrong"})
    assert client.post("/accounts/login/", {"username": "zhang", "password": PASSWORD}).status_code == 302
    client.logout()
    for _ in range(4):
        client.post("/accounts/login/", {"username": "zhang", "password": "wrong"})
    assert client.post("/accounts/login/", {"username": "zhang", "password": PASSWORD}).status_code == 302


def test_api_token_login_is_locked_out_too(operator):
    api = APIClient()
    for _ in range(5):
        api.post("/api/v1/auth/token", {"username": "zhang", "password": "wrong"}, format="json")
    response = api.post("/api/v1/auth/token", {"username": "zhang", "password": PASSWORD}, format="json")
    assert response.status_code == 429
    assert response.json() == {"detail": "登录失败次数过多，该账号已暂时锁定，请15分钟后再试或联系管理员。"}


def test_weak_passwords_are_refused(operator):
    for weak in ("12345678901", "password123", "Ab-1"):
        with pytest.raises(ValidationError):
            validate_password(weak, user=operator)
    validate_password("Grid-Worker-2026!", user=operator)
