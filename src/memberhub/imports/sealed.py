"""An uploaded file kept as Fernet-encrypted chunks (ImportChunk rows), and read back as a
seekable binary file (openpyxl reads a zip: it seeks) one chunk in memory at a time."""

from __future__ import annotations

import io
from typing import IO

from cryptography.fernet import MultiFernet

from memberhub.core.crypto import _fernet
from memberhub.imports.models import ImportChunk, ImportJob

CHUNK = 1 << 20  # plain bytes per chunk: every chunk but the last holds exactly this many


def seal(job: ImportJob, fh: IO[bytes]) -> int:
    """Store the file's content encrypted under the job; returns its size in bytes."""
    fernet: MultiFernet = _fernet()
    size, seq = 0, 0
    batch: list[ImportChunk] = []
    while piece := fh.read(CHUNK):
        # a short read (a socket, a pipe) is topped up so that chunks stay CHUNK long
        while len(piece) < CHUNK and (more := fh.read(CHUNK - len(piece))):
            piece += more
        batch.append(ImportChunk(job=job, seq=seq, data=fernet.encrypt(piece)))
        size, seq = size + len(piece), seq + 1
        if len(batch) >= 8:
            ImportChunk.objects.bulk_create(batch)
            batch = []
    ImportChunk.objects.bulk_create(batch)
    return size


class SealedReader(io.RawIOBase):
    def __init__(self, job_id: int, size: int) -> None:
        self._job_id, self._size, self._pos = job_id, size, 0
        self._seq: int | None = None
        self._plain = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(base + offset, 0)
        return self._pos

    def _chunk(self, seq: int) -> bytes:
        if seq != self._seq:
            token = ImportChunk.objects.filter(job_id=self._job_id, seq=seq).values_list("data", flat=True).first()
            if token is None:
                raise OSError(f"import {self._job_id}: chunk {seq} is missing")
            self._plain, self._seq = _fernet().decrypt(bytes(token)), seq
        return self._plain

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._pos >= self._size:
            return 0
        seq, offset = divmod(self._pos, CHUNK)
        plain = self._chunk(seq)[offset:offset + len(buffer)]
        buffer[:len(plain)] = plain
        self._pos += len(plain)
        return len(plain)


def unsealed(job: ImportJob) -> IO[bytes]:
    return io.BufferedReader(SealedReader(job.pk, job.size), buffer_size=64 * 1024)
