"""Path converters: ids that PostgreSQL's bigint can hold, so an absurd id is a 404, never a 500."""


class IdConverter:
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)
