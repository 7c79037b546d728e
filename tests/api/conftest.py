from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from inbox.models import ApiToken


class Api:
    """A program calling the API with one token."""

    def __init__(self, token: str | None) -> None:
        self.client = Client(enforce_csrf_checks=True)
        self.token = token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token is not None else {}

    def get(self, path: str, data: Any = None) -> Any:
        return self.client.get(path, data, headers=self._headers())

    def post(self, path: str, data: Any = None) -> Any:
        return self.client.post(path, data or {}, content_type="application/json", headers=self._headers())

    def patch(self, path: str, data: Any) -> Any:
        return self.client.patch(path, data, content_type="application/json", headers=self._headers())

    def put(self, path: str, data: Any) -> Any:
        return self.client.put(path, data, content_type="application/json", headers=self._headers())

    def delete(self, path: str) -> Any:
        return self.client.delete(path, headers=self._headers())


def api_as(user: User, scope: str = "write", name: str = "test") -> Api:
    _, value = ApiToken.objects.issue(user, name, scope)
    return Api(value)


@pytest.fixture
def manager_api(staff: User) -> Api:
    return api_as(staff, "write")


@pytest.fixture
def reader_api(staff: User) -> Api:
    return api_as(staff, "read", "reader")


@pytest.fixture
def viewer_api(viewer: User) -> Api:
    return api_as(viewer, "write", "viewer's")
