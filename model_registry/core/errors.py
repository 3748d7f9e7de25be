"""Typed errors. Each carries an HTTP status and a machine-readable code, mapped to responses in one place."""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every error the platform raises on purpose."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class InvalidName(RegistryError):
    status, code = 400, "invalid_name"


class InvalidTag(RegistryError):
    status, code = 400, "invalid_tag"


class ModelNotFound(RegistryError):
    status, code = 404, "model_not_found"


class VersionNotFound(RegistryError):
    status, code = 404, "version_not_found"


class ConflictError(RegistryError):
    status, code = 409, "conflict"


class ArtifactError(RegistryError):
    """The artifact cannot be read, detected or deserialised."""

    status, code = 422, "artifact_invalid"


class UnsupportedFormat(ArtifactError):
    code = "unsupported_format"


class IntegrityError(ArtifactError):
    """The artifact's bytes do not match the sha256 recorded in the registry."""

    status, code = 503, "artifact_integrity"


class PickleNotAllowed(ArtifactError):
    status, code = 403, "pickle_not_allowed"


class UntrustedTypes(ArtifactError):
    status, code = 403, "untrusted_types"


class DependencyUnavailable(RegistryError):
    """The registry or the artifact store cannot be reached; retrying later may succeed."""

    status, code = 503, "dependency_unavailable"


class InvalidInput(RegistryError):
    status, code = 400, "invalid_input"


class RolloutError(RegistryError):
    status, code = 409, "rollout_error"
