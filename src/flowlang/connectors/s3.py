"""The `s3` connector: objects in an S3 bucket or any S3-compatible store (aiobotocore; `endpoint_url`
for MinIO, Ceph, R2, a local test server), with the local file connector's formats, pick-up and
folders (remote.py). Objects are read as streams and written in one put, or in 5 MB parts for a
large file, so memory stays flat. Credentials come from `access_key`/`secret_key` (secrets) or the
usual AWS sources; errors name the bucket and key, never a credential."""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Mapping
from functools import partial
from typing import Any, BinaryIO

from flowlang.connectors.base import ConfigKey, Connection, ConnectorSpec, RunServices
from flowlang.connectors.file import path_format_problem, text_option_problem
from flowlang.connectors.remote import FORMAT_KEYS, OPERATIONS, open_path, revealed
from flowlang.connectors.storage import CHUNK, Entry, Storage, split_pattern
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.values import Value, type_name

PART = 5 << 20  # the size of one part of a multipart upload (S3's minimum, so memory stays low)
DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
          "403", "AllAccessDisabled"}


class S3Storage(Storage):
    def __init__(self, bucket: str, options: dict[str, Any]) -> None:
        self.bucket = bucket
        self.options = options  # for create_client (credentials included), never shown
        self.label = f"s3://{bucket}"
        self._context: Any = None
        self._client: Any = None

    def shown(self, path: str) -> str:
        return path

    async def client(self) -> Any:
        if self._client is None:
            from aiobotocore.config import AioConfig
            from aiobotocore.session import get_session

            self._context = get_session().create_client(
                "s3", config=AioConfig(retries={"max_attempts": 3, "mode": "standard"}), **self.options)
            self._client = await self._context.__aenter__()
        return self._client

    def _error(self, e: Exception, key: str) -> FlowRuntimeError:
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

        where = f"s3://{self.bucket}/{key}"
        if isinstance(e, ClientError):
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                return FlowRuntimeError(f"file not found: {where}", "connector")
            if code == "NoSuchBucket":
                return FlowRuntimeError(f"s3: the bucket {self.bucket!r} does not exist", "connector")
            if code in DENIED:
                return FlowRuntimeError(f"s3: access to {where} was refused ({code}: check access_key and "
                                        "secret_key, and the bucket's policy)", "connector")
            return FlowRuntimeError(f"s3: {where}: {code or 'error'}", "connector")
        if isinstance(e, NoCredentialsError):
            return FlowRuntimeError("s3 needs access_key and secret_key (or AWS credentials in the environment)",
                                    "connector")
        if isinstance(e, EndpointConnectionError):
            return FlowRuntimeError(f"s3: cannot connect to {self.options.get('endpoint_url') or 'S3'}",
                                    "connector")
        if isinstance(e, BotoCoreError):
            return FlowRuntimeError(f"s3: {where}: {type(e).__name__}", "connector")
        return FlowRuntimeError(f"s3: {where}: {type(e).__name__}", "connector")

    async def _call(self, key: str, method: str, **kw: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        client = await self.client()
        try:
            return await getattr(client, method)(Bucket=self.bucket, **kw)
        except (ClientError, BotoCoreError) as e:
            raise self._error(e, key) from None

    async def glob(self, pattern: str) -> list[Entry]:
        from botocore.exceptions import BotoCoreError, ClientError

        folder, name = split_pattern(pattern.lstrip("/"))
        prefix = f"{folder}/" if folder else ""
        client = await self.client()
        entries: list[Entry] = []
        try:
            async for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    rest = obj["Key"][len(prefix):]
                    if "/" not in rest and rest and fnmatch.fnmatchcase(rest, name):
                        entries.append(Entry(obj["Key"], rest, int(obj["Size"]), str(obj.get("ETag", ""))))
        except (ClientError, BotoCoreError) as e:
            raise self._error(e, prefix) from None
        return sorted(entries, key=lambda e: e.path)

    async def stat(self, path: str) -> Entry | None:
        try:
            head = await self._call(path, "head_object", Key=path)
        except FlowRuntimeError as e:
            if e.message.startswith("file not found"):
                return None
            raise
        return Entry(path, posixpath.basename(path), int(head["ContentLength"]), str(head.get("ETag", "")))

    async def download(self, path: str, target: BinaryIO) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        answer = await self._call(path, "get_object", Key=path)
        try:
            async with answer["Body"] as body:
                while chunk := await body.read(CHUNK):
                    target.write(chunk)
        except (ClientError, BotoCoreError) as e:
            raise self._error(e, path) from None

    async def upload(self, source: BinaryIO, path: str) -> None:
        first = source.read(PART)
        if len(first) < PART:  # one put: an object appears whole
            await self._call(path, "put_object", Key=path, Body=first)
            return
        started = await self._call(path, "create_multipart_upload", Key=path)
        upload_id = started["UploadId"]
        parts = []
        try:
            chunk, number = first, 1
            while chunk:
                done = await self._call(path, "upload_part", Key=path, UploadId=upload_id, PartNumber=number,
                                        Body=chunk)
                parts.append({"ETag": done["ETag"], "PartNumber": number})
                chunk, number = source.read(PART), number + 1
            await self._call(path, "complete_multipart_upload", Key=path, UploadId=upload_id,
                             MultipartUpload={"Parts": parts})
        except BaseException:
            try:
                await self._call(path, "abort_multipart_upload", Key=path, UploadId=upload_id)
            except FlowRuntimeError:
                pass
            raise

    async def move(self, path: str, target: str) -> None:
        await self._call(path, "copy_object", Key=target, CopySource={"Bucket": self.bucket, "Key": path})
        await self.delete(path)

    async def delete(self, path: str) -> None:
        await self._call(path, "delete_object", Key=path)

    async def close(self) -> None:
        if self._context is not None:
            context, self._context, self._client = self._context, None, None
            await context.__aexit__(None, None, None)


async def open_s3(name: str, config: Mapping[str, Value], services: RunServices) -> Connection:
    try:
        import aiobotocore  # noqa: F401
    except ImportError:
        raise FlowRuntimeError("s3 needs aiobotocore: pip install 'flowlang[s3]'", "connector") from None
    bucket = config.get("bucket")
    if type(bucket) is not str or not bucket:
        raise FlowRuntimeError(f"s3 needs bucket: the bucket's name, got {type_name(bucket)}", "connector")
    options: dict[str, Any] = {"region_name": revealed(config.get("region"), services) or "us-east-1"}
    endpoint = revealed(config.get("endpoint_url"), services)
    if endpoint is not None:
        if not endpoint.startswith(("http://", "https://")):
            raise FlowRuntimeError(f"s3 endpoint_url must be an http(s) URL, got {endpoint!r}", "connector")
        options["endpoint_url"] = endpoint
    access, secret = revealed(config.get("access_key"), services), revealed(config.get("secret_key"), services)
    if (access is None) != (secret is None):
        raise FlowRuntimeError("s3 needs access_key and secret_key together (or neither, for the AWS "
                               "credentials of the environment)", "connector")
    if access is not None:
        options["aws_access_key_id"] = access
        options["aws_secret_access_key"] = secret
    token = revealed(config.get("session_token"), services)
    if token is not None:
        options["aws_session_token"] = token
    return open_path(name, S3, config, services, S3Storage(bucket, options))


S3 = ConnectorSpec(
    name="s3",
    title="Objects in S3 or an S3-compatible store (CSV, JSON, JSON Lines, binary; pick-up with after:)",
    origin="builtin",
    config=(
        ConfigKey("bucket", required=True, description="the bucket"),
        ConfigKey("region", description='the region (default "us-east-1")'),
        ConfigKey("endpoint_url", description="the store's URL, for S3-compatible stores (MinIO, R2, Ceph)"),
        ConfigKey("access_key", description="the access key id (with secret_key; else the AWS environment)"),
        ConfigKey("secret_key", secret=True, description="the secret access key, from a secret"),
        ConfigKey("session_token", secret=True, description="a session token, for temporary credentials"),
        *FORMAT_KEYS,
    ),
    operations=OPERATIONS,
    open=open_s3,
    default_write="write",
    value_problem=partial(text_option_problem, kind="s3"),
    config_problem=partial(path_format_problem, kind="s3"),
)
