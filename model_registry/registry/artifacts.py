"""The S3 artifact store: content-addressed, immutable, verified on every read."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from model_registry.core import contract
from model_registry.core.errors import ArtifactError, DependencyUnavailable, IntegrityError

PROGRESS_THRESHOLD_BYTES = 8 * 1024 * 1024
_CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


class ArtifactStore:
    """Artifacts in one S3 bucket at ``models/<name>/<sha256>.<ext>``."""

    def __init__(self, bucket: str, s3_client: Any) -> None:
        self.bucket = bucket
        self._s3 = s3_client

    def exists(self, key: str) -> bool:
        """Whether an object is stored at ``key``."""
        try:
            self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise DependencyUnavailable(f"artifact store error on {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise DependencyUnavailable(f"artifact store unreachable: {exc}") from exc
        return True

    def upload(
        self, model_name: str, path: Path, sha256: str, extension: str, *, progress: bool = True
    ) -> str:
        """Upload ``path`` to its content address and return the key; skip if already stored."""
        key = contract.artifact_key(model_name, sha256, extension)
        if self.exists(key):
            return key  # same bytes, same key: re-upload is a no-op
        size = path.stat().st_size
        callback = None
        bar = None
        if progress and size >= PROGRESS_THRESHOLD_BYTES:
            from tqdm import tqdm

            bar = tqdm(total=size, unit="B", unit_scale=True, desc=f"uploading {path.name}", file=sys.stderr)
            callback = bar.update
        from boto3.s3.transfer import S3Transfer  # only registration uploads; the handler never does

        try:
            S3Transfer(self._s3).upload_file(
                str(path),
                self.bucket,
                key,
                extra_args={"Metadata": {"sha256": sha256}, "ContentType": "application/octet-stream"},
                callback=callback,
            )
        except (ClientError, BotoCoreError) as exc:
            raise DependencyUnavailable(f"artifact upload failed for {key}: {exc}") from exc
        finally:
            if bar is not None:
                bar.close()
        return key

    def download_verified(self, key: str, expected_sha256: str) -> bytes:
        """Fetch ``key`` and return its bytes only if their sha256 matches ``expected_sha256``."""
        data = self.download(key)
        verify(key, data, expected_sha256)
        return data

    def download(self, key: str) -> bytes:
        """Fetch ``key`` unverified; callers must :func:`verify` before deserialising."""
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
            data = response["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {"NoSuchKey", "404"}:
                raise DependencyUnavailable(f"artifact {key} is missing from s3://{self.bucket}") from exc
            if code == "AccessDenied":
                # Without s3:ListBucket (the function's role has none), S3 answers a missing object with
                # 403 AccessDenied instead of 404 NoSuchKey
                # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, "Permissions").
                raise DependencyUnavailable(
                    f"artifact {key} in s3://{self.bucket} is missing, or this role may not read it "
                    "(AccessDenied: S3 reports a missing object so to a caller without s3:ListBucket)"
                ) from exc
            raise DependencyUnavailable(f"artifact store error on {key}: {code}") from exc
        except BotoCoreError as exc:
            raise DependencyUnavailable(f"artifact store unreachable: {exc}") from exc
        return data


def verify(key: str, data: bytes, expected_sha256: str) -> None:
    """Raise :class:`IntegrityError` unless ``data`` hashes to ``expected_sha256``."""
    actual = sha256_bytes(data)
    if actual != expected_sha256:
        raise IntegrityError(
            f"artifact {key} failed its integrity check: sha256 {actual[:12]}... != registered "
            f"{expected_sha256[:12]}...; refusing to load it"
        )


def check_readable(path: Path) -> None:
    """Raise :class:`ArtifactError` unless ``path`` is a non-empty regular file."""
    if not path.exists():
        raise ArtifactError(f"artifact file not found: {path}", code="artifact_missing")
    if not path.is_file():
        raise ArtifactError(f"artifact is not a regular file: {path}", code="artifact_missing")
    if path.stat().st_size == 0:
        raise ArtifactError(f"artifact file is empty: {path}")
