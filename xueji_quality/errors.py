"""Errors a data officer reads: each names the file and, where there is one, the row and field."""

from __future__ import annotations


class InputError(Exception):
    """An input that cannot be processed at all; the run stops before writing anything."""

    def __init__(
        self, file: str, message: str, *, row: int | None = None, field: str | None = None
    ) -> None:
        self.file = str(file)
        self.row = row
        self.field = field
        self.message = message
        where = [f"文件 {self.file}"]
        if row is not None:
            where.append(f"第 {row} 行")
        if field is not None:
            where.append(f"字段 {field}")
        super().__init__(f"{'，'.join(where)}：{message}")

    def __reduce__(self):
        # Keyword-only parts: rebuilt explicitly when the error crosses a process boundary.
        return (_input_error, (self.file, self.message, self.row, self.field))


def _input_error(file: str, message: str, row: int | None, field: str | None) -> InputError:
    return InputError(file, message, row=row, field=field)


class ConservationError(Exception):
    """The run's row counts do not add up; nothing is published."""
