"""Paging limits shared by the directory, "my rooms" and member lists."""

from typing import Final

MAX_PAGE: Final = 100
