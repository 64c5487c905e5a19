"""DRF's scoped throttle, with each scope's counters in the cache the settings name for it.

settings.THROTTLE_CACHES maps a scope to a cache alias; scopes not named there use "default"
(the database cache, shared by every web worker). The "write" scope counts in a per-process
memory cache: on the database cache it cost every report 4–6 queries (a read, then
Django's DatabaseCache.set: a COUNT(*) of the cache table, a SELECT and an UPDATE or INSERT).
The trade-off is documented in docs/api.md: with N web workers a client spreading its
writes over all of them can make up to N × the rate before being refused. The log-in scope
stays shared and exact (guessing passwords is what it stops).
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import caches
from rest_framework import throttling


class ScopedRateThrottle(throttling.ScopedRateThrottle):
    def allow_request(self, request, view) -> bool:
        scope = getattr(view, self.scope_attr, None)
        self.cache = caches[settings.THROTTLE_CACHES.get(scope, "default")]
        return super().allow_request(request, view)
