"""The one error type the service turns into a 4xx JSON answer."""

from __future__ import annotations


class RequestError(Exception):
    """A bad request: ``status`` (4xx), a machine-readable ``code`` and a message naming the
    problem (what was received and what is allowed)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = int(status)
        self.code = code
        self.message = message

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


def invalid(message: str) -> RequestError:
    """422: the request is well formed but a field is missing, empty or of the wrong type."""
    return RequestError(422, "invalid_input", message)


def too_large(message: str) -> RequestError:
    return RequestError(413, "payload_too_large", message)


def unreadable(what: str, message: str) -> RequestError:
    """400: an upload that cannot be decoded (corrupt audio/image, bad base64)."""
    return RequestError(400, f"unreadable_{what}", message)
