"""Typed reading of a YAML mapping, with errors that name the file and the field's path.

recipe.yaml: students[1].family: 'bort' is not one of: bert, mobilebert, squeezebert
"""

from __future__ import annotations

from typing import Any

from pocketbert.core.errors import choices

_TYPE_NAMES = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}


class RecipeError(Exception):
    """One field of a recipe is wrong (the message names the file and the field path)."""


class Fields:
    """One mapping of the recipe at ``path`` (``""`` for the top level) in ``file``."""

    def __init__(self, raw: Any, file: str, path: str) -> None:
        self.raw, self.file, self.path = raw, file, path
        if not isinstance(raw, dict):
            shown = type(raw).__name__ if raw is not None else "empty"
            self._raise("", f"is {shown}; give a mapping of fields")

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path and key else (self.path or key)

    def _raise(self, key: str, message: str):
        where = self._at(key)
        raise RecipeError(f"{self.file}: {where + ': ' if where else ''}{message}")

    def fail(self, key: str, message: str):
        self._raise(key, message)

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def allow(self, *keys: str) -> None:
        unknown = sorted(set(map(str, self.raw)) - set(keys))
        if unknown:
            self._raise(unknown[0], f"is not a field here; choose from: {choices(keys)}")

    def _typed(self, key: str, value: Any, kind: type) -> Any:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            self._raise(key, f"is {value!r}; give {_TYPE_NAMES[kind]}")
        return value

    def get(
        self,
        key: str,
        kind: type,
        *,
        default: Any = None,
        required: bool = False,
        valid: Any = None,
        minimum: float | None = None,
        positive: bool = False,
    ) -> Any:
        if key not in self.raw or self.raw[key] is None:
            if required:
                self._raise(key, "is missing; it is required")
            return default
        value = self._typed(key, self.raw[key], kind)
        if valid is not None and value not in valid:
            self._raise(key, f"'{value}' is not one of: {choices(valid)}")
        if minimum is not None and value < minimum:
            self._raise(key, f"is {value}; give {minimum} or more")
        if positive and value <= 0:
            self._raise(key, f"is {value}; give a number above 0")
        return value

    def get_list(
        self, key: str, kind: type, *, required: bool = False, valid: Any = None
    ) -> list | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                self._raise(key, "is missing; it is required")
            return None
        if isinstance(value, kind):
            value = [value]
        if not isinstance(value, list) or not value:
            self._raise(key, f"is {value!r}; give a list of {_TYPE_NAMES[kind]}s")
        items = [self._typed(f"{key}[{i}]", v, kind) for i, v in enumerate(value)]
        for i, v in enumerate(items):
            if valid is not None and v not in valid:
                self._raise(f"{key}[{i}]", f"'{v}' is not one of: {choices(valid)}")
        if len(set(items)) < len(items):
            self._raise(key, f"names one item twice ({', '.join(map(str, items))})")
        return items

    def block(self, key: str, *, required: bool = False) -> Fields:
        if not self.has(key):
            if required:
                self._raise(key, "is missing; it is required")
            return Fields({}, self.file, self._at(key))
        return Fields(self.raw[key], self.file, self._at(key))

    def items(self, key: str, *, required: bool = False, bare: str | None = None) -> list[Fields]:
        """A list of mappings; with ``bare``, an entry given as a string is ``{bare: entry}``."""
        value = self.raw.get(key)
        if not isinstance(value, list) or not value:
            if value is None and not required:
                return []
            self._raise(key, f"is {value!r}; give a list of at least one entry")
        return [
            Fields(
                {bare: v} if bare and isinstance(v, str) else v, self.file, f"{self._at(key)}[{i}]"
            )
            for i, v in enumerate(value)
        ]
