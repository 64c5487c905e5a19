from rest_framework.permissions import BasePermission


class IsGridWorker(BasePermission):
    """Patrols and check-ins are the grid worker's (网格员) own records: the right
    `patrol.add_patrolsession` is granted by role in accounts/roles.py."""

    message = "只有网格员可以记录巡查和签到"

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm("patrol.add_patrolsession"))
